/**
 * L4 authorization: the policy model, the pure evaluator (ztunnel's semantics), conversion from
 * the `istio.security.Authorization` xDS resource, and the IP/CIDR helpers they rest on.
 */
export {
  isEmptyMatch,
  policyKey,
  rbacMatch,
  type Authorization,
  type RbacAction,
  type RbacClause,
  type RbacConnection,
  type RbacMatch,
  type RbacRule,
  type RbacScope,
  type ServiceAccountMatch,
  type StringMatch,
} from "./model.ts";
export {
  applicablePolicies,
  authorize,
  describeDecision,
  evaluatePolicies,
  policyMatches,
  principalOf,
  type ApplicablePolicies,
  type AuthorizationDecision,
  type DryRunMatch,
  type DryRunReport,
  type PolicyLookup,
  type PolicyTarget,
} from "./evaluate.ts";
export { authorizationFromXds } from "./xds.ts";
