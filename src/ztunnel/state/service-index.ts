/**
 * Service VIP index: exact host VIPs by `<network>/<ip>`, CIDR VIPs bucketed by network, family
 * and prefix length, so a lookup costs one map probe per distinct prefix length in use, never a
 * scan over services. Several services may share a VIP (ServiceEntries in different namespaces);
 * the lookup picks one for the client as ztunnel does.
 */
import { maskBytes, parseIp, formatIp } from "../../lib/net/index.ts";
import type { IpBytes } from "../../lib/net/index.ts";
import type { Service, ServiceVip } from "./types.ts";
import { networkAddressKey, serviceKey, visibleTo } from "./types.ts";

interface CidrBuckets {
  /** prefix length -> masked address text -> services. */
  readonly byLength: Map<number, Map<string, Service[]>>;
  /** The prefix lengths in use, longest first. */
  lengths: number[];
}

function isHostVip(v: ServiceVip): boolean {
  return v.prefixLength === (v.family === 4 ? 32 : 128);
}

function addTo<K>(m: Map<K, Service[]>, k: K, s: Service): void {
  const list = m.get(k);
  if (list === undefined) m.set(k, [s]);
  else list.push(s);
}

function removeFrom<K>(m: Map<K, Service[]>, k: K, s: Service): void {
  const list = m.get(k);
  if (list === undefined) return;
  const i = list.indexOf(s);
  if (i !== -1) list.splice(i, 1);
  if (list.length === 0) m.delete(k);
}

/** Deterministic last resort so equal-ranked collisions always resolve the same way. */
function byKey(a: Service, b: Service): number {
  const ka = serviceKey(a);
  const kb = serviceKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

export class ServiceVipIndex {
  readonly #exact = new Map<string, Service[]>();
  /** `<network>|<family>` -> buckets. */
  readonly #cidr = new Map<string, CidrBuckets>();

  add(s: Service): void {
    for (const v of s.vips) {
      if (isHostVip(v)) {
        addTo(this.#exact, networkAddressKey(v.network, v.address), s);
        continue;
      }
      const bk = `${v.network}|${v.family}`;
      let b = this.#cidr.get(bk);
      if (b === undefined) {
        b = { byLength: new Map(), lengths: [] };
        this.#cidr.set(bk, b);
      }
      let m = b.byLength.get(v.prefixLength);
      if (m === undefined) {
        m = new Map();
        b.byLength.set(v.prefixLength, m);
        b.lengths = [...b.byLength.keys()].sort((x, y) => y - x);
      }
      addTo(m, v.address, s);
    }
  }

  remove(s: Service): void {
    for (const v of s.vips) {
      if (isHostVip(v)) {
        removeFrom(this.#exact, networkAddressKey(v.network, v.address), s);
        continue;
      }
      const bk = `${v.network}|${v.family}`;
      const b = this.#cidr.get(bk);
      const m = b?.byLength.get(v.prefixLength);
      if (b === undefined || m === undefined) continue;
      removeFrom(m, v.address, s);
      if (m.size === 0) {
        b.byLength.delete(v.prefixLength);
        b.lengths = [...b.byLength.keys()].sort((x, y) => y - x);
        if (b.byLength.size === 0) this.#cidr.delete(bk);
      }
    }
  }

  /** Every service with this exact host VIP (any visibility). */
  exact(network: string, ip: string): readonly Service[] {
    return this.#exact.get(networkAddressKey(network, ip)) ?? [];
  }

  /**
   * The service for a destination IP as seen by a client in `clientNamespace` (undefined: any
   * client, visibility ignored). Exact VIPs first: visible ones only, the client's namespace
   * preferred, then `canonical`. Then CIDR VIPs ranked by same namespace, longest prefix,
   * `canonical`.
   */
  find(network: string, ip: string, clientNamespace: string | undefined): Service | undefined {
    const exact = this.#exact.get(networkAddressKey(network, ip));
    if (exact !== undefined) {
      let best: Service | undefined;
      for (const s of exact) {
        if (!visibleTo(s, clientNamespace)) continue;
        if (best === undefined || exactRank(s, best, clientNamespace) < 0) best = s;
      }
      if (best !== undefined) return best;
    }
    if (this.#cidr.size === 0) return undefined;
    const parsed = parseIp(ip);
    if (parsed === undefined) return undefined;
    return this.#findCidr(network, parsed, clientNamespace);
  }

  #findCidr(
    network: string,
    ip: IpBytes,
    clientNamespace: string | undefined,
  ): Service | undefined {
    const b = this.#cidr.get(`${network}|${ip.family}`);
    if (b === undefined) return undefined;
    let best: Service | undefined;
    let bestLen = -1;
    for (const len of b.lengths) {
      const list = b.byLength.get(len)?.get(formatIp(maskBytes(ip.bytes, len)) as string);
      if (list === undefined) continue;
      for (const s of list) {
        if (!visibleTo(s, clientNamespace)) continue;
        if (best === undefined || cidrRank(s, len, best, bestLen, clientNamespace) < 0) {
          best = s;
          bestLen = len;
        }
      }
    }
    return best;
  }
}

/** Negative when `a` should be preferred over `b`. */
function exactRank(a: Service, b: Service, ns: string | undefined): number {
  const sa = a.namespace === ns ? 1 : 0;
  const sb = b.namespace === ns ? 1 : 0;
  if (sa !== sb) return sb - sa;
  if (a.canonical !== b.canonical) return a.canonical ? -1 : 1;
  return byKey(a, b);
}

function cidrRank(
  a: Service,
  aLen: number,
  b: Service,
  bLen: number,
  ns: string | undefined,
): number {
  const sa = a.namespace === ns ? 1 : 0;
  const sb = b.namespace === ns ? 1 : 0;
  if (sa !== sb) return sb - sa;
  if (aLen !== bLen) return bLen - aLen;
  if (a.canonical !== b.canonical) return a.canonical ? -1 : 1;
  return byKey(a, b);
}
