/**
 * The local cluster's API server (see server.ts): user config from the config directory,
 * runtime objects persisted in the state directory, Service VIPs, optional bearer tokens.
 */
export { LocalApiServer, apiServerStateDir, type ApiServerOptions } from "./server.ts";
export { ClusterIpAllocator, type Allocations } from "./cluster-ip.ts";
export { kubeconfigYaml, type KubeconfigOptions } from "./kubeconfig.ts";
export { parseTokenFile, tokenAuthenticator, type TokenEntry } from "./tokens.ts";
export { Persistence, applyRecords, type LogRecord, type PersistedState } from "./persistence.ts";
