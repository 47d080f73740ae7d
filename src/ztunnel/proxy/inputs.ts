/**
 * The one bundle of inputs every ztunnel proxy is built from (istio/ztunnel's `ProxyInputs`): the
 * composition root (`src/ztunnel/app.ts`) builds it once and passes it down; nothing in the data
 * path reaches for globals. Proxies read configuration and state from here and report through the
 * telemetry sinks here.
 */
import type { Registry } from "prom-client";
import type { Identity, WorkloadCertificate } from "../../lib/identity/index.ts";
import type { Logger } from "../../lib/log/index.ts";
import type { ProxyState } from "../state/index.ts";

/** The data-path part of ztunnel's configuration (a frozen slice of `loadConfig`'s result). */
export interface ProxyConfig {
  /** This node's network (`NETWORK`), "" by default. */
  readonly network: string;
  /** `CLUSTER_ID`, default `Kubernetes`. */
  readonly clusterId: string;
  /** This ztunnel's node (`NODE_NAME`): local workloads are those whose `node` equals it. */
  readonly nodeName: string;
  /** Kubernetes cluster domain (`CLUSTER_DOMAIN`), default `cluster.local`. */
  readonly clusterDomain: string;
  /** Ports a final destination may never be (15001, 15006, 15008, and 15080 with SOCKS5). */
  readonly illegalPorts: ReadonlySet<number>;
  /** HBONE port on destinations (15008). */
  readonly hbonePort: number;
  /** `SO_MARK` on every socket ztunnel creates in a pod namespace (1337). */
  readonly packetMark: number;
  /** `INPOD_PORT_REUSE` (default true). */
  readonly inpodPortReuse: boolean;
  /** `ENABLE_ORIG_SRC`: "try" best effort (default), "require", or "off". */
  readonly originalSource: "try" | "require" | "off";
  /** `UNSTABLE_ENABLE_SOCKS5`. */
  readonly socks5: boolean;
  /** DNS proxy on (`ISTIO_META_DNS_CAPTURE` absent or "true") and where it binds in each pod. */
  readonly dnsProxy: boolean;
  readonly dnsProxyAddress: { readonly address: string; readonly port: number };
  /** `ENABLE_RESPONSE_BAGGAGE` (default true). */
  readonly responseBaggage: boolean;
  /** Wait for the source workload to appear in xDS before refusing outbound (5 s). */
  readonly sourceWaitMs: number;
  /** Established connections are force-closed this long after drain starts (`CONNECTION_TERMINATION_DEADLINE`). */
  readonly terminationDeadlineMs: number;
  /** HBONE pool: streams per connection (`POOL_MAX_STREAMS_PER_CONNECTION`, 100). */
  readonly poolMaxStreamsPerConnection: number;
  /** HBONE pool: idle connections released after this long (`POOL_UNUSED_RELEASE_TIMEOUT`, 5 min). */
  readonly poolUnusedReleaseTimeoutMs: number;
  /** Outbound TCP connect timeout (10 s). */
  readonly connectTimeoutMs: number;
  /** `TLS12_ENABLED`: also offer/accept TLS 1.2 on HBONE (TLS 1.3 only by default). */
  readonly tls12Enabled: boolean;
}

/** Workload certificates, fetched from the CA (or a local CA in static mode) and kept fresh. */
export interface CertificateSource {
  /**
   * The current certificate for an identity ztunnel may act for. Starts a fetch when none is held
   * (so the first connection for a new identity waits for it); rejects with an error that says
   * why (CA unreachable, identity not local, expired and not renewed).
   */
  certificate(identity: Identity): Promise<WorkloadCertificate>;
  /** The roots a peer's chain must verify against (all of them, for root rotation). */
  roots(): readonly string[];
}

/** On-demand xDS (`XDS_ON_DEMAND`): fetch an address ztunnel does not hold yet. */
export interface AddressDemand {
  /**
   * Asks the control plane for `name` (`<network>/<ip>`, `<namespace>/<hostname>` or a workload
   * uid) and resolves once it is in the state ("found"), known not to exist ("removed"), not
   * answered in time (5 s, "timeout"), or ztunnel is stopping ("closed").
   */
  demand(name: string): Promise<"found" | "removed" | "timeout" | "closed">;
}

/** Everything a proxy needs, built once by the composition root. */
export interface ProxyInputs {
  readonly config: ProxyConfig;
  readonly state: ProxyState;
  readonly certificates: CertificateSource;
  /** Where the proxies register their Prometheus metrics (the §6.1 traffic metrics). */
  readonly registry: Registry;
  /** Access log (`access` scope, INTEROP §6.3). */
  readonly accessLog: Logger;
  /** Diagnostics (`proxy` scope). */
  readonly log: Logger;
  /** Present only in on-demand mode; otherwise every address is pushed up front. */
  readonly demand?: AddressDemand;
}
