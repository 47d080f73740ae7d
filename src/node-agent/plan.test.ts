import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ambientEnrollment, type EnrollmentPod } from "../lib/ambient/index.ts";
import { describeAction, planPod, type PodFacts } from "./plan.ts";

const base: PodFacts = {
  desired: true,
  gone: false,
  netns: true,
  annotation: undefined,
  zds: "none",
  rules: "none",
};

describe("planPod", () => {
  // Each row: facts (over the base), expected action as describeAction prints it.
  const rows: [string, Partial<PodFacts>, string][] = [
    // --- should be in the mesh
    ["new pod with netns: everything", {}, "enroll(rules+zds-add)"],
    ["no netns yet, never enrolled: wait for the ADD", { netns: false }, "wait-netns"],
    [
      "no netns, enrolled by an earlier run: keep ztunnel's proxy",
      { netns: false, annotation: "enabled" },
      "keep",
    ],
    [
      "no netns, pending from an earlier run: keep",
      { netns: false, annotation: "pending" },
      "keep",
    ],
    [
      "no netns, already kept: nothing",
      { netns: false, zds: "kept", annotation: "enabled" },
      "none",
    ],
    ["fully enrolled: nothing", { zds: "acked", rules: "current", annotation: "enabled" }, "none"],
    [
      "ztunnel took it, annotation not written yet",
      { zds: "acked", rules: "current" },
      "enroll(annotate)",
    ],
    [
      "ztunnel took it after pending: flip the annotation",
      { zds: "acked", rules: "current", annotation: "pending" },
      "enroll(annotate)",
    ],
    [
      "pending: offer to ztunnel again, rules stay",
      { zds: "pending", rules: "current", annotation: "pending" },
      "enroll(zds-add)",
    ],
    [
      "annotations changed the settings: re-apply rules only",
      { zds: "acked", rules: "stale", annotation: "enabled" },
      "enroll(rules)",
    ],
    [
      "restored from the last run: reconcile rules, the snapshot decides ZDS",
      { zds: "snapshot", rules: "stale", annotation: "enabled" },
      "enroll(rules)",
    ],
    [
      "restored, rules done, snapshot outstanding: nothing",
      { zds: "snapshot", rules: "current", annotation: "enabled" },
      "none",
    ],
    [
      "kept pod whose ADD arrived: rules and add",
      { zds: "kept", rules: "stale", annotation: "enabled" },
      "enroll(rules+zds-add)",
    ],
    // --- should not be in the mesh (label removed, opted out, ...)
    ["never enrolled: nothing", { desired: false }, "none"],
    [
      "enrolled: del, rules, annotation",
      { desired: false, zds: "acked", rules: "current", annotation: "enabled" },
      "unenroll(zds-del+rules+annotation)",
    ],
    [
      "pending: del, rules, annotation",
      { desired: false, zds: "pending", rules: "current", annotation: "pending" },
      "unenroll(zds-del+rules+annotation)",
    ],
    [
      "annotated by an earlier run, unlabelled while the agent was down",
      { desired: false, annotation: "enabled" },
      "unenroll(zds-del+rules+annotation)",
    ],
    [
      "annotated, netns unknown: del and annotation, rules out of reach",
      { desired: false, netns: false, annotation: "enabled" },
      "unenroll(zds-del+annotation)",
    ],
    ["rules left by a crash mid-enroll", { desired: false, rules: "stale" }, "unenroll(rules)"],
    // --- gone (deleted, terminal, sandbox torn down)
    [
      "enrolled pod deleted: only ztunnel needs telling",
      { gone: true, zds: "acked", rules: "current", annotation: "enabled" },
      "unenroll(zds-del)",
    ],
    [
      "deleted even though labels still say ambient",
      { desired: true, gone: true, zds: "acked", rules: "current", annotation: "enabled" },
      "unenroll(zds-del)",
    ],
    [
      "gone and already deleted from ztunnel: nothing",
      { gone: true, annotation: "enabled", rules: "current" },
      "none",
    ],
    ["never enrolled pod gone: nothing", { gone: true }, "none"],
  ];
  for (const [name, facts, want] of rows) {
    it(name, () => {
      assert.equal(describeAction(planPod({ ...base, ...facts })), want);
    });
  }

  it("label combinations through ambientEnrollment", () => {
    const combos: [Record<string, string>, Record<string, string>, boolean][] = [
      [{}, { "istio.io/dataplane-mode": "ambient" }, true],
      [{ "istio.io/dataplane-mode": "ambient" }, {}, true],
      [{ "istio.io/dataplane-mode": "none" }, { "istio.io/dataplane-mode": "ambient" }, false],
      [{}, {}, false],
      [{ "sidecar.istio.io/inject": "true" }, { "istio.io/dataplane-mode": "ambient" }, false],
    ];
    for (const [podLabels, nsLabels, enrolled] of combos) {
      const pod: EnrollmentPod = { metadata: { namespace: "app", labels: podLabels } };
      const desired = ambientEnrollment(pod, { metadata: { labels: nsLabels } }, "istio-system");
      assert.equal(desired.enrolled, enrolled, JSON.stringify({ podLabels, nsLabels }));
      const action = planPod({ ...base, desired: desired.enrolled });
      assert.equal(action.kind, enrolled ? "enroll" : "none");
    }
  });
});
