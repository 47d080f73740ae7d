/**
 * ztunnel's L4 traffic metrics (INTEROP §6.1), registered once per Prometheus registry and shared
 * by every per-pod proxy of the process:
 *
 *   istio_tcp_connections_opened_total   connections opened (response_flags "-")
 *   istio_tcp_connections_closed_total   connections closed, with the response flag they ended with
 *   istio_tcp_connections_failed_total   connections closed with a failure flag (not "-")
 *   istio_tcp_received_bytes_total       bytes client -> server
 *   istio_tcp_sent_bytes_total           bytes server -> client
 *   istio_tcp_sockets_open               TCP sockets the proxies hold open, by reporter (gauge)
 *   istio_on_demand_dns_total            hostname-only workloads resolved for a connection
 *
 * Label objects are cached per (source workload, destination workload, the rest) so a connection
 * costs a few map probes, and a workload updated by xDS (a new object) gets fresh labels.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import { formatIdentity } from "../../lib/identity/index.ts";
import type { Workload } from "../state/index.ts";
import {
  TRAFFIC_LABEL_NAMES,
  UNKNOWN,
  trafficLabels,
  type ConnectionOpen,
  type Reporter,
  type TrafficLabelName,
  type TrafficLabels,
} from "./traffic-labels.ts";

export const TRAFFIC_METRIC_NAMES = {
  opened: "istio_tcp_connections_opened_total",
  closed: "istio_tcp_connections_closed_total",
  failed: "istio_tcp_connections_failed_total",
  received: "istio_tcp_received_bytes_total",
  sent: "istio_tcp_sent_bytes_total",
  socketsOpen: "istio_tcp_sockets_open",
  onDemandDns: "istio_on_demand_dns_total",
} as const;

const ON_DEMAND_DNS_LABELS = [
  "source_workload",
  "source_canonical_service",
  "source_canonical_revision",
  "source_workload_namespace",
  "source_principal",
  "source_app",
  "source_version",
  "source_cluster",
  "hostname",
] as const;
type OnDemandDnsLabel = (typeof ON_DEMAND_DNS_LABELS)[number];

function counter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

/** Stands in for "no workload" as a WeakMap key. */
const NONE: object = Object.freeze({});

const byRegistry = new WeakMap<Registry, TrafficMetrics>();

export class TrafficMetrics {
  readonly opened: Counter<TrafficLabelName>;
  readonly closed: Counter<TrafficLabelName>;
  readonly failed: Counter<TrafficLabelName>;
  readonly received: Counter<TrafficLabelName>;
  readonly sent: Counter<TrafficLabelName>;
  readonly socketsOpen: Gauge<"reporter">;
  readonly onDemandDns: Counter<OnDemandDnsLabel>;
  readonly #labels = new WeakMap<object, WeakMap<object, Map<string, TrafficLabels>>>();
  readonly #reporterLabels: Readonly<Record<Reporter, { reporter: Reporter }>> = {
    source: { reporter: "source" },
    destination: { reporter: "destination" },
  };

  private constructor(registry: Registry) {
    this.opened = counter(
      registry,
      TRAFFIC_METRIC_NAMES.opened,
      "The total number of TCP connections opened",
      TRAFFIC_LABEL_NAMES,
    );
    this.closed = counter(
      registry,
      TRAFFIC_METRIC_NAMES.closed,
      "The total number of TCP connections closed",
      TRAFFIC_LABEL_NAMES,
    );
    this.failed = counter(
      registry,
      TRAFFIC_METRIC_NAMES.failed,
      "The total number of TCP connections that failed to establish or were refused",
      TRAFFIC_LABEL_NAMES,
    );
    this.received = counter(
      registry,
      TRAFFIC_METRIC_NAMES.received,
      "The size of total bytes received during request in case of a TCP connection",
      TRAFFIC_LABEL_NAMES,
    );
    this.sent = counter(
      registry,
      TRAFFIC_METRIC_NAMES.sent,
      "The size of total bytes sent during response in case of a TCP connection",
      TRAFFIC_LABEL_NAMES,
    );
    const gauge = registry.getSingleMetric(TRAFFIC_METRIC_NAMES.socketsOpen);
    this.socketsOpen =
      gauge instanceof Gauge
        ? gauge
        : new Gauge({
            name: TRAFFIC_METRIC_NAMES.socketsOpen,
            help: "The number of TCP sockets currently open",
            labelNames: ["reporter"],
            registers: [registry],
          });
    this.onDemandDns = counter(
      registry,
      TRAFFIC_METRIC_NAMES.onDemandDns,
      "The total number of requests that used on-demand DNS (unstable)",
      ON_DEMAND_DNS_LABELS,
    );
  }

  /** The metrics of `registry`, registered on first use and shared afterwards. */
  static for(registry: Registry): TrafficMetrics {
    let m = byRegistry.get(registry);
    if (m === undefined) {
      m = new TrafficMetrics(registry);
      byRegistry.set(registry, m);
    }
    return m;
  }

  /** The (cached) labels of a connection. */
  labels(c: ConnectionOpen): TrafficLabels {
    const srcKey: object = c.source ?? NONE;
    const dstKey: object = c.destination ?? NONE;
    let bySrc = this.#labels.get(srcKey);
    if (bySrc === undefined) {
      bySrc = new WeakMap();
      this.#labels.set(srcKey, bySrc);
    }
    let byDst = bySrc.get(dstKey);
    if (byDst === undefined) {
      byDst = new Map();
      bySrc.set(dstKey, byDst);
    }
    const key = restKey(c);
    let l = byDst.get(key);
    if (l === undefined) {
      l = trafficLabels(c);
      // Bounded: the rest varies by service, identity and baggage of the peers of one pair.
      if (byDst.size >= 256) byDst.clear();
      byDst.set(key, l);
    }
    return l;
  }

  socketOpened(reporter: Reporter): void {
    this.socketsOpen.inc(this.#reporterLabels[reporter]);
  }

  socketClosed(reporter: Reporter): void {
    this.socketsOpen.dec(this.#reporterLabels[reporter]);
  }

  /** A hostname-only workload was resolved for a connection from `source`. */
  onDemandDnsUsed(source: Workload, hostname: string): void {
    const s = (x: string) => (x === "" ? UNKNOWN : x);
    this.onDemandDns.inc({
      source_workload: s(source.workloadName),
      source_canonical_service: s(source.canonicalName),
      source_canonical_revision: s(source.canonicalRevision),
      source_workload_namespace: s(source.namespace),
      source_principal: formatIdentity(source.identity),
      source_app: s(source.canonicalName),
      source_version: s(source.canonicalRevision),
      source_cluster: s(source.clusterId),
      hostname: s(hostname),
    });
  }
}

function restKey(c: ConnectionOpen): string {
  const svc = c.destinationService;
  let k = `${c.reporter}|${c.securityPolicy}|${svc === undefined ? "" : `${svc.namespace}/${svc.name}/${svc.hostname}`}`;
  const d = c.derivedSource;
  if (d !== undefined) {
    k += `|${d.identity === undefined ? "" : formatIdentity(d.identity)}|${d.workloadName ?? ""}|${d.app ?? ""}|${d.revision ?? ""}|${d.namespace ?? ""}|${d.clusterId ?? ""}|${d.region ?? ""}|${d.zone ?? ""}`;
  }
  return k;
}
