/**
 * The local runtime's network: nodes, pods and the control plane as network namespaces joined by
 * a bridge and routed veths, with addresses from 198.18.0.0/15. A pure planner (with IPAM) and an
 * idempotent executor whose teardown also works after a crash.
 */
export {
  ALLOWED_RANGE,
  defaultCidrs,
  podKey,
  validateSpec,
  type ClusterCidrs,
  type NodeSpec,
  type PodSpec,
  type ServiceSpec,
  type TopologySpec,
} from "./spec.ts";
export {
  allocate,
  podGateway,
  type IpamState,
  type NodeAllocation,
  type PodAllocation,
} from "./ipam.ts";
export {
  BRIDGE,
  CONTROL_PLANE_PORT,
  IFNAME_MAX,
  UPLINK,
  controlPlaneNetns,
  networkNetns,
  nodeBridgePort,
  nodeNetns,
  podHostInterface,
  podNetns,
  prefixOf,
} from "./names.ts";
export {
  netnsPath,
  planTopology,
  type NamespaceInfo,
  type NetOp,
  type NetnsRole,
  type NetworkPlan,
  type NodeNetwork,
  type PodNetwork,
  type Topology,
} from "./plan.ts";
export { ipCommand, pendingOps, type Observation } from "./pending.ts";
export {
  listNetns,
  loadTopology,
  networkDown,
  networkUp,
  type DownOptions,
  type DownResult,
  type NetworkOptions,
  type UpResult,
} from "./executor.ts";
export { readState, type NetworkState } from "./state.ts";
export { currentSpec, podNetworkDown, podNetworkUp } from "./pod.ts";
