/**
 * In-pod redirection rules (istio-cni's role in the node agent): pure generation from a pod's
 * settings, and idempotent apply/remove inside a network namespace given by path.
 */
export * from "./constants.ts";
export {
  defaultPodSettings,
  isValidInterfaceName,
  podSettingsFromAnnotations,
  type NodeRedirectionSettings,
  type PodRedirectionSettings,
} from "./settings.ts";
export {
  buildPodRules,
  policyRouting,
  renderPodRules,
  renderRestore,
  renderRoutingCommands,
  type FamilyRules,
  type IpFamily,
  type IptablesRule,
  type IptablesTable,
  type PodRules,
  type PolicyRouting,
} from "./pod-rules.ts";
export {
  isEmptyTable,
  parseSave,
  restoreTransition,
  type SavedRule,
  type SavedState,
  type SavedTable,
} from "./reconcile.ts";
export { buildHostProbeNft, removeHostProbeNft, type HostProbeSettings } from "./host-probe.ts";
export {
  applyHostProbeRules,
  applyPodRules,
  removeHostProbeRules,
  removePodRules,
  type ApplyOptions,
} from "./apply.ts";
