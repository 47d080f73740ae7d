import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyJsonPatch, applyPatch, patchTypeOf } from "./patch.ts";

describe("patches", () => {
  it("applies RFC 6902 operations and names the one that fails", () => {
    const doc = { a: { b: [1, 2] }, c: "x" };
    const r = applyJsonPatch(doc, [
      { op: "add", path: "/a/b/-", value: 3 },
      { op: "replace", path: "/c", value: "y" },
      { op: "move", from: "/c", path: "/d" },
      { op: "copy", from: "/a/b/0", path: "/e" },
      { op: "remove", path: "/a/b/1" },
      { op: "test", path: "/d", value: "y" },
      { op: "add", path: "/metadata~1x", value: true },
    ]);
    assert.deepEqual(r, {
      ok: true,
      value: { a: { b: [1, 3] }, d: "y", e: 1, "metadata/x": true },
    });
    assert.deepEqual(doc, { a: { b: [1, 2] }, c: "x" }, "input untouched");
    const bad = applyJsonPatch(doc, [{ op: "replace", path: "/nope", value: 1 }]);
    assert.deepEqual(bad, {
      ok: false,
      reason: "operation 0 (replace /nope): path does not exist",
    });
    assert.equal(applyJsonPatch(doc, [{ op: "test", path: "/c", value: "z" }]).ok, false);
  });

  it("merge patches remove with null and copy frozen input", () => {
    const doc = Object.freeze({ metadata: Object.freeze({ name: "a", labels: { x: "1" } }) });
    const r = applyPatch(doc, "merge", { metadata: { labels: { x: null, y: "2" } } });
    assert.deepEqual(r, { ok: true, value: { metadata: { name: "a", labels: { y: "2" } } } });
    assert.ok(r.ok && !Object.isFrozen(r.value["metadata"]));
    assert.equal(patchTypeOf("application/json-patch+json; charset=utf-8"), "json");
    assert.equal(patchTypeOf("application/apply-patch+yaml"), undefined);
  });
});
