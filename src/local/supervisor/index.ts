/**
 * `ambient up` / `down` and the commands around a running local cluster: the component plan,
 * the supervisor, teardown, the cluster view, manifests into the config directory.
 */
export {
  ApiClient,
  podMesh,
  podReady,
  podsOfDeployment,
  type Node as ApiNode,
  type Pod as ApiPod,
  type Service as ApiService,
} from "./api.ts";
export { crashCount, restartDelayMs } from "./backoff.ts";
export {
  containerLog,
  findPod,
  openCluster,
  podNetnsName,
  resolveCluster,
  ztunnelGet,
  type ClusterRef,
  type OpenCluster,
} from "./cluster.ts";
export { readClusterFile, type ClusterFile } from "./cluster-file.ts";
export {
  CONTROL_PLANE_HOSTNAME,
  PORTS,
  planCluster,
  stopOrder,
  type ClusterPlan,
  type ComponentSpec,
} from "./components.ts";
export { formatView, table, tryCommands } from "./format.ts";
export {
  DEFAULT_CLUSTER,
  STATE_ROOT,
  clusterLayout,
  defaultStateDir,
  nodeLayout,
  type ClusterLayout,
} from "./layout.ts";
export {
  applyToConfigDir,
  deleteFromConfigDir,
  describeApplied,
  kindFromArg,
  labelInConfigDir,
  parseLabelChange,
  readManifestInputs,
} from "./manifests.ts";
export { netnsHttp, unixHttp, type HttpAnswer } from "./netns-http.ts";
export { runSupervisor } from "./run-supervisor.ts";
export { readStatus, type ComponentStatus, type SupervisorStatus } from "./status-file.ts";
export { clusterDown, type DownReport } from "./teardown.ts";
export { DEFAULT_NODES, clusterUp, logTail, podProblem, type ClusterUpResult } from "./up.ts";
export { gatherView, type ClusterView } from "./view.ts";
