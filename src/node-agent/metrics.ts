/**
 * The node agent's metrics. Where istio-cni has a metric it keeps its name (`ztunnel_connected`,
 * `nodeagent_reconcile_events_total`); the rest are ours, prefixed `ambient_node_agent_`.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export const NODE_AGENT_METRIC_NAMES = {
  ztunnelConnected: "ztunnel_connected",
  reconcileEvents: "nodeagent_reconcile_events_total",
  enrolledPods: "ambient_node_agent_enrolled_pods",
  pendingPods: "ambient_node_agent_pending_pods",
  waitingForNetnsPods: "ambient_node_agent_pods_waiting_for_netns",
  ruleFailures: "ambient_node_agent_rule_failures_total",
  pluginEvents: "ambient_node_agent_plugin_events_total",
  enrollDuration: "ambient_node_agent_enroll_duration_seconds",
} as const;

export type RuleOperation = "apply" | "remove" | "host-probe";
export type PluginEventResult = "enrolled" | "pending" | "skipped" | "removed" | "error";

export interface NodeAgentMetrics {
  setZtunnelConnections(n: number): void;
  reconcileEvent(type: "add" | "update" | "delete"): void;
  ruleFailure(op: RuleOperation): void;
  pluginEvent(event: "add" | "del", result: PluginEventResult): void;
  enrollDone(seconds: number): void;
}

export interface PodCounts {
  readonly enrolled: number;
  readonly pending: number;
  readonly waitingForNetns: number;
}

/** Registers the metrics in `registry`; the pod gauges read `counts` at scrape time. */
export function createNodeAgentMetrics(
  registry: Registry,
  counts: () => PodCounts,
): NodeAgentMetrics {
  const registers = [registry];
  const connected = new Gauge({
    name: NODE_AGENT_METRIC_NAMES.ztunnelConnected,
    help: "number of connections to ztunnel",
    registers,
  });
  const events = new Counter({
    name: NODE_AGENT_METRIC_NAMES.reconcileEvents,
    help: "The total number of node agent reconcile events.",
    labelNames: ["type"],
    registers,
  });
  new Gauge({
    name: NODE_AGENT_METRIC_NAMES.enrolledPods,
    help: "Pods on this node in the mesh: rules applied and taken by ztunnel (annotated enabled)",
    registers,
    collect() {
      this.set(counts().enrolled);
    },
  });
  new Gauge({
    name: NODE_AGENT_METRIC_NAMES.pendingPods,
    help: "Pods whose rules are applied but which ztunnel has not taken yet (annotated pending; their traffic is blocked)",
    registers,
    collect() {
      this.set(counts().pending);
    },
  });
  new Gauge({
    name: NODE_AGENT_METRIC_NAMES.waitingForNetnsPods,
    help: "Pods that should be enrolled but whose network namespace this agent does not know (waiting for the runtime's next ADD)",
    registers,
    collect() {
      this.set(counts().waitingForNetns);
    },
  });
  const ruleFailures = new Counter({
    name: NODE_AGENT_METRIC_NAMES.ruleFailures,
    help: "Failures to apply or remove pod redirection rules, or to update the node's probe rules",
    labelNames: ["operation"],
    registers,
  });
  const plugin = new Counter({
    name: NODE_AGENT_METRIC_NAMES.pluginEvents,
    help: "Pod events received from the CNI plugin (runtime), by event and result",
    labelNames: ["event", "result"],
    registers,
  });
  const duration = new Histogram({
    name: NODE_AGENT_METRIC_NAMES.enrollDuration,
    help: "Time to enroll a pod: rules applied, ztunnel answered, annotation written",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  connected.set(0);
  for (const op of ["apply", "remove", "host-probe"]) ruleFailures.inc({ operation: op }, 0);
  return {
    setZtunnelConnections: (n) => connected.set(n),
    reconcileEvent: (type) => events.inc({ type }),
    ruleFailure: (operation) => ruleFailures.inc({ operation }),
    pluginEvent: (event, result) => plugin.inc({ event, result }),
    enrollDone: (s) => duration.observe(s),
  };
}
