import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatFieldPath, pointerToPath } from "./field-path.ts";

describe("field paths", () => {
  it("formats keys, indexes and keys that need quoting", () => {
    assert.equal(
      formatFieldPath(["spec", "rules", 0, "from", 0, "source", "principals"]),
      "spec.rules[0].from[0].source.principals",
    );
    assert.equal(
      formatFieldPath(["metadata", "labels", "app.kubernetes.io/name"]),
      'metadata.labels["app.kubernetes.io/name"]',
    );
    assert.equal(formatFieldPath(["items", 2, "kind"]), "items[2].kind");
    assert.equal(formatFieldPath([]), "");
  });

  it("types pointer segments by the data they walk", () => {
    const data = { spec: { ports: [{ "80": 1 }] }, "a/b": { "~x": 1 } };
    assert.deepEqual(pointerToPath("/spec/ports/0/80", data), ["spec", "ports", 0, "80"]);
    assert.deepEqual(pointerToPath("/a~1b/~0x", data), ["a/b", "~x"]);
    assert.deepEqual(pointerToPath("", data), []);
  });
});
