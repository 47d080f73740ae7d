/**
 * The label set of ztunnel's L4 traffic metrics (INTEROP §6.1), computed from what a proxy knows
 * about one connection: who reports it, the source (its workload, and what mTLS and `baggage`
 * told us), the destination workload and the service it was meant for. Pure; the proxies compute
 * it once per connection (TrafficMetrics caches it per source/destination pair), never per chunk.
 *
 * Like ztunnel: every missing value is `unknown`; principals are full `spiffe://` ids;
 * `source_principal` comes only from the mTLS peer (or our own identity on outbound HBONE), never
 * from the source workload found by IP; the four locality labels appear only when a source or
 * destination is known.
 */
import { formatIdentity, type Identity } from "../../lib/identity/index.ts";
import type { ServiceDescription, Workload } from "../state/index.ts";

/** `source`: the outbound side reports; `destination`: the inbound side. */
export type Reporter = "source" | "destination";

/** `mutual_tls` for HBONE, `unknown` for plain TCP. */
export type SecurityPolicy = "mutual_tls" | "unknown";

/**
 * `response_flags`: `-` for none; `DENY` policy refusal; `CONNECT` no upstream or upstream connect
 * failed; the rest classify HBONE failures (TLS, HTTP/2, TCP connect timeout, peer identity,
 * revoked certificate).
 */
export type ResponseFlag =
  | "-"
  | "DENY"
  | "CONNECT"
  | "TLS_FAILURE"
  | "H2_HANDSHAKE_FAILURE"
  | "NETWORK_POLICY"
  | "IDENTITY_ERROR"
  | "CERT_REVOKED";

/**
 * What we learned about the source from the connection rather than from xDS: the mTLS identity,
 * and (inbound, when enabled) the peer's `baggage`.
 */
export interface DerivedWorkload {
  readonly identity?: Identity | undefined;
  readonly workloadName?: string | undefined;
  readonly app?: string | undefined;
  readonly revision?: string | undefined;
  readonly namespace?: string | undefined;
  readonly clusterId?: string | undefined;
  readonly region?: string | undefined;
  readonly zone?: string | undefined;
}

/** Everything the labels of one connection are made of. */
export interface ConnectionOpen {
  readonly reporter: Reporter;
  /** The source workload from xDS (outbound: this pod; inbound: looked up by the peer IP). */
  readonly source: Workload | undefined;
  readonly derivedSource: DerivedWorkload | undefined;
  /** The workload receiving the connection (outbound: endpoint, waypoint or gateway). */
  readonly destination: Workload | undefined;
  readonly destinationService: ServiceDescription | undefined;
  readonly securityPolicy: SecurityPolicy;
}

export const TRAFFIC_LABEL_NAMES = [
  "reporter",
  "source_workload",
  "source_canonical_service",
  "source_canonical_revision",
  "source_workload_namespace",
  "source_principal",
  "source_app",
  "source_version",
  "source_cluster",
  "destination_service",
  "destination_service_namespace",
  "destination_service_name",
  "destination_workload",
  "destination_canonical_service",
  "destination_canonical_revision",
  "destination_workload_namespace",
  "destination_principal",
  "destination_app",
  "destination_version",
  "destination_cluster",
  "request_protocol",
  "response_flags",
  "connection_security_policy",
  "source_region",
  "source_zone",
  "destination_region",
  "destination_zone",
] as const;

export type TrafficLabelName = (typeof TRAFFIC_LABEL_NAMES)[number];

type LocalityLabel = "source_region" | "source_zone" | "destination_region" | "destination_zone";

/** One connection's labels; the locality labels are absent when neither end is known. */
export type TrafficLabels = Readonly<
  Record<Exclude<TrafficLabelName, LocalityLabel>, string> & Partial<Record<LocalityLabel, string>>
>;

export const UNKNOWN = "unknown";

function v(s: string | undefined): string {
  return s === undefined || s === "" ? UNKNOWN : s;
}

/** The labels of a connection with response flag `-` (the flag is set when it closes). */
export function trafficLabels(c: ConnectionOpen): TrafficLabels {
  const l: Record<string, string> = {
    reporter: c.reporter,
    source_workload: UNKNOWN,
    source_canonical_service: UNKNOWN,
    source_canonical_revision: UNKNOWN,
    source_workload_namespace: UNKNOWN,
    source_principal: UNKNOWN,
    source_app: UNKNOWN,
    source_version: UNKNOWN,
    source_cluster: UNKNOWN,
    destination_service: UNKNOWN,
    destination_service_namespace: UNKNOWN,
    destination_service_name: UNKNOWN,
    destination_workload: UNKNOWN,
    destination_canonical_service: UNKNOWN,
    destination_canonical_revision: UNKNOWN,
    destination_workload_namespace: UNKNOWN,
    destination_principal: UNKNOWN,
    destination_app: UNKNOWN,
    destination_version: UNKNOWN,
    destination_cluster: UNKNOWN,
    request_protocol: "tcp",
    response_flags: "-",
    connection_security_policy: c.securityPolicy,
  };
  let locality = false;
  const d = c.derivedSource;
  // Derived first: the workload from xDS, when there is one, is the more reliable description.
  if (d !== undefined) {
    locality = true;
    l["source_workload"] = v(d.workloadName);
    l["source_canonical_service"] = v(d.app);
    l["source_canonical_revision"] = v(d.revision);
    l["source_workload_namespace"] = v(d.namespace);
    l["source_app"] = v(d.workloadName);
    l["source_version"] = v(d.revision);
    l["source_cluster"] = v(d.clusterId);
    l["source_principal"] = d.identity === undefined ? UNKNOWN : formatIdentity(d.identity);
    l["source_region"] = v(d.region);
    l["source_zone"] = v(d.zone);
  }
  const s = c.source;
  if (s !== undefined) {
    locality = true;
    l["source_workload"] = v(s.workloadName);
    l["source_canonical_service"] = v(s.canonicalName);
    l["source_canonical_revision"] = v(s.canonicalRevision);
    l["source_workload_namespace"] = v(s.namespace);
    l["source_app"] = v(s.canonicalName);
    l["source_version"] = v(s.canonicalRevision);
    l["source_cluster"] = v(s.clusterId);
    l["source_region"] = v(s.locality.region);
    l["source_zone"] = v(s.locality.zone);
  }
  const w = c.destination;
  if (w !== undefined) {
    locality = true;
    l["destination_workload"] = v(w.workloadName);
    l["destination_canonical_service"] = v(w.canonicalName);
    l["destination_canonical_revision"] = v(w.canonicalRevision);
    l["destination_workload_namespace"] = v(w.namespace);
    l["destination_principal"] = formatIdentity(w.identity);
    l["destination_app"] = v(w.canonicalName);
    l["destination_version"] = v(w.canonicalRevision);
    l["destination_cluster"] = v(w.clusterId);
    l["destination_region"] = v(w.locality.region);
    l["destination_zone"] = v(w.locality.zone);
  }
  const svc = c.destinationService;
  if (svc !== undefined) {
    l["destination_service"] = v(svc.hostname);
    l["destination_service_name"] = v(svc.name);
    l["destination_service_namespace"] = v(svc.namespace);
  }
  if (locality) {
    l["source_region"] ??= UNKNOWN;
    l["source_zone"] ??= UNKNOWN;
    l["destination_region"] ??= UNKNOWN;
    l["destination_zone"] ??= UNKNOWN;
  }
  return Object.freeze(l) as TrafficLabels;
}

/** The same labels with another response flag (the `closed` and `failed` series). */
export function withResponseFlag(labels: TrafficLabels, flag: ResponseFlag): TrafficLabels {
  if (labels.response_flags === flag) return labels;
  return Object.freeze({ ...labels, response_flags: flag });
}
