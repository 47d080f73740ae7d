/**
 * The control plane's Prometheus metrics, on its own registry. Names follow istiod where it has
 * one (`pilot_xds`, `pilot_xds_pushes`, `pilot_total_xds_rejects`, `pilot_proxy_convergence_time`,
 * `citadel_server_*`, `istio_build`); the rest are ours, prefixed `ambient_`.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { XdsServerObserver } from "../../lib/xds/index.ts";
import type { CaServiceObserver } from "../ca/ca-service.ts";

/** `type.googleapis.com/istio.workload.Address` -> `address`. */
export function shortType(typeUrl: string): string {
  const last = typeUrl.slice(typeUrl.lastIndexOf(".") + 1);
  return last.toLowerCase();
}

export class ControlPlaneMetrics {
  readonly registry = new Registry();
  readonly connected: Gauge;
  readonly pushes: Counter;
  readonly pushedResources: Counter;
  readonly pushedRemovals: Counter;
  readonly pushLatency: Histogram;
  readonly nacks: Counter;
  readonly refusedStreams: Counter;
  readonly configErrors: Gauge;
  readonly conversionWarnings: Gauge;
  readonly csrs: Counter;
  readonly certsIssued: Counter;
  readonly authFailures: Counter;
  readonly csrRefused: Counter;
  readonly configEvents: Counter;

  constructor(options: {
    version: string;
    configErrors: () => number;
    conversionWarnings: () => number;
  }) {
    const registers = [this.registry];
    this.connected = new Gauge({
      name: "pilot_xds",
      help: "Proxies connected over xDS, by proxy type (the first part of the node id)",
      labelNames: ["type"],
      registers,
    });
    this.pushes = new Counter({
      name: "pilot_xds_pushes",
      help: "xDS responses sent, by resource type",
      labelNames: ["type"],
      registers,
    });
    this.pushedResources = new Counter({
      name: "ambient_xds_pushed_resources_total",
      help: "Resources sent in xDS responses, by resource type",
      labelNames: ["type"],
      registers,
    });
    this.pushedRemovals = new Counter({
      name: "ambient_xds_pushed_removals_total",
      help: "Resource removals sent in xDS responses, by resource type",
      labelNames: ["type"],
      registers,
    });
    this.pushLatency = new Histogram({
      name: "pilot_proxy_convergence_time",
      help: "Seconds from a configuration change reaching the control plane to the response carrying it being written to a proxy",
      labelNames: ["type"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.nacks = new Counter({
      name: "pilot_total_xds_rejects",
      help: "xDS responses a proxy rejected (NACK), by resource type",
      labelNames: ["type"],
      registers,
    });
    this.refusedStreams = new Counter({
      name: "ambient_xds_refused_streams_total",
      help: "xDS streams refused, by gRPC status",
      labelNames: ["code"],
      registers,
    });
    this.configErrors = new Gauge({
      name: "ambient_config_errors",
      help: "Configuration problems in force now (rejected documents, fields, files); see /debug/config-errors",
      registers,
      collect() {
        this.set(options.configErrors());
      },
    });
    this.conversionWarnings = new Gauge({
      name: "ambient_config_conversion_warnings",
      help: "Objects accepted but converted with a warning (e.g. a waypoint with no address); see /debug/config-errors",
      registers,
      collect() {
        this.set(options.conversionWarnings());
      },
    });
    this.configEvents = new Counter({
      name: "ambient_config_events_total",
      help: "Configuration object changes received from the config source, by kind",
      labelNames: ["kind"],
      registers,
    });
    this.csrs = new Counter({
      name: "citadel_server_csr_count",
      help: "Certificate signing requests received",
      registers,
    });
    this.certsIssued = new Counter({
      name: "citadel_server_success_cert_issuance_count",
      help: "Certificates issued",
      registers,
    });
    this.authFailures = new Counter({
      name: "citadel_server_authentication_failure_count",
      help: "Certificate requests refused because the caller was not authenticated or not entitled to the identity",
      registers,
    });
    this.csrRefused = new Counter({
      name: "ambient_ca_refused_total",
      help: "Certificate requests refused, by reason (unauthenticated, not-entitled, bad-request)",
      labelNames: ["reason"],
      registers,
    });
    const build = new Gauge({
      name: "istio_build",
      help: "Build information",
      labelNames: ["component", "tag"],
      registers,
    });
    build.set({ component: "pilot", tag: options.version }, 1);
  }

  /** Hooks for the XdsServer. */
  xdsObserver(): XdsServerObserver {
    return {
      connected: (e) => this.connected.inc({ type: e.proxy.type || "unknown" }),
      disconnected: (e) => {
        if (e.proxy !== undefined) this.connected.dec({ type: e.proxy.type || "unknown" });
      },
      pushed: (e) => {
        const type = shortType(e.typeUrl);
        this.pushes.inc({ type });
        this.pushedResources.inc({ type }, e.resources);
        if (e.removed > 0) this.pushedRemovals.inc({ type }, e.removed);
        if (e.latencyMs !== undefined) this.pushLatency.observe({ type }, e.latencyMs / 1000);
      },
      nacked: (e) => this.nacks.inc({ type: shortType(e.typeUrl) }),
      refused: (e) => this.refusedStreams.inc({ code: e.code }),
    };
  }

  /** Hooks for the CA service. */
  caObserver(): CaServiceObserver {
    return {
      signed: () => {
        this.csrs.inc();
        this.certsIssued.inc();
      },
      refused: (e) => {
        this.csrs.inc();
        if (e.reason !== "bad-request") this.authFailures.inc();
        this.csrRefused.inc({ reason: e.reason });
      },
    };
  }
}
