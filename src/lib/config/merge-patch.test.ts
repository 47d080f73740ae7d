import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mergePatch } from "./merge-patch.ts";

describe("mergePatch (RFC 7386)", () => {
  it("merges maps, replaces lists, removes on null", () => {
    const target = { a: "b", c: { d: "e", f: "g" }, list: [1, 2] };
    assert.deepEqual(mergePatch(target, { a: "z", c: { f: null }, list: [3], n: { x: 1 } }), {
      a: "z",
      c: { d: "e" },
      list: [3],
      n: { x: 1 },
    });
    assert.deepEqual(target, { a: "b", c: { d: "e", f: "g" }, list: [1, 2] }, "input untouched");
  });
  it("a non-object patch replaces the target", () => {
    assert.equal(mergePatch({ a: 1 }, "x"), "x");
    assert.deepEqual(mergePatch("x", { a: 1 }), { a: 1 });
  });
});
