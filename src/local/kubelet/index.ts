/**
 * The kubelet of the local cluster: pods as network namespaces running their containers'
 * commands as processes, with probes, restarts, status, the CNI hook, and adoption on restart.
 */
export { Kubelet, type KubeletOptions } from "./kubelet.ts";
export { PodWorker, resolvConf, killAllIn, type PodRecord, type WorkerDeps } from "./pod-worker.ts";
export { noopCni, pluginEventHook, type CniHook, type CniPodEvent } from "./cni.ts";
export { containerArgv, containerEnv, expandVars, fieldRefValue, type EnvContext } from "./env.ts";
export { parseProbe, runProbe, resolvePort, type Probe, type ProbeAction } from "./probes.ts";
export {
  podStatus,
  phaseOf,
  type ContainerView,
  type PodView,
  type Termination,
} from "./pod-status.ts";
export {
  startProcess,
  adoptProcess,
  isAlive,
  processStartTicks,
  signalGroup,
} from "./processes.ts";
