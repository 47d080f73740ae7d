import type { Command } from "../command.ts";
import {
  CLUSTER_OPTIONS,
  CLUSTER_USAGE,
  isRoot,
  needRoot,
  openFromFlags,
  parse,
  usageError,
} from "./local-cluster.ts";

const METRICS_USAGE = `ambient ztunnel-metrics [--cluster NAME] <node>

Prints the Prometheus metrics of a node's ztunnel (http://<node-ip>:15020/metrics inside the
node's namespace), e.g. istio_tcp_connections_opened_total{connection_security_policy="mutual_tls",...}.
Without ambient, the same is:
  nsenter --net=/run/netns/amb-<cluster>-<node> curl -s http://<node-ip>:15020/metrics

${CLUSTER_USAGE}`;

const DUMP_USAGE = `ambient config-dump [--cluster NAME] <node>

Prints a node's ztunnel /config_dump (JSON: workloads, services, policies, certificates,
workloadState) from its admin port, 127.0.0.1:15000 inside the node's namespace. Without ambient:
  nsenter --net=/run/netns/amb-<cluster>-<node> curl -s http://127.0.0.1:15000/config_dump

${CLUSTER_USAGE}`;

function nodeCommand(
  name: string,
  summary: string,
  usage: string,
  which: "metrics" | "admin",
  path: string,
): Command {
  return {
    name,
    summary,
    usage,
    async run(args) {
      const p = parse(args, { ...CLUSTER_OPTIONS });
      if (!p.ok) return usageError(name, p.reason, usage);
      const [node, ...extra] = p.value.positionals;
      if (node === undefined || extra.length > 0)
        return usageError(name, "expected one <node>", usage);
      if (!isRoot()) return needRoot(name);
      const o = await openFromFlags(name, p.value.values);
      if (o === undefined) return 1;
      const r = await o.local.ztunnelGet(o.open, node, which, path);
      if (!r.ok) {
        console.error(`ambient ${name}: ${r.reason}`);
        return 1;
      }
      if (r.value.status !== 200) {
        console.error(
          `ambient ${name}: ztunnel on ${node} answered ${r.value.status}: ${r.value.body.trim()}`,
        );
        return 1;
      }
      process.stdout.write(r.value.body.endsWith("\n") ? r.value.body : `${r.value.body}\n`);
      return 0;
    },
  };
}

export const ztunnelMetrics = nodeCommand(
  "ztunnel-metrics",
  "print a node's ztunnel metrics (Prometheus text)",
  METRICS_USAGE,
  "metrics",
  "/metrics",
);

export const configDump = nodeCommand(
  "config-dump",
  "print a node's ztunnel /config_dump",
  DUMP_USAGE,
  "admin",
  "/config_dump",
);
