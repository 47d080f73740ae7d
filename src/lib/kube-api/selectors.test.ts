import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseFieldSelector, parseLabelSelector, selectorOf } from "./selectors.ts";

const obj = (labels: Record<string, string>, nodeName = "") => ({
  metadata: { name: "p", namespace: "ns", labels },
  spec: { nodeName },
});

describe("selectors", () => {
  it("matches label requirements: =, !=, exists, !exists, in, notin", () => {
    const cases: [string, boolean][] = [
      ["app=web", true],
      ["app==web,tier=db", false],
      ["app!=db", true],
      ["app", true],
      ["!app", false],
      ["tier in (fe, be)", true],
      ["tier notin (fe),app", false],
      ["missing notin (x)", true],
    ];
    for (const [text, want] of cases) {
      const s = parseLabelSelector(text);
      assert.ok(s.ok, text);
      assert.equal(s.value(obj({ app: "web", tier: "fe" })), want, text);
    }
    assert.equal(parseLabelSelector("a=b=c").ok, false);
  });

  it("matches fields by dotted path; both selectors combine", () => {
    const f = parseFieldSelector("spec.nodeName=n1,metadata.namespace!=kube-system");
    assert.ok(f.ok);
    assert.equal(f.value(obj({}, "n1")), true);
    assert.equal(f.value(obj({}, "n2")), false);
    const both = selectorOf({ labelSelector: "app=web", fieldSelector: "spec.nodeName=n1" });
    assert.ok(both.ok && both.value);
    assert.equal(both.value(obj({ app: "web" }, "n1")), true);
    assert.equal(both.value(obj({ app: "web" }, "n2")), false);
    assert.deepEqual(selectorOf({}), { ok: true, value: undefined });
  });
});
