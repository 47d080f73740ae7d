import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ObjectStore } from "./object-store.ts";
import type { Json } from "./status.ts";

const pod = (name: string, extra: Json = {}): Json => ({
  metadata: { name, namespace: "ns" },
  spec: { containers: [{ name: "c" }] },
  ...extra,
});

describe("ObjectStore", () => {
  const store = () => new ObjectStore({ initialResourceVersion: 100, historyLimit: 8 });

  it("stamps uid, resourceVersion, generation; bumps generation on spec changes only", () => {
    const s = store();
    const res = s.resources.forKind("", "Pod")!;
    const c = s.create(res, pod("a"));
    assert.ok(c.ok);
    const m = c.object["metadata"] as Json;
    assert.equal(m["resourceVersion"], "101");
    assert.equal(m["generation"], 1);
    assert.match(String(m["uid"]), /^[0-9a-f-]{36}$/);
    assert.ok(Object.isFrozen(c.object));
    const st = s.replace(res, "ns", "a", { ...pod("a"), status: { phase: "Running" } }, "status");
    assert.ok(st.ok);
    assert.equal((st.object["metadata"] as Json)["generation"], 1);
    assert.deepEqual(st.object["status"], { phase: "Running" });
    const sp = s.replace(res, "ns", "a", pod("a", { spec: { containers: [] } }), "main");
    assert.ok(sp.ok);
    assert.equal((sp.object["metadata"] as Json)["generation"], 2);
    assert.deepEqual(sp.object["status"], { phase: "Running" }, "main writes keep status");
    const same = s.replace(res, "ns", "a", pod("a", { spec: { containers: [] } }), "main");
    assert.ok(same.ok);
    assert.equal(s.resourceVersion, 103, "a write that changes nothing takes no resourceVersion");
  });

  it("refuses duplicates, stale resourceVersions and failed preconditions", () => {
    const s = store();
    const res = s.resources.forKind("", "Pod")!;
    s.create(res, pod("a"));
    const dup = s.create(res, pod("a"));
    assert.equal(dup.ok ? 0 : dup.code, 409);
    const stale = s.replace(res, "ns", "a", pod("a"), "main", { expectedResourceVersion: "1" });
    assert.equal(stale.ok ? 0 : stale.status["reason"], "Conflict");
    const pre = s.remove(res, "ns", "a", { uid: "other" });
    assert.equal(pre.ok ? 0 : pre.code, 409);
    assert.ok(s.remove(res, "ns", "a").ok);
    const gone = s.remove(res, "ns", "a");
    assert.equal(gone.ok ? 0 : gone.code, 404);
  });

  it("replays history after a resourceVersion; older, trimmed or future ones are expired", () => {
    const s = store();
    const res = s.resources.forKind("", "Pod")!;
    const svc = s.resources.forKind("", "Service")!;
    s.create(res, pod("a"));
    s.create(svc, { metadata: { name: "s", namespace: "ns" }, spec: {} });
    s.create(res, pod("b"));
    const evs = s.eventsSince(res, undefined, 101);
    assert.ok(evs !== "expired");
    assert.deepEqual(
      evs.map((e) => [e.type, (e.object["metadata"] as Json)["name"]]),
      [["ADDED", "b"]],
    );
    assert.equal(s.eventsSince(res, undefined, 99), "expired");
    assert.equal(s.eventsSince(res, undefined, 1000), "expired", "from another incarnation");
    for (let i = 0; i < 10; i++) s.create(res, pod(`p${i}`));
    assert.equal(s.eventsSince(res, undefined, 101), "expired", "history trimmed");
    const recent = s.eventsSince(res, undefined, s.resourceVersion - 1);
    assert.ok(recent !== "expired" && recent.length === 1);
    s.compact();
    assert.equal(s.eventsSince(res, undefined, s.resourceVersion - 1), "expired");
  });

  it("system writes change metadata (deletion marks) and keep identity; generateName names", () => {
    const s = store();
    const res = s.resources.forKind("", "Pod")!;
    const c = s.create(res, { metadata: { generateName: "web-", namespace: "ns" }, spec: {} });
    assert.ok(c.ok);
    const m = c.object["metadata"] as Json;
    assert.match(String(m["name"]), /^web-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    const next = structuredClone(c.object);
    (next["metadata"] as Json)["deletionTimestamp"] = "2030-01-01T00:00:00Z";
    (next["metadata"] as Json)["uid"] = "changed";
    const r = s.replace(res, "ns", String(m["name"]), next, "system");
    assert.ok(r.ok);
    const rm = r.object["metadata"] as Json;
    assert.equal(rm["deletionTimestamp"], "2030-01-01T00:00:00Z");
    assert.equal(rm["uid"], m["uid"]);
  });
});
