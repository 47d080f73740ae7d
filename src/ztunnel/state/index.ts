/**
 * ztunnel's state: domain types converted from xDS (`istio.workload.Address`,
 * `istio.security.Authorization`), the ProxyState store with its lookups, and the static local
 * config. Pure and synchronous; the xDS client, DNS and proxies sit on top.
 */
export type {
  Address,
  ApplicationTunnel,
  Endpoint,
  GatewayAddress,
  GatewayDestination,
  HealthPolicy,
  HealthStatus,
  InboundProtocol,
  IpFamilies,
  LoadBalancing,
  LoadBalancingMode,
  LoadBalancingScope,
  Locality,
  NamespacedHostname,
  NetworkAddress,
  NetworkMode,
  PortMap,
  Service,
  ServiceDescription,
  ServiceVip,
  Visibility,
  WeightedWaypoint,
  Workload,
  WorkloadType,
} from "./types.ts";
export { describeService, networkAddressKey, serviceKey, visibleTo } from "./types.ts";
export {
  DEFAULT_CLUSTER_ID,
  DEFAULT_SERVICE_ACCOUNT,
  DEFAULT_TRUST_DOMAIN,
  addressFromXds,
  checkHostname,
  gatewayFromXds,
  parseNamespacedHostname,
  sanIdentities,
  serviceFromXds,
  workloadFromXds,
  type ConvertedAddress,
  type ConvertedWorkload,
} from "./convert.ts";
export {
  ProxyState,
  type ChangeSet,
  type ProxyStateOptions,
  type StateChanges,
  type StateListener,
  type WorkloadInfo,
} from "./proxy-state.ts";
export { applyLocalConfig, parseLocalConfig, type LocalConfig } from "./local-config.ts";
