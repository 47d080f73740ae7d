import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { allocate, podGateway, type IpamState } from "./ipam.ts";
import type { TopologySpec } from "./spec.ts";

const spec: TopologySpec = {
  cluster: "demo",
  nodes: [{ name: "node1" }, { name: "node2" }],
  pods: [
    { namespace: "default", name: "a", node: "node1" },
    { namespace: "default", name: "b", node: "node1" },
    { namespace: "default", name: "c", node: "node2" },
  ],
  services: [{ namespace: "default", name: "web" }],
};

function ok(s: TopologySpec, prev?: IpamState): IpamState {
  const r = allocate(s, prev);
  if (!r.ok) assert.fail(r.reason.join("; "));
  return r.value;
}

describe("allocate", () => {
  it("hands out the lowest free addresses from the default ranges", () => {
    const a = ok(spec);
    assert.equal(a.controlPlane, "198.18.0.1");
    assert.deepEqual(a.nodes, {
      node1: { address: "198.18.0.2", podCidr: "198.19.0.0/24" },
      node2: { address: "198.18.0.3", podCidr: "198.19.1.0/24" },
    });
    assert.deepEqual(a.pods, {
      "default/a": { node: "node1", ip: "198.19.0.2" },
      "default/b": { node: "node1", ip: "198.19.0.3" },
      "default/c": { node: "node2", ip: "198.19.1.2" },
    });
    assert.deepEqual(a.services, { "default/web": "198.18.16.1" });
    assert.equal(podGateway(a.nodes["node1"].podCidr), "198.19.0.1");
  });

  it("is stable: the same spec again gives the same allocation", () => {
    const a = ok(spec);
    assert.deepEqual(ok(spec, a), a);
  });

  it("keeps existing addresses when things are added in front, and releases what is gone", () => {
    const a = ok(spec);
    const changed: TopologySpec = {
      ...spec,
      nodes: [{ name: "node0" }, ...spec.nodes],
      pods: [{ namespace: "default", name: "z", node: "node1" }, ...spec.pods!.slice(1)],
      services: [{ namespace: "default", name: "api" }, ...spec.services!],
    };
    const b = ok(changed, a);
    assert.deepEqual(b.nodes["node1"], a.nodes["node1"]);
    assert.deepEqual(b.nodes["node2"], a.nodes["node2"]);
    assert.deepEqual(b.nodes["node0"], { address: "198.18.0.4", podCidr: "198.19.2.0/24" });
    assert.equal(b.pods["default/a"], undefined);
    // The released address of default/a is reused by the new pod.
    assert.deepEqual(b.pods["default/z"], { node: "node1", ip: "198.19.0.2" });
    assert.equal(b.pods["default/b"]!.ip, "198.19.0.3");
    assert.equal(b.services["default/web"], "198.18.16.1");
    assert.equal(b.services["default/api"], "198.18.16.2");
  });

  it("gives a pod that moved node an address from its new node", () => {
    const a = ok(spec);
    const moved = ok(
      { ...spec, pods: spec.pods!.map((p) => (p.name === "a" ? { ...p, node: "node2" } : p)) },
      a,
    );
    assert.deepEqual(moved.pods["default/a"], { node: "node2", ip: "198.19.1.3" });
  });

  it("reports exhaustion and every invalid input", () => {
    const tiny = allocate({
      cluster: "demo",
      cidrs: { pods: "198.19.0.0/28", podPrefixLength: 29 },
      nodes: [{ name: "n1" }, { name: "n2" }, { name: "n3" }],
      pods: Array.from({ length: 6 }, (_, i) => ({ namespace: "d", name: `p${i}`, node: "n1" })),
    });
    assert.equal(tiny.ok, false);
    if (!tiny.ok) {
      assert.ok(tiny.reason.some((r) => r.includes("no pod range left") && r.includes("n3")));
      assert.ok(tiny.reason.some((r) => r.includes("no pod address left on node n1")));
    }
    const bad = allocate({
      cluster: "Bad-Name",
      cidrs: { nodes: "10.0.0.0/24", services: "198.19.0.0/20" },
      nodes: [{ name: "node1" }, { name: "node1" }, { name: "cp" }],
      pods: [{ namespace: "default", name: "a", node: "nodeX" }],
    });
    assert.equal(bad.ok, false);
    if (!bad.ok) {
      const text = bad.reason.join("\n");
      assert.match(text, /cluster name "Bad-Name"/);
      assert.match(text, /cidrs\.nodes 10\.0\.0\.0\/24 is outside 198\.18\.0\.0\/15/);
      assert.match(
        text,
        /cidrs\.pods 198\.19\.0\.0\/16 overlaps cidrs\.services 198\.19\.0\.0\/20/,
      );
      assert.match(text, /node "node1" is listed twice/);
      assert.match(text, /reserved/);
      assert.match(text, /pod default\/a: node "nodeX" is not in the topology/);
    }
  });
});
