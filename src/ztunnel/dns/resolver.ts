/**
 * The DNS proxy's pure core: what ztunnel answers for one question from one client, given the
 * mesh state. No sockets and no clocks; the server turns the result into a DNS message, or
 * forwards the query upstream when the result says so.
 *
 * Rules (INTEROP §2.6, ztunnel `src/dns/server.rs`):
 * - only A and AAAA are answered here; any other type is forwarded;
 * - the name is tried as asked, then as its Kubernetes expansions, then with each search domain
 *   stripped (and expanded); each of those against the exact hostname, then wildcard parents;
 * - a service matches when it is visible to the client's namespace and has VIPs, or has none but
 *   is a Kubernetes (headless) service under `.svc.<cluster domain>`; with several services
 *   under one hostname: the client's namespace, then `canonical`, then the preferred namespace,
 *   then the first;
 * - a pod host `<pod>.<sub>.<ns>.svc.<domain>` matches the pod named `<pod>` behind the headless
 *   service `<sub>.<ns>.svc.<domain>`;
 * - records: VIPs on the client's network (headless: one IP per endpoint; pod: its IPs) of the
 *   asked family, shuffled, TTL 30 s; a found host with no such records answers empty NOERROR;
 *   a match made by stripping a search domain (not through a wildcard) adds a CNAME from the
 *   asked name to the stripped one, which then names the address records.
 */
import { ipFamilyOf } from "../../lib/net/index.ts";
import type { Endpoint, Service, Workload } from "../state/index.ts";
import { serviceKey, visibleTo } from "../state/index.ts";
import { aliasesOf, normalizeDomain, parseName, wildcards } from "./names.ts";
import type { Alias } from "./names.ts";

/** ztunnel answers every local record with this TTL. */
export const DNS_TTL_SECONDS = 30;

/** The workload whose DNS proxy this is, as the resolver needs it (a state Workload fits). */
export interface DnsClient {
  readonly namespace: string;
  readonly network: string;
  /** Prefers pods of the client's cluster among headless endpoints. */
  readonly clusterId?: string;
  /** Metric labels `source_canonical_service` / `source_canonical_revision`. */
  readonly canonicalName?: string;
  readonly canonicalRevision?: string;
  /** For logs. */
  readonly name?: string;
}

/** The state lookups the resolver uses (ProxyState provides them). */
export interface DnsStateView {
  servicesByHostname(hostname: string): readonly Service[];
  endpoints(key: string): ReadonlyMap<string, Endpoint>;
  workloadByUid(uid: string): Workload | undefined;
}

export interface DnsRecord {
  /** Owner name, as the client spelled it (no trailing dot). */
  readonly name: string;
  readonly type: "A" | "AAAA" | "CNAME";
  readonly ttl: number;
  /** An IP for A/AAAA, a name for CNAME. */
  readonly data: string;
}

export interface ResolveOptions {
  readonly clusterDomain: string;
  /** The client's resolver search domains (shared mode: `kubernetesSearchDomains`). */
  readonly searchDomains: readonly string[];
  /** ztunnel's `PREFERED_SERVICE_NAMESPACE`: wins hostname ties after the client's namespace and canonical. */
  readonly preferredNamespace?: string | undefined;
  /** false: AAAA questions get empty answers (ztunnel's `IPV6_ENABLED=false`). Default true. */
  readonly ipv6Enabled?: boolean | undefined;
  /** Reorders records in place; default a uniform random shuffle. */
  readonly shuffle?: (<T>(items: T[]) => void) | undefined;
}

/** What was found for the question (for logs and tests). */
export type DnsMatch =
  | { readonly kind: "service"; readonly service: Service; readonly hostname: string }
  | { readonly kind: "pod"; readonly workload: Workload; readonly hostname: string };

export type Resolution =
  | {
      readonly kind: "answer";
      /** Possibly empty: the host exists but has no records of the asked type (NOERROR). */
      readonly records: readonly DnsRecord[];
      readonly match: DnsMatch;
    }
  | { readonly kind: "forward"; readonly reason: "unsupported-type" | "unknown-host" };

export function shuffleInPlace<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const t = items[i] as T;
    items[i] = items[j] as T;
    items[j] = t;
  }
}

/** A service under `.svc.<cluster domain>`: without VIPs it is a headless Kubernetes service. */
function isKubernetesHostname(hostname: string, clusterDomain: string): boolean {
  return hostname.endsWith(".svc." + clusterDomain);
}

function answerable(s: Service, clusterDomain: string): boolean {
  return s.vips.length > 0 || isKubernetesHostname(s.hostname.toLowerCase(), clusterDomain);
}

/** ztunnel's ServiceMatch: client namespace > canonical > preferred namespace > first. */
function bestService(
  services: readonly Service[],
  client: DnsClient,
  clusterDomain: string,
  preferredNamespace: string | undefined,
): Service | undefined {
  let canonical: Service | undefined;
  let preferred: Service | undefined;
  let first: Service | undefined;
  for (const s of services) {
    if (!visibleTo(s, client.namespace) || !answerable(s, clusterDomain)) continue;
    if (s.namespace === client.namespace) return s;
    if (s.canonical) canonical ??= s;
    else if (preferredNamespace !== undefined && s.namespace === preferredNamespace)
      preferred ??= s;
    first ??= s;
  }
  return canonical ?? preferred ?? first;
}

function isHeadless(s: Service, clusterDomain: string): boolean {
  return s.vips.length === 0 && isKubernetesHostname(s.hostname.toLowerCase(), clusterDomain);
}

function includesEndpoint(s: Service, ep: Endpoint): boolean {
  return ep.status === "HEALTHY" || s.loadBalancing?.healthPolicy === "ALLOW_ALL";
}

/**
 * The pod `<pod>` behind the headless service `<rest of the alias>`: client namespace first,
 * then the client's cluster, then any.
 */
function findHeadlessPod(
  alias: Alias,
  state: DnsStateView,
  client: DnsClient,
  clusterDomain: string,
): Workload | undefined {
  const dot = alias.key.indexOf(".");
  const pod = alias.key.slice(0, dot);
  const serviceHost = alias.key.slice(dot + 1);
  let sameCluster: Workload | undefined;
  let any: Workload | undefined;
  for (const s of state.servicesByHostname(serviceHost)) {
    if (!isHeadless(s, clusterDomain) || !visibleTo(s, client.namespace)) continue;
    for (const ep of state.endpoints(serviceKey(s)).values()) {
      if (!includesEndpoint(s, ep)) continue;
      const w = state.workloadByUid(ep.workloadUid);
      if (w === undefined || w.name.toLowerCase() !== pod) continue;
      if (w.namespace === client.namespace) return w;
      if (client.clusterId !== undefined && w.clusterId === client.clusterId) sameCluster ??= w;
      any ??= w;
    }
  }
  return sameCluster ?? any;
}

interface Found {
  readonly match: DnsMatch;
  readonly alias: Alias;
  readonly viaWildcard: boolean;
}

function find(
  name: string,
  state: DnsStateView,
  client: DnsClient,
  opts: ResolveOptions,
  clusterDomain: string,
): Found | undefined {
  const parsed = parseName(name);
  const aliases = aliasesOf(parsed, client.namespace, opts.searchDomains, clusterDomain);
  for (const alias of aliases) {
    const candidates = wildcards(alias.key);
    for (let i = 0; i < candidates.length; i++) {
      const host = candidates[i] as string;
      const s = bestService(
        state.servicesByHostname(host),
        client,
        clusterDomain,
        opts.preferredNamespace,
      );
      if (s !== undefined) {
        return {
          match: { kind: "service", service: s, hostname: host },
          alias,
          viaWildcard: i > 0,
        };
      }
    }
    if (alias.podHost) {
      const w = findHeadlessPod(alias, state, client, clusterDomain);
      if (w !== undefined) {
        return {
          match: { kind: "pod", workload: w, hostname: alias.key },
          alias,
          viaWildcard: false,
        };
      }
    }
  }
  return undefined;
}

function familyAllowed(m: DnsMatch, family: 4 | 6): boolean {
  if (m.kind !== "service") return true;
  const f = m.service.ipFamilies;
  return !((f === "IPV4_ONLY" && family === 6) || (f === "IPV6_ONLY" && family === 4));
}

function addresses(
  m: DnsMatch,
  family: 4 | 6,
  state: DnsStateView,
  client: DnsClient,
  clusterDomain: string,
): string[] {
  if (m.kind === "pod") return m.workload.workloadIps.filter((ip) => ipFamilyOf(ip) === family);
  const s = m.service;
  if (isHeadless(s, clusterDomain)) {
    const out: string[] = [];
    for (const ep of state.endpoints(serviceKey(s)).values()) {
      if (!includesEndpoint(s, ep)) continue;
      const ip = state
        .workloadByUid(ep.workloadUid)
        ?.workloadIps.find((a) => ipFamilyOf(a) === family);
      if (ip !== undefined) out.push(ip);
    }
    return out;
  }
  const full = family === 4 ? 32 : 128;
  return s.vips
    .filter((v) => v.family === family && v.network === client.network && v.prefixLength === full)
    .map((v) => v.address);
}

/**
 * Resolves one question for `client`. `type` is the question type's mnemonic (`A`, `AAAA`,
 * `MX`, ...); the name may carry a trailing dot.
 */
export function resolveQuestion(
  name: string,
  type: string,
  client: DnsClient,
  state: DnsStateView,
  opts: ResolveOptions,
): Resolution {
  if (type !== "A" && type !== "AAAA") return { kind: "forward", reason: "unsupported-type" };
  const clusterDomain = normalizeDomain(opts.clusterDomain);
  const found = find(name, state, client, opts, clusterDomain);
  if (found === undefined) return { kind: "forward", reason: "unknown-host" };
  const family = type === "A" ? 4 : 6;
  const { match, alias } = found;
  if ((family === 6 && opts.ipv6Enabled === false) || !familyAllowed(match, family)) {
    return { kind: "answer", records: [], match };
  }
  const ips = addresses(match, family, state, client, clusterDomain);
  if (ips.length === 0) return { kind: "answer", records: [], match };
  (opts.shuffle ?? shuffleInPlace)(ips);
  const asked = name.endsWith(".") ? name.slice(0, -1) : name;
  const records: DnsRecord[] = [];
  let owner = asked;
  if (alias.stripped !== undefined && !found.viaWildcard) {
    records.push({ name: asked, type: "CNAME", ttl: DNS_TTL_SECONDS, data: alias.stripped });
    owner = alias.stripped;
  }
  for (const ip of ips) records.push({ name: owner, type, ttl: DNS_TTL_SECONDS, data: ip });
  return { kind: "answer", records, match };
}
