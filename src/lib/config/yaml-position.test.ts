import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LineCounter, parseDocument } from "yaml";
import { locate } from "./yaml-position.ts";

const text = `apiVersion: v1
kind: X
metadata:
  name: a
spec:
  rules:
  - from:
    - source:
        principals: [a, b]
        extra: 1
  empty:
  ref: &r {k: v}
  alias: *r
`;

function setup() {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  return { doc, lc };
}

describe("locate", () => {
  it("finds a value deep in sequences and maps", () => {
    const { doc, lc } = setup();
    assert.deepEqual(locate(doc, lc, ["spec", "rules", 0, "from", 0, "source", "principals"]), {
      line: 9,
      column: 21,
    });
    assert.deepEqual(locate(doc, lc, ["spec", "rules", 0, "from", 0, "source", "principals", 1]), {
      line: 9,
      column: 25,
    });
  });

  it("points at the key for unknown fields", () => {
    const { doc, lc } = setup();
    assert.deepEqual(locate(doc, lc, ["spec", "rules", 0, "from", 0, "source", "extra"], "key"), {
      line: 10,
      column: 9,
    });
  });

  it("falls back to the deepest node that exists", () => {
    const { doc, lc } = setup();
    // A missing required field points into the object that should hold it.
    assert.deepEqual(locate(doc, lc, ["metadata", "namespace"]), { line: 4, column: 3 });
    assert.equal(locate(doc, lc, ["nothing", "here"])?.line, 1);
  });

  it("uses the key of a field with no value, and follows aliases", () => {
    const { doc, lc } = setup();
    assert.deepEqual(locate(doc, lc, ["spec", "empty"]), { line: 11, column: 3 });
    assert.deepEqual(locate(doc, lc, ["spec", "alias", "k"]), { line: 12, column: 15 });
  });
});
