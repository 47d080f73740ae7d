import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isSubset, labelSelectorMatches, selectsNonEmpty } from "./selector.ts";

describe("selectors", () => {
  it("equality selectors: subset; empty selects nothing for Services", () => {
    assert.equal(isSubset({ app: "a" }, { app: "a", v: "1" }), true);
    assert.equal(isSubset({ app: "a" }, { app: "b" }), false);
    assert.equal(selectsNonEmpty({}, { app: "a" }), false);
    assert.equal(selectsNonEmpty(undefined, { app: "a" }), false);
    assert.equal(selectsNonEmpty({ app: "a" }, { app: "a" }), true);
  });
  it("LabelSelector: missing matches nothing, empty matches everything", () => {
    assert.equal(labelSelectorMatches(undefined, { a: "1" }), false);
    assert.equal(labelSelectorMatches({}, {}), true);
  });
  it("LabelSelector expressions", () => {
    const labels = { team: "a", env: "prod" };
    assert.equal(
      labelSelectorMatches(
        { matchExpressions: [{ key: "team", operator: "In", values: ["a", "b"] }] },
        labels,
      ),
      true,
    );
    assert.equal(
      labelSelectorMatches(
        { matchExpressions: [{ key: "team", operator: "NotIn", values: ["a"] }] },
        labels,
      ),
      false,
    );
    assert.equal(
      labelSelectorMatches(
        { matchExpressions: [{ key: "gone", operator: "NotIn", values: ["a"] }] },
        labels,
      ),
      true,
    );
    assert.equal(
      labelSelectorMatches({ matchExpressions: [{ key: "env", operator: "Exists" }] }, labels),
      true,
    );
    assert.equal(
      labelSelectorMatches(
        { matchExpressions: [{ key: "env", operator: "DoesNotExist" }] },
        labels,
      ),
      false,
    );
    assert.equal(
      labelSelectorMatches(
        {
          matchLabels: { team: "a" },
          matchExpressions: [{ key: "env", operator: "In", values: ["dev"] }],
        },
        labels,
      ),
      false,
    );
  });
});
