/**
 * The local runtime — a small Kubernetes on one machine for `ambient up`: the network
 * (namespaces, veths, IPAM), the API server, controllers, cluster DNS, kubelets and kube-proxy.
 * See node-runtime.ts for how the processes are composed and README.md for the supervisor's steps.
 */
export * from "./network/index.ts";
export * from "./apiserver/index.ts";
export * from "./controllers/index.ts";
export * from "./dns/index.ts";
export * from "./kubelet/index.ts";
export * from "./proxy/index.ts";
export {
  API_PORT,
  DNS_PORT,
  NODE_BIN_DIR,
  REPO_ROOT,
  clusterTopology,
  kubeconfigPath,
  startControlPlaneServices,
  startNodeServices,
  storeDnsSource,
  type ControlPlaneServices,
  type ControlPlaneServicesOptions,
  type NodeServices,
  type NodeServicesOptions,
} from "./node-runtime.ts";
export * from "./supervisor/index.ts";
