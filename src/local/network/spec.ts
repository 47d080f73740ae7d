/**
 * The desired local topology — nodes, pods on nodes, services, and the address ranges they come
 * from — and its validation. Every range lies inside 198.18.0.0/15, the benchmarking range, so
 * nothing we create can clash with a real network.
 */
import { contains, formatCidr, overlaps, parseCidr, size, type Cidr } from "./ipv4.ts";

export interface ClusterCidrs {
  /** Node and control-plane addresses, all on one shared bridge. */
  readonly nodes: string;
  /** Split into one range per node for its pods. */
  readonly pods: string;
  /** Prefix length of each node's pod range. */
  readonly podPrefixLength: number;
  /** Service VIPs (never routed: ztunnel captures them inside pods). */
  readonly services: string;
}

export const defaultCidrs: ClusterCidrs = Object.freeze({
  nodes: "198.18.0.0/24",
  pods: "198.19.0.0/16",
  podPrefixLength: 24,
  services: "198.18.16.0/20",
});

/** The only addresses the local runtime may use (RFC 2544 benchmarking range). */
export const ALLOWED_RANGE = "198.18.0.0/15";

export interface NodeSpec {
  readonly name: string;
}

export interface PodSpec {
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
}

export interface ServiceSpec {
  readonly namespace: string;
  readonly name: string;
}

export interface TopologySpec {
  /** Short cluster name; every namespace we create is called `amb-<cluster>-...`. */
  readonly cluster: string;
  readonly cidrs?: Partial<ClusterCidrs>;
  readonly nodes: readonly NodeSpec[];
  readonly pods?: readonly PodSpec[];
  readonly services?: readonly ServiceSpec[];
}

export interface ParsedCidrs {
  readonly text: ClusterCidrs;
  readonly nodes: Cidr;
  readonly pods: Cidr;
  readonly services: Cidr;
}

// No dash in the cluster name, so `amb-<cluster>-` never prefixes another cluster's names.
const clusterName = /^[a-z0-9]{1,12}$/;
const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const dnsSubdomain = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function podKey(p: { namespace: string; name: string }): string {
  return `${p.namespace}/${p.name}`;
}

/** Validates a spec, collecting every problem; returns the parsed ranges when there are none. */
export function validateSpec(spec: TopologySpec): { cidrs?: ParsedCidrs; problems: string[] } {
  const problems: string[] = [];
  if (!clusterName.test(spec.cluster)) {
    problems.push(
      `cluster name "${spec.cluster}" must be 1-12 lowercase letters or digits (no dashes)`,
    );
  }

  const text: ClusterCidrs = { ...defaultCidrs, ...spec.cidrs };
  const allowed = parseCidr(ALLOWED_RANGE)!;
  const parsed: Partial<Record<"nodes" | "pods" | "services", Cidr>> = {};
  for (const key of ["nodes", "pods", "services"] as const) {
    const c = parseCidr(text[key]);
    if (!c) problems.push(`cidrs.${key} "${text[key]}" is not an IPv4 network like 198.18.0.0/24`);
    else if (!contains(allowed, c))
      problems.push(
        `cidrs.${key} ${text[key]} is outside ${ALLOWED_RANGE}, the only range allowed`,
      );
    else parsed[key] = c;
  }
  const keys = ["nodes", "pods", "services"] as const;
  for (let i = 0; i < keys.length; i++) {
    for (let j = i + 1; j < keys.length; j++) {
      const a = parsed[keys[i]!];
      const b = parsed[keys[j]!];
      if (a && b && overlaps(a, b)) {
        problems.push(
          `cidrs.${keys[i]} ${formatCidr(a)} overlaps cidrs.${keys[j]} ${formatCidr(b)}`,
        );
      }
    }
  }
  const plen = text.podPrefixLength;
  if (!Number.isInteger(plen) || plen > 29 || (parsed.pods && plen < parsed.pods.prefix)) {
    problems.push(
      `cidrs.podPrefixLength ${plen} must be an integer between the pod range's prefix and 29`,
    );
  }
  if (parsed.nodes && size(parsed.nodes) < 4) problems.push(`cidrs.nodes is too small`);

  const nodeNames = new Set<string>();
  for (const n of spec.nodes) {
    if (!dnsLabel.test(n.name)) problems.push(`node name "${n.name}" is not a DNS label`);
    if (nodeNames.has(n.name)) problems.push(`node "${n.name}" is listed twice`);
    nodeNames.add(n.name);
  }
  if (nodeNames.has("net") || nodeNames.has("cp")) {
    problems.push(`node names "net" and "cp" are reserved for the cluster's own namespaces`);
  }
  const pods = new Set<string>();
  for (const p of spec.pods ?? []) {
    const key = podKey(p);
    if (!dnsLabel.test(p.namespace)) problems.push(`pod ${key}: namespace is not a DNS label`);
    if (!dnsSubdomain.test(p.name)) problems.push(`pod ${key}: name is not a DNS subdomain`);
    if (!nodeNames.has(p.node))
      problems.push(`pod ${key}: node "${p.node}" is not in the topology`);
    if (pods.has(key)) problems.push(`pod ${key} is listed twice`);
    pods.add(key);
  }
  const services = new Set<string>();
  for (const s of spec.services ?? []) {
    const key = podKey(s);
    if (!dnsLabel.test(s.namespace) || !dnsLabel.test(s.name))
      problems.push(`service ${key}: namespace and name must be DNS labels`);
    if (services.has(key)) problems.push(`service ${key} is listed twice`);
    services.add(key);
  }

  if (problems.length > 0 || !parsed.nodes || !parsed.pods || !parsed.services) return { problems };
  return {
    cidrs: { text, nodes: parsed.nodes, pods: parsed.pods, services: parsed.services },
    problems,
  };
}
