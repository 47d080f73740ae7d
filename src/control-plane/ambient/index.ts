/**
 * istiod's ambient index, rebuilt: from Kubernetes/Istio/Gateway API objects to the
 * `istio.workload.Address` and `istio.security.Authorization` resources ztunnel consumes
 * (INTEROP.md §3.2–§3.6, §7, §8), computed incrementally, plus who enforces each policy.
 */
export { AmbientIndex, computeAmbient } from "./ambient-index.ts";
export type { AmbientDelta, AmbientState, ResourceDelta } from "./ambient-index.ts";
export { ambientOptions, defaultAmbientOptions } from "./options.ts";
export type { AmbientOptions } from "./options.ts";
export { addressTypeUrl, authorizationTypeUrl } from "./resources.ts";
export type { AddressResource, AmbientResource, AuthorizationResource } from "./resources.ts";
export type { Enforcer, PolicyEnforcement } from "./tables.ts";
export type { Report, ReportLevel } from "./krt/index.ts";
export {
  staticStrictPolicyName,
  convertedPeerAuthenticationPrefix,
} from "./peer-authentication.ts";
export { implicitWaypointPolicyName } from "./workload-policies.ts";
export { describeGatewayAddress } from "./waypoints.ts";
