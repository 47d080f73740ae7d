/**
 * Upstream selection shared by the outbound planner and by waypoint / network-gateway resolution
 * (ztunnel's `find_upstream`, `load_balance`, `finalize_upstream`): service VIP or workload IP ->
 * endpoint candidates -> routing preference ranks -> weighted random pick -> target port ->
 * the IP to dial.
 */
import { identitiesEqual } from "../../../lib/identity/index.ts";
import type { Identity } from "../../../lib/identity/index.ts";
import { ipFamilyOf } from "../../../lib/net/index.ts";
import type {
  Endpoint,
  GatewayAddress,
  LoadBalancingScope,
  ProxyState,
  Service,
  Workload,
} from "../../state/index.ts";
import { serviceKey } from "../../state/index.ts";
import type { Rng, SocketAddr } from "./common.ts";

/** Cached DNS answers for workloads known only by hostname; undefined = not resolved yet. */
export type DnsLookup = (hostname: string) => readonly string[] | undefined;

/** Standard: a user-addressed service. Waypoint: the port need not be declared (app tunnels). */
export type ResolutionMode = "standard" | "waypoint";

export interface PlanContext {
  readonly state: ProxyState;
  readonly source: Workload;
  readonly rng: Rng;
  readonly dns: DnsLookup | undefined;
}

/** A chosen upstream: the workload, the IP to dial (undefined: only via its network gateway). */
export interface Upstream {
  readonly workload: Workload;
  readonly ip: string | undefined;
  readonly port: number;
  /** The service it was selected through, if any. */
  readonly service: Service | undefined;
}

type Parts = {
  readonly workload: Workload;
  readonly port: number;
  readonly service: Service | undefined;
};

export type FoundUpstream =
  | ({ readonly kind: "parts" } & Parts)
  /** A PASSTHROUGH service: no endpoint selection, go to the original destination. */
  | { readonly kind: "original-destination"; readonly service: Service }
  | { readonly kind: "none"; readonly service: Service | undefined; readonly why: string };

export type Finalized =
  | { readonly kind: "ok"; readonly upstream: Upstream }
  | { readonly kind: "needs-dns"; readonly hostname: string; readonly workload: Workload }
  | { readonly kind: "error"; readonly why: string };

function familyAccepts(f: Service["ipFamilies"], ip: string): boolean {
  if (f === "IPV4_ONLY") return ipFamilyOf(ip) === 4;
  if (f === "IPV6_ONLY") return ipFamilyOf(ip) === 6;
  return true;
}

function scopeMatches(scope: LoadBalancingScope, src: Workload, wl: Workload): boolean {
  switch (scope) {
    case "REGION":
      return src.locality.region === wl.locality.region;
    case "ZONE":
      return src.locality.zone === wl.locality.zone;
    case "SUBZONE":
      return src.locality.subzone === wl.locality.subzone;
    case "NODE":
      return src.node === wl.node;
    case "CLUSTER":
      return src.clusterId === wl.clusterId;
    case "NETWORK":
      return src.network === wl.network;
  }
}

/**
 * Locality rank of `wl` for a client `src`: how many leading scopes match. When NETWORK is the
 * first scope it is preferred but not required: a same-network endpoint outranks every
 * other-network one, and among other-network endpoints the remaining scopes still rank
 * (ztunnel #1980). `all` = every scope matches (required by STRICT).
 */
export function localityRank(
  prefs: readonly LoadBalancingScope[],
  src: Workload,
  wl: Workload,
): { readonly rank: number; readonly all: boolean } {
  let start = 0;
  let networkBonus = 0;
  let networkOk = true;
  if (prefs[0] === "NETWORK") {
    networkOk = src.network === wl.network;
    networkBonus = networkOk ? prefs.length : 0;
    start = 1;
  }
  let n = 0;
  for (let i = start; i < prefs.length; i++) {
    if (!scopeMatches(prefs[i] as LoadBalancingScope, src, wl)) break;
    n++;
  }
  return { rank: networkBonus + n, all: networkOk && start + n === prefs.length };
}

interface Candidate {
  readonly ep: Endpoint;
  readonly wl: Workload;
}

/** Weighted random choice by `capacity`; undefined when the total weight is 0. */
function pickWeighted(cands: readonly Candidate[], rng: Rng): Candidate | undefined {
  let total = 0;
  for (const c of cands) total += c.wl.capacity;
  if (total <= 0) return undefined;
  let r = rng() * total;
  for (const c of cands) {
    r -= c.wl.capacity;
    if (r < 0 && c.wl.capacity > 0) return c;
  }
  // Floating-point edge: fall back to the last candidate with weight.
  for (let i = cands.length - 1; i >= 0; i--)
    if ((cands[i] as Candidate).wl.capacity > 0) return cands[i];
  return undefined;
}

/**
 * Chooses an endpoint of `svc` for `svcPort` and the port to send to. `why` explains an empty
 * result for logs ("service ns/x has no port 81", "no healthy endpoint").
 */
export function upstreamFromService(
  ctx: PlanContext,
  svc: Service,
  svcPort: number,
  mode: ResolutionMode,
): FoundUpstream {
  const { state, source } = ctx;
  const declared = svc.ports.get(svcPort);
  const key = serviceKey(svc);
  if (mode === "standard" && declared === undefined) {
    return { kind: "none", service: svc, why: `service ${key} does not declare port ${svcPort}` };
  }
  const lb = svc.loadBalancing;
  const allowAll = lb?.healthPolicy === "ALLOW_ALL";
  const candidates: Candidate[] = [];
  for (const ep of state.endpoints(key).values()) {
    const wl = state.workloadByUid(ep.workloadUid);
    if (wl === undefined) continue;
    if (ep.status !== "HEALTHY" && !allowAll) continue;
    const hasAddress = wl.workloadIps.length > 0 || wl.hostname !== "";
    // WDS is client-agnostic: an address-less workload is reachable only through a gateway on
    // another network, never on our own.
    if (!hasAddress && (wl.network === source.network || wl.networkGateway === undefined)) continue;
    if (mode === "standard") {
      if ((declared ?? 0) === 0 && !ep.ports.has(svcPort)) continue;
    } else if (declared === undefined && wl.applicationTunnel === undefined) {
      continue;
    }
    candidates.push({ ep, wl });
  }
  let options = candidates;
  if (lb !== undefined && lb.mode !== "STANDARD" && candidates.length > 0) {
    let best = -1;
    const ranked: { c: Candidate; rank: number }[] = [];
    for (const c of candidates) {
      const r = localityRank(lb.routingPreference, source, c.wl);
      if (lb.mode === "STRICT" && !r.all) continue;
      ranked.push({ c, rank: r.rank });
      if (r.rank > best) best = r.rank;
    }
    options = ranked.filter((x) => x.rank === best).map((x) => x.c);
  }
  const chosen = pickWeighted(options, ctx.rng);
  if (chosen === undefined) {
    const why =
      candidates.length === 0
        ? `service ${key} has no healthy endpoint for port ${svcPort}`
        : `service ${key} has no endpoint matching its ${lb?.mode ?? ""} routing preference [${lb?.routingPreference.join(", ") ?? ""}]`;
    return { kind: "none", service: svc, why };
  }
  const { ep, wl } = chosen;
  let port: number;
  const epPort = ep.ports.get(svcPort);
  if (epPort !== undefined) port = epPort;
  else if (declared !== undefined && declared > 0) port = declared;
  else if (wl.applicationTunnel?.port !== undefined) port = svcPort;
  else {
    return {
      kind: "none",
      service: svc,
      why: `service ${key} port ${svcPort} has no target port on ${wl.uid}`,
    };
  }
  return { kind: "parts", workload: wl, port, service: svc };
}

/** A service VIP first (PASSTHROUGH services short-circuit), then a workload IP. */
export function findUpstream(
  ctx: PlanContext,
  network: string,
  addr: SocketAddr,
  mode: ResolutionMode,
): FoundUpstream {
  const svc = ctx.state.serviceByVip(network, addr.ip, ctx.source.namespace);
  if (svc !== undefined) {
    if (svc.loadBalancing?.mode === "PASSTHROUGH")
      return { kind: "original-destination", service: svc };
    return upstreamFromService(ctx, svc, addr.port, mode);
  }
  const wl = ctx.state.workloadByAddress(network, addr.ip);
  if (wl !== undefined) return { kind: "parts", workload: wl, port: addr.port, service: undefined };
  return {
    kind: "none",
    service: undefined,
    why: `no service or workload has ${network}/${addr.ip}`,
  };
}

/**
 * Picks the IP to dial: the requested IP when the workload owns it; else one allowed by the
 * service's IP families, preferring the request's family; else DNS for hostname-only workloads;
 * else none when the workload is reachable through its network gateway.
 */
export function finalizeUpstream(ctx: PlanContext, p: Parts, target: SocketAddr): Finalized {
  const wl = p.workload;
  if (wl.workloadIps.includes(target.ip)) {
    return { kind: "ok", upstream: { ...p, ip: target.ip } };
  }
  const wantV6 = target.ip.includes(":");
  const families = p.service?.ipFamilies;
  let first: string | undefined;
  for (const ip of wl.workloadIps) {
    if (!familyAccepts(families, ip)) continue;
    if (ip.includes(":") === wantV6) return { kind: "ok", upstream: { ...p, ip } };
    first ??= ip;
  }
  if (first !== undefined) return { kind: "ok", upstream: { ...p, ip: first } };
  if (wl.hostname === "") {
    if (wl.networkGateway !== undefined) return { kind: "ok", upstream: { ...p, ip: undefined } };
    return {
      kind: "error",
      why: `workload ${wl.uid} has no IP usable for this request and no network gateway`,
    };
  }
  const answers = ctx.dns?.(wl.hostname);
  if (answers === undefined) return { kind: "needs-dns", hostname: wl.hostname, workload: wl };
  const same = answers.filter((ip) => ip.includes(":") === wantV6);
  const pool = same.length > 0 ? same : answers;
  if (pool.length === 0)
    return {
      kind: "error",
      why: `DNS for ${wl.hostname} (workload ${wl.uid}) returned no addresses`,
    };
  const ip = pool[Math.min(pool.length - 1, Math.floor(ctx.rng() * pool.length))] as string;
  return { kind: "ok", upstream: { ...p, ip } };
}

export type GatewayResult =
  | { readonly kind: "ok"; readonly upstream: Upstream }
  | { readonly kind: "needs-dns"; readonly hostname: string; readonly workload: Workload }
  | { readonly kind: "not-found"; readonly why: string };

function describeGateway(g: GatewayAddress): string {
  const d = g.destination;
  return d.kind === "hostname"
    ? `${d.hostname.namespace}/${d.hostname.hostname}`
    : `${d.address.network}/${d.address.address}`;
}

/**
 * Resolves a waypoint (mode "waypoint") or network gateway (mode "standard") reference to an
 * upstream at its HBONE port. A hostname reference is a service (load-balanced on
 * `hbone_mtls_port`) or a workload; an address reference is looked up like any destination.
 */
export function resolveGateway(
  ctx: PlanContext,
  g: GatewayAddress,
  original: SocketAddr,
  mode: ResolutionMode,
): GatewayResult {
  let found: FoundUpstream;
  let target: SocketAddr;
  const d = g.destination;
  if (d.kind === "address") {
    target = { ip: d.address.address, port: g.hboneMtlsPort };
    found = findUpstream(ctx, d.address.network, target, mode);
  } else {
    // Prefer the caller's family when the reference is a name.
    target = original;
    const a = ctx.state.findHostname(d.hostname);
    if (a === undefined) found = { kind: "none", service: undefined, why: "not found" };
    else if (a.kind === "service")
      found = upstreamFromService(ctx, a.service, g.hboneMtlsPort, mode);
    else found = { kind: "parts", workload: a.workload, port: g.hboneMtlsPort, service: undefined };
  }
  if (found.kind !== "parts") {
    const why = found.kind === "none" ? found.why : "it is a PASSTHROUGH service";
    return { kind: "not-found", why: `${describeGateway(g)}: ${why}` };
  }
  const f = finalizeUpstream(ctx, found, target);
  if (f.kind === "error") return { kind: "not-found", why: `${describeGateway(g)}: ${f.why}` };
  return f;
}

/**
 * Whether the connection comes from one of the workloads behind gateway reference `g`: same
 * identity and one of the source IPs (ztunnel's `check_from_waypoint`).
 */
export function isFromGateway(
  state: ProxyState,
  g: GatewayAddress | undefined,
  srcIdentity: Identity,
  srcIps: readonly string[],
): boolean {
  if (g === undefined) return false;
  const is = (wl: Workload) =>
    identitiesEqual(wl.identity, srcIdentity) && srcIps.some((ip) => wl.workloadIps.includes(ip));
  const a = state.findDestination(g.destination);
  if (a === undefined) return false;
  if (a.kind === "workload") return is(a.workload);
  for (const ep of state.endpoints(serviceKey(a.service)).values()) {
    const wl = state.workloadByUid(ep.workloadUid);
    if (wl !== undefined && is(wl)) return true;
  }
  return false;
}
