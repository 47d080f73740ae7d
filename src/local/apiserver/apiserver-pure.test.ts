import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ClusterIpAllocator } from "./cluster-ip.ts";
import { applyRecords, EMPTY_STATE } from "./persistence.ts";
import { parseTokenFile } from "./tokens.ts";

describe("API server parts", () => {
  it("allocates stable VIPs, honours asked-for ones, refuses clashes and out-of-range", () => {
    const a = new ClusterIpAllocator("198.18.16.0/29");
    assert.deepEqual(a.allocate("ns/a"), { ok: true, value: "198.18.16.1" });
    assert.deepEqual(a.allocate("ns/a"), { ok: true, value: "198.18.16.1" });
    assert.deepEqual(a.claim("ns/b", "198.18.16.5"), { ok: true, value: "198.18.16.5" });
    assert.equal(a.claim("ns/c", "198.18.16.5").ok, false);
    assert.equal(a.claim("ns/c", "198.18.17.1").ok, false);
    const again = new ClusterIpAllocator("198.18.16.0/29", a.allocations);
    assert.deepEqual(again.allocate("ns/c"), { ok: true, value: "198.18.16.2" });
    for (const k of ["d", "e", "f"]) again.allocate(`ns/${k}`);
    assert.deepEqual(again.allocate("ns/g"), {
      ok: false,
      reason: "the service range 198.18.16.0/29 is full",
    });
    again.release("ns/a");
    assert.deepEqual(again.allocate("ns/g"), { ok: true, value: "198.18.16.1" });
  });

  it("folds the change log into the state", () => {
    const pod = (name: string, rv: string) => ({
      metadata: { name, namespace: "ns", resourceVersion: rv },
    });
    const s = applyRecords(EMPTY_STATE, [
      { op: "put", group: "", plural: "pods", object: pod("a", "10") },
      { op: "put", group: "", plural: "pods", object: pod("b", "11") },
      { op: "put", group: "", plural: "pods", object: pod("a", "12") },
      { op: "del", group: "", plural: "pods", namespace: "ns", name: "b" },
      { op: "ip", key: "ns/web", ip: "198.18.16.1" },
      { op: "bind", key: "ns/solo", node: "node1" },
      { op: "bind", key: "ns/solo", node: null },
    ]);
    assert.deepEqual(
      s.objects.map((o) => o.object),
      [pod("a", "12")],
    );
    assert.equal(s.resourceVersion, 12);
    assert.deepEqual(s.clusterIps, { "ns/web": "198.18.16.1" });
    assert.deepEqual(s.bindings, {});
  });

  it("reads token files in kube-apiserver's format and reports bad lines", () => {
    const ok = parseTokenFile('# admins\nabc,admin,1,"system:masters"\n\nxyz,bob,2\n');
    assert.deepEqual(ok, {
      ok: true,
      value: [
        { token: "abc", user: "admin", uid: "1" },
        { token: "xyz", user: "bob", uid: "2" },
      ],
    });
    assert.deepEqual(parseTokenFile("justatoken\n", "t.csv"), {
      ok: false,
      reason: ['t.csv:1: expected "token,user,uid[,groups]"'],
    });
  });
});
