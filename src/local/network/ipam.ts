/**
 * Address management for the local cluster: node addresses, per-node pod ranges, pod IPs and
 * service VIPs. Pure: the previous allocation goes in, the next one comes out, and the executor
 * persists it, so re-running `up` gives every node, pod and service the address it had. What is
 * no longer in the topology is released; what is new gets the lowest free address.
 */
import type { Result } from "../../lib/errors.ts";
import {
  containsIp,
  formatCidr,
  formatIpv4,
  nthAddress,
  nthSubnet,
  parseCidr,
  parseIpv4,
  size,
  contains,
  type Cidr,
} from "./ipv4.ts";
import { podKey, validateSpec, type ClusterCidrs, type TopologySpec } from "./spec.ts";

export interface NodeAllocation {
  readonly address: string;
  readonly podCidr: string;
}

export interface PodAllocation {
  readonly node: string;
  readonly ip: string;
}

export interface IpamState {
  readonly version: 1;
  readonly cidrs: ClusterCidrs;
  readonly controlPlane: string;
  readonly nodes: Readonly<Record<string, NodeAllocation>>;
  /** Keyed by `namespace/name`. */
  readonly pods: Readonly<Record<string, PodAllocation>>;
  /** Keyed by `namespace/name`. */
  readonly services: Readonly<Record<string, string>>;
}

/** The address a node's pods use as their gateway: the first host of the node's pod range. */
export function podGateway(podCidr: string): string {
  return formatIpv4(nthAddress(parseCidr(podCidr)!, 1));
}

/** Hands out the lowest free host index in [first, last]. */
class Pool {
  readonly #used = new Set<number>();
  readonly #range: Cidr;
  readonly #first: number;
  readonly #last: number;

  constructor(range: Cidr, first: number, last: number) {
    this.#range = range;
    this.#first = first;
    this.#last = last;
  }

  /** Claims `ip` if it is inside the usable part of the range and free. */
  claim(ip: string): boolean {
    const n = parseIpv4(ip);
    if (n === undefined || !containsIp(this.#range, n)) return false;
    const index = n - this.#range.base;
    if (index < this.#first || index > this.#last || this.#used.has(index)) return false;
    this.#used.add(index);
    return true;
  }

  next(): string | undefined {
    for (let i = this.#first; i <= this.#last; i++) {
      if (!this.#used.has(i)) {
        this.#used.add(i);
        return formatIpv4(nthAddress(this.#range, i));
      }
    }
    return undefined;
  }
}

/**
 * The allocation for `spec`, keeping every still-valid entry of `previous`. Fails (with every
 * reason) when the spec is invalid or a range is exhausted.
 */
export function allocate(spec: TopologySpec, previous?: IpamState): Result<IpamState, string[]> {
  const { cidrs, problems } = validateSpec(spec);
  if (!cidrs) return { ok: false, reason: problems };
  const prev = previous?.version === 1 ? previous : undefined;

  // Host 0 is the network address and the last one broadcast: neither is handed out.
  const nodePool = new Pool(cidrs.nodes, 1, size(cidrs.nodes) - 2);
  const subnetCount = 2 ** (cidrs.text.podPrefixLength - cidrs.pods.prefix);
  const usedSubnets = new Set<number>();
  const failures: string[] = [];

  // Keep what is still valid first, so new entries cannot take an existing one's address.
  let controlPlane = prev && nodePool.claim(prev.controlPlane) ? prev.controlPlane : undefined;
  const nodes: Record<string, NodeAllocation> = {};
  const keptNode = new Map<string, { address?: string; subnet?: number }>();
  for (const n of spec.nodes) {
    const old = prev?.nodes[n.name];
    const kept: { address?: string; subnet?: number } = {};
    if (old && nodePool.claim(old.address)) kept.address = old.address;
    const oldCidr = old ? parseCidr(old.podCidr) : undefined;
    if (oldCidr && oldCidr.prefix === cidrs.text.podPrefixLength && contains(cidrs.pods, oldCidr)) {
      const index = (oldCidr.base - cidrs.pods.base) / 2 ** (32 - oldCidr.prefix);
      if (!usedSubnets.has(index)) {
        usedSubnets.add(index);
        kept.subnet = index;
      }
    }
    keptNode.set(n.name, kept);
  }
  controlPlane ??= nodePool.next();
  if (controlPlane === undefined) failures.push(`cidrs.nodes ${cidrs.text.nodes} is full`);
  for (const n of spec.nodes) {
    const kept = keptNode.get(n.name)!;
    const address = kept.address ?? nodePool.next();
    let subnet = kept.subnet;
    if (subnet === undefined) {
      for (let i = 0; i < subnetCount; i++) {
        if (!usedSubnets.has(i)) {
          usedSubnets.add(i);
          subnet = i;
          break;
        }
      }
    }
    if (address === undefined)
      failures.push(`no node address left in ${cidrs.text.nodes} for node ${n.name}`);
    if (subnet === undefined)
      failures.push(`no pod range left in ${cidrs.text.pods} for node ${n.name}`);
    if (address !== undefined && subnet !== undefined) {
      nodes[n.name] = {
        address,
        podCidr: formatCidr(nthSubnet(cidrs.pods, cidrs.text.podPrefixLength, subnet)),
      };
    }
  }

  // Pods: host 1 of each node's range is the gateway; a pod that moved node gets a new address.
  const podPools = new Map<string, Pool>();
  const hostCount = 2 ** (32 - cidrs.text.podPrefixLength);
  for (const [name, n] of Object.entries(nodes)) {
    podPools.set(name, new Pool(parseCidr(n.podCidr)!, 2, hostCount - 2));
  }
  const pods: Record<string, PodAllocation> = {};
  const newPods: { key: string; node: string }[] = [];
  for (const p of spec.pods ?? []) {
    const key = podKey(p);
    const old = prev?.pods[key];
    const pool = podPools.get(p.node);
    if (!pool) continue;
    if (old && old.node === p.node && pool.claim(old.ip)) pods[key] = { node: p.node, ip: old.ip };
    else newPods.push({ key, node: p.node });
  }
  for (const { key, node } of newPods) {
    const ip = podPools.get(node)!.next();
    if (ip === undefined)
      failures.push(`no pod address left on node ${node} (${nodes[node]!.podCidr}) for ${key}`);
    else pods[key] = { node, ip };
  }

  const servicePool = new Pool(cidrs.services, 1, size(cidrs.services) - 2);
  const services: Record<string, string> = {};
  const newServices: string[] = [];
  for (const s of spec.services ?? []) {
    const key = podKey(s);
    const old = prev?.services[key];
    if (old !== undefined && servicePool.claim(old)) services[key] = old;
    else newServices.push(key);
  }
  for (const key of newServices) {
    const vip = servicePool.next();
    if (vip === undefined)
      failures.push(`no service address left in ${cidrs.text.services} for ${key}`);
    else services[key] = vip;
  }

  if (failures.length > 0 || controlPlane === undefined) return { ok: false, reason: failures };
  return {
    ok: true,
    value: { version: 1, cidrs: cidrs.text, controlPlane, nodes, pods, services },
  };
}
