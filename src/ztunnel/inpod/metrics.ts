/**
 * The in-pod workload manager's metrics (INTEROP.md §6.1; no `istio_` prefix, as ztunnel
 * registers them under its `workload_manager` sub-registry).
 */
import { Counter, Gauge, type Registry } from "prom-client";

/** What the state manager reports; tests may pass their own. */
export interface InpodMetrics {
  setActiveProxies(count: number): void;
  setPendingProxies(count: number): void;
  proxyStarted(): void;
  proxyStopped(): void;
}

export const INPOD_METRIC_NAMES = {
  activeProxies: "workload_manager_active_proxy_count",
  pendingProxies: "workload_manager_pending_proxy_count",
  proxiesStarted: "workload_manager_proxies_started_total",
  proxiesStopped: "workload_manager_proxies_stopped_total",
} as const;

/** Registers the four metrics in `registry`. */
export function createInpodMetrics(registry: Registry): InpodMetrics {
  const registers = [registry];
  const active = new Gauge({
    name: INPOD_METRIC_NAMES.activeProxies,
    help: "The number of workloads with an active in-pod proxy (unstable)",
    registers,
  });
  const pending = new Gauge({
    name: INPOD_METRIC_NAMES.pendingProxies,
    help: "The number of workloads whose in-pod proxy failed to start and awaits a retry (unstable)",
    registers,
  });
  const started = new Counter({
    name: INPOD_METRIC_NAMES.proxiesStarted,
    help: "The total number of in-pod proxies started (unstable)",
    registers,
  });
  const stopped = new Counter({
    name: INPOD_METRIC_NAMES.proxiesStopped,
    help: "The total number of in-pod proxies stopped (unstable)",
    registers,
  });
  // Present from the start, at zero, like ztunnel's.
  active.set(0);
  pending.set(0);
  return {
    setActiveProxies: (n) => active.set(n),
    setPendingProxies: (n) => pending.set(n),
    proxyStarted: () => started.inc(),
    proxyStopped: () => stopped.inc(),
  };
}

/** Metrics that go nowhere, when none are wanted. */
export const noInpodMetrics: InpodMetrics = {
  setActiveProxies: () => {},
  setPendingProxies: () => {},
  proxyStarted: () => {},
  proxyStopped: () => {},
};
