/**
 * The node agent (istio-cni's ambient role): enrolls this node's pods into ambient mode — the
 * in-pod redirection rules plus the pod's netns handed to ztunnel over ZDS — and takes them out
 * again, without restarting them.
 *
 *   const config = loadConfig();                     // istio-cni's env names
 *   const store = new KubeConfigStore({ kubeConfig, kinds: ["Pod", "Namespace"], log });
 *   const agent = await NodeAgent.start({ config, store, logOutput });
 *   // ... on SIGTERM:
 *   await agent.close(); await store.close();
 *
 * Pod events: `POST /cmdadd` and `/cmddel` on `config.pluginSocket` (see plugin-event.ts), or
 * `agent.handleAdd(...)` / `handleDel(...)` in-process.
 */
export {
  DEFAULT_RUN_DIR,
  DEFAULT_ZTUNNEL_SOCKET,
  PLUGIN_SOCKET_NAME,
  STATE_FILE_NAME,
  loadConfig,
  type NodeAgentConfig,
} from "./config.ts";
export {
  NodeAgent,
  linuxRules,
  type NodeAgentOptions,
  type PodView,
  type ReconcileResult,
  type RulesBackend,
} from "./agent.ts";
export { NODE_AGENT_METRIC_NAMES } from "./metrics.ts";
export {
  PLUGIN_ADD_PATH,
  PLUGIN_DEL_PATH,
  parseAddEvent,
  parseDelEvent,
  type PluginAddEvent,
  type PluginDelEvent,
} from "./plugin-event.ts";
export type { PluginAnswer } from "./plugin-server.ts";
export { planPod, type PodAction, type PodFacts } from "./plan.ts";
export { runNodeAgent, type RunningNodeAgent } from "./run.ts";
