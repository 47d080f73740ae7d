/**
 * The DNS proxy's Prometheus metrics (INTEROP §6.1), labelled like ztunnel's:
 * `request_query_type` (lower-case type, `a`, `aaaa`, ...), `request_protocol` (`udp`/`tcp`),
 * `source_canonical_service`, `source_canonical_revision` (`unknown` when the client is not
 * known or has none).
 *
 *   istio_dns_requests_total                      every query that reached the resolver
 *   istio_dns_upstream_requests_total             queries forwarded upstream
 *   istio_dns_upstream_failures_total             forwarded queries that got no usable answer
 *   istio_dns_upstream_request_duration_seconds   time to the upstream answer (or failure)
 *
 * One DnsMetrics serves every DNS proxy of a ztunnel (one per pod): creating a second one on
 * the same registry reuses the registered metrics.
 */
import { Counter, Histogram } from "prom-client";
import type { Registry } from "prom-client";
import type { DnsClient } from "./resolver.ts";

const LABELS = [
  "request_query_type",
  "request_protocol",
  "source_canonical_service",
  "source_canonical_revision",
] as const;
type Label = (typeof LABELS)[number];

export const DNS_METRIC_NAMES = {
  requests: "istio_dns_requests_total",
  upstreamRequests: "istio_dns_upstream_requests_total",
  upstreamFailures: "istio_dns_upstream_failures_total",
  upstreamDuration: "istio_dns_upstream_request_duration_seconds",
} as const;

/** ztunnel's buckets (seconds). */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.1, 1, 5];

export type DnsProtocol = "udp" | "tcp";

function counter(registry: Registry, name: string, help: string): Counter<Label> {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing;
  return new Counter({ name, help, labelNames: LABELS, registers: [registry] });
}

export class DnsMetrics {
  readonly requests: Counter<Label>;
  readonly upstreamRequests: Counter<Label>;
  readonly upstreamFailures: Counter<Label>;
  readonly upstreamDuration: Histogram<Label>;

  constructor(registry: Registry) {
    this.requests = counter(registry, DNS_METRIC_NAMES.requests, "Total number of DNS requests");
    this.upstreamRequests = counter(
      registry,
      DNS_METRIC_NAMES.upstreamRequests,
      "Total number of DNS requests forwarded to upstream",
    );
    this.upstreamFailures = counter(
      registry,
      DNS_METRIC_NAMES.upstreamFailures,
      "Total number of DNS requests that failed to forward upstream",
    );
    const existing = registry.getSingleMetric(DNS_METRIC_NAMES.upstreamDuration);
    this.upstreamDuration =
      existing instanceof Histogram
        ? existing
        : new Histogram({
            name: DNS_METRIC_NAMES.upstreamDuration,
            help: "Time in seconds to get a DNS response from upstream",
            labelNames: LABELS,
            buckets: DURATION_BUCKETS,
            registers: [registry],
          });
  }

  /** The label set for one query. */
  static labels(
    type: string,
    protocol: DnsProtocol,
    client: DnsClient | undefined,
  ): Record<Label, string> {
    return {
      request_query_type: type.toLowerCase(),
      request_protocol: protocol,
      source_canonical_service: client?.canonicalName || "unknown",
      source_canonical_revision: client?.canonicalRevision || "unknown",
    };
  }
}
