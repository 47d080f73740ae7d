/**
 * Service VIP allocation, as the API server's ClusterIP allocator: the lowest free address of
 * the service range (its first address is skipped, as Kubernetes keeps it for the `kubernetes`
 * Service, and so is the broadcast), stable per Service for as long as the Service exists. Pure:
 * the allocations in, the next ones out; the server persists them.
 */
import type { Result } from "../../lib/errors.ts";
import { containsIp, formatIpv4, parseCidr, parseIpv4, size } from "../network/ipv4.ts";

/** `namespace/name` → VIP. */
export type Allocations = Readonly<Record<string, string>>;

export class ClusterIpAllocator {
  readonly cidr: string;
  readonly #base: number;
  readonly #size: number;
  readonly #prefix: number;
  readonly #byKey = new Map<string, string>();
  readonly #used = new Set<number>();

  constructor(cidr: string, previous: Allocations = {}) {
    const c = parseCidr(cidr);
    if (c === undefined)
      throw new Error(`service range "${cidr}" is not an IPv4 network like 198.18.16.0/20`);
    this.cidr = cidr;
    this.#base = c.base;
    this.#prefix = c.prefix;
    this.#size = size(c);
    for (const [key, ip] of Object.entries(previous)) this.claim(key, ip);
  }

  get allocations(): Allocations {
    return Object.fromEntries(this.#byKey);
  }

  get(key: string): string | undefined {
    return this.#byKey.get(key);
  }

  /** Whether `ip` is a usable address of the range. */
  inRange(ip: string): boolean {
    const n = parseIpv4(ip);
    if (n === undefined || !containsIp({ base: this.#base, prefix: this.#prefix }, n)) return false;
    const i = n - this.#base;
    return i >= 1 && i <= this.#size - 2;
  }

  /** Takes a specific address for `key` (a Service that names its clusterIP). */
  claim(key: string, ip: string): Result<string, string> {
    const cur = this.#byKey.get(key);
    if (cur === ip) return { ok: true, value: ip };
    if (!this.inRange(ip)) {
      return { ok: false, reason: `spec.clusterIP ${ip} is not in the service range ${this.cidr}` };
    }
    const n = parseIpv4(ip)!;
    if (this.#used.has(n)) {
      const owner = [...this.#byKey].find(([, v]) => v === ip)?.[0] ?? "another Service";
      return { ok: false, reason: `spec.clusterIP ${ip} is already allocated to ${owner}` };
    }
    if (cur !== undefined) this.release(key);
    this.#used.add(n);
    this.#byKey.set(key, ip);
    return { ok: true, value: ip };
  }

  /** The address of `key`, allocating the lowest free one the first time. */
  allocate(key: string): Result<string, string> {
    const cur = this.#byKey.get(key);
    if (cur !== undefined) return { ok: true, value: cur };
    for (let i = 1; i <= this.#size - 2; i++) {
      const n = this.#base + i;
      if (!this.#used.has(n)) {
        this.#used.add(n);
        const ip = formatIpv4(n);
        this.#byKey.set(key, ip);
        return { ok: true, value: ip };
      }
    }
    return { ok: false, reason: `the service range ${this.cidr} is full` };
  }

  release(key: string): boolean {
    const ip = this.#byKey.get(key);
    if (ip === undefined) return false;
    this.#byKey.delete(key);
    this.#used.delete(parseIpv4(ip)!);
    return true;
  }
}
