/**
 * ztunnel's in-pod mode: the ZDS client that takes pods from the node agent (WorkloadManager),
 * the per-pod proxies' lifecycle (InpodStateManager, with an injected proxy factory), its metrics
 * and config_dump state, and the helpers a proxy uses to listen and connect inside a pod's netns.
 *
 * Composition (ztunnel's root):
 *   const state = new InpodStateManager({ startProxy, metrics: createInpodMetrics(registry), log });
 *   const manager = WorkloadManager.start({ state, path: config.inpodUds, log });
 *   // readiness: manager.ready / manager.on("ready", ...); config_dump: state.workloadState()
 *   // shutdown: await manager.close(); await state.drain();
 */
export {
  InpodStateManager,
  type HandleOutcome,
  type InpodStateManagerOptions,
  type ProxyHandle,
  type StartProxy,
  type StartProxyRequest,
  type StopMode,
  type WorkloadStateEntry,
} from "./state-manager.ts";
export {
  RECONNECT_INITIAL_MS,
  RECONNECT_MAX_MS,
  RETRY_PENDING_INTERVAL_MS,
  WorkloadManager,
  type WorkloadManagerEvents,
  type WorkloadManagerOptions,
} from "./workload-manager.ts";
export {
  INPOD_METRIC_NAMES,
  createInpodMetrics,
  noInpodMetrics,
  type InpodMetrics,
} from "./metrics.ts";
export {
  INPOD_MARK,
  INPOD_PORTS,
  connectFromPod,
  createInpodListeners,
  parseProxyBindAddress,
  podHasIpv6,
  type ConnectFromPodOptions,
  type InpodHandlers,
  type InpodListenerOptions,
  type InpodListeners,
  type ProxyBindAddress,
} from "./listeners.ts";
