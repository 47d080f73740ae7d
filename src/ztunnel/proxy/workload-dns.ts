/**
 * Addresses of workloads known only by hostname (ServiceEntry-style endpoints), resolved on
 * demand by ztunnel itself — in ztunnel's own namespace, with its resolv.conf — and cached for the
 * answer's TTL, so the outbound planner can look them up synchronously and re-plan.
 */
import { Resolver } from "node:dns/promises";

/** Resolves `hostname` to addresses of `family` with their TTL in seconds. */
export type HostnameResolver = (
  hostname: string,
  family: 4 | 6,
) => Promise<readonly { readonly address: string; readonly ttl: number }[]>;

/** Bounds on how long an answer is kept, whatever TTL it came with. */
const MIN_TTL_S = 5;
const MAX_TTL_S = 300;
const MAX_ENTRIES = 4096;

export function systemHostnameResolver(): HostnameResolver {
  const r = new Resolver({ timeout: 5000, tries: 2 });
  return (hostname, family) =>
    family === 4 ? r.resolve4(hostname, { ttl: true }) : r.resolve6(hostname, { ttl: true });
}

interface Entry {
  readonly addresses: readonly string[];
  readonly expires: number;
}

export class WorkloadDns {
  readonly #resolve: HostnameResolver;
  readonly #cache = new Map<string, Entry>();

  constructor(resolve: HostnameResolver) {
    this.#resolve = resolve;
  }

  /** Cached addresses, or undefined when unknown or expired (the planner then asks to resolve). */
  readonly lookup = (hostname: string): readonly string[] | undefined => {
    const e = this.#cache.get(hostname);
    if (e === undefined) return undefined;
    if (e.expires < Date.now()) {
      this.#cache.delete(hostname);
      return undefined;
    }
    return e.addresses;
  };

  /**
   * Resolves and caches `hostname`, preferring one family and falling back to the other.
   * Rejects when neither has an answer, saying so.
   */
  async resolve(hostname: string, preferIpv6: boolean): Promise<readonly string[]> {
    const order: (4 | 6)[] = preferIpv6 ? [6, 4] : [4, 6];
    let lastError: unknown;
    for (const family of order) {
      try {
        const answers = await this.#resolve(hostname, family);
        if (answers.length === 0) continue;
        const ttl = Math.min(
          MAX_TTL_S,
          Math.max(MIN_TTL_S, Math.min(...answers.map((a) => a.ttl))),
        );
        const addresses = answers.map((a) => a.address);
        if (this.#cache.size >= MAX_ENTRIES) this.#cache.clear();
        this.#cache.set(hostname, { addresses, expires: Date.now() + ttl * 1000 });
        return addresses;
      } catch (err) {
        lastError = err;
      }
    }
    const why = lastError instanceof Error ? `: ${lastError.message}` : " (no A or AAAA records)";
    throw new Error(`no IP addresses were resolved for workload hostname ${hostname}${why}`);
  }
}
