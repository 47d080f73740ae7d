import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ambientEnrollment, type EnrollmentNamespace, type EnrollmentPod } from "./enrollment.ts";

const ns = (labels: Record<string, string> = {}): EnrollmentNamespace => ({
  metadata: { labels },
});
const pod = (
  meta: Partial<EnrollmentPod["metadata"]> = {},
  spec: EnrollmentPod["spec"] = {},
): EnrollmentPod => ({
  metadata: { namespace: "app", ...meta },
  spec,
});
const ambientNs = ns({ "istio.io/dataplane-mode": "ambient" });

describe("ambientEnrollment", () => {
  it("namespace label enrolls; pod label wins both ways", () => {
    assert.equal(ambientEnrollment(pod(), ambientNs, "istio-system").reason, "namespace-label");
    const optOut = ambientEnrollment(
      pod({ labels: { "istio.io/dataplane-mode": "none" } }),
      ambientNs,
      "istio-system",
    );
    assert.deepEqual([optOut.enrolled, optOut.reason], [false, "pod-opted-out"]);
    const optIn = ambientEnrollment(
      pod({ labels: { "istio.io/dataplane-mode": "ambient" } }),
      ns(),
      "istio-system",
    );
    assert.deepEqual([optIn.enrolled, optIn.reason], [true, "pod-label"]);
    assert.equal(ambientEnrollment(pod(), ns(), "istio-system").enrolled, false);
    assert.equal(ambientEnrollment(pod(), undefined, "istio-system").enrolled, false);
  });
  it("never enrolls sidecar, host-network, ztunnel or waypoint pods", () => {
    const labelled = { "istio.io/dataplane-mode": "ambient" };
    const cases: [EnrollmentPod, string][] = [
      [pod({ labels: labelled, annotations: { "sidecar.istio.io/status": "{}" } }), "sidecar"],
      [pod({ labels: { ...labelled, "sidecar.istio.io/inject": "true" } }), "sidecar-injection"],
      [pod({ labels: labelled }, { hostNetwork: true }), "host-network"],
      [pod({ namespace: "istio-system", labels: { ...labelled, app: "ztunnel" } }), "ztunnel"],
      [
        pod({ labels: { ...labelled, "gateway.istio.io/managed": "istio.io-mesh-controller" } }),
        "waypoint",
      ],
      [
        pod({ labels: labelled, annotations: { "ambient.istio.io/redirection": "disabled" } }),
        "redirection-disabled",
      ],
    ];
    for (const [p, reason] of cases) {
      const e = ambientEnrollment(p, ambientNs, "istio-system");
      assert.deepEqual([e.enrolled, e.reason], [false, reason]);
    }
    const injected = ambientEnrollment(
      pod(),
      ns({ "istio.io/dataplane-mode": "ambient", "istio-injection": "enabled" }),
      "istio-system",
    );
    assert.deepEqual([injected.enrolled, injected.reason], [false, "sidecar-injection"]);
  });
});
