/**
 * Istio ambient-mode semantics shared by the control plane and the node agent: the label and
 * annotation keys (spelled as Istio spells them) and the pod enrollment decision.
 */
export { annotation, label, value, type TrafficType } from "./labels.ts";
export {
  ambientEnrollment,
  type Enrollment,
  type EnrollmentNamespace,
  type EnrollmentPod,
  type EnrollmentReason,
} from "./enrollment.ts";
