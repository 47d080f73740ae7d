/**
 * Whether a pod should be enrolled in ambient mode (its traffic redirected to the node's
 * ztunnel) — the istio-cni decision. The node agent acts on it; the control plane only reports
 * it: istiod itself never filters workloads by enrollment, it marks a workload HBONE-capable
 * when the node agent has annotated the pod `ambient.istio.io/redirection: enabled`.
 */
import { annotation, label, value } from "./labels.ts";

/** The parts of a Pod the decision reads (any Kubernetes-shaped pod object fits). */
export interface EnrollmentPod {
  readonly metadata: {
    readonly namespace?: string | undefined;
    readonly labels?: Readonly<Record<string, string>> | undefined;
    readonly annotations?: Readonly<Record<string, string>> | undefined;
  };
  readonly spec?: { readonly hostNetwork?: boolean | undefined } | undefined;
}

/** The parts of a Namespace the decision reads. */
export interface EnrollmentNamespace {
  readonly metadata: { readonly labels?: Readonly<Record<string, string>> | undefined };
}

export type EnrollmentReason =
  | "pod-label"
  | "namespace-label"
  | "not-labelled"
  | "pod-opted-out"
  | "sidecar"
  | "sidecar-injection"
  | "host-network"
  | "ztunnel"
  | "waypoint"
  | "redirection-disabled";

export interface Enrollment {
  enrolled: boolean;
  reason: EnrollmentReason;
  /** Operator-facing explanation. */
  message: string;
}

/**
 * INTEROP §8: the pod's `istio.io/dataplane-mode` label wins over the namespace's; `ambient`
 * enrolls, any other value excludes. Pods with an injected sidecar (or sidecar injection
 * requested), host-network pods, ztunnel pods and waypoint instances are never enrolled.
 */
export function ambientEnrollment(
  pod: EnrollmentPod,
  namespace: EnrollmentNamespace | undefined,
  systemNamespace: string,
): Enrollment {
  const labels = pod.metadata.labels ?? {};
  const annotations = pod.metadata.annotations ?? {};
  const nsLabels = namespace?.metadata.labels ?? {};
  const podMode = labels[label.dataplaneMode];
  const nsMode = nsLabels[label.dataplaneMode];
  const no = (reason: EnrollmentReason, message: string): Enrollment => ({
    enrolled: false,
    reason,
    message,
  });

  if (pod.spec?.hostNetwork === true) {
    return no(
      "host-network",
      "host-network pods share the node's network namespace and cannot be captured",
    );
  }
  if (pod.metadata.namespace === systemNamespace && labels["app"] === "ztunnel") {
    return no("ztunnel", "ztunnel pods are never captured by ztunnel");
  }
  if (labels[label.gatewayManaged] === value.meshControllerLabel) {
    return no("waypoint", "waypoint instances are not captured; ztunnel sends them HBONE directly");
  }
  if (annotations[annotation.sidecarStatus] !== undefined) {
    return no(
      "sidecar",
      "the pod has an injected sidecar (sidecar.istio.io/status); ambient and sidecar do not mix",
    );
  }
  if (labels[label.sidecarInject] === "true" || nsLabels[label.istioInjection] === "enabled") {
    return no(
      "sidecar-injection",
      "sidecar injection is requested for this pod; it takes precedence over ambient",
    );
  }
  if (annotations[annotation.redirection] === value.redirectionDisabled) {
    return no("redirection-disabled", "the pod is annotated ambient.istio.io/redirection=disabled");
  }
  if (podMode !== undefined) {
    if (podMode === value.dataplaneModeAmbient) {
      return {
        enrolled: true,
        reason: "pod-label",
        message: "pod labelled istio.io/dataplane-mode=ambient",
      };
    }
    return no(
      "pod-opted-out",
      `pod labelled istio.io/dataplane-mode=${podMode}, which overrides its namespace`,
    );
  }
  if (nsMode === value.dataplaneModeAmbient) {
    return {
      enrolled: true,
      reason: "namespace-label",
      message: `namespace ${pod.metadata.namespace ?? ""} labelled istio.io/dataplane-mode=ambient`,
    };
  }
  return no(
    "not-labelled",
    "neither the pod nor its namespace is labelled istio.io/dataplane-mode=ambient",
  );
}
