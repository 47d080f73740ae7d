/**
 * What is left to do: the plan's operations minus what the namespaces already have, plus the
 * repairs and removals that bring them to exactly the plan (a stale route to a node that is gone,
 * an old address, a pod veth that now belongs on another node). Pure over an observation of the
 * namespaces, so a second `up` with nothing changed does nothing at all.
 */
import { containsIp, parseCidr, parseIpv4 } from "./ipv4.ts";
import type { NetOp } from "./plan.ts";

export interface ObservedLink {
  readonly ifindex: number;
  readonly kind?: string;
  readonly master?: string;
  readonly up: boolean;
  /** For a veth: its peer's ifindex (in the peer's namespace). */
  readonly peerIfindex?: number;
  /** IPv4 addresses with prefix, e.g. `198.19.1.2/32`. */
  readonly addrs: readonly string[];
}

export interface ObservedRoute {
  /** `default` or a CIDR (host routes normalised to /32). */
  readonly dst: string;
  readonly dev?: string;
  readonly via?: string;
  readonly src?: string;
  readonly onlink: boolean;
}

export interface ObservedNetns {
  readonly links: ReadonlyMap<string, ObservedLink>;
  readonly routes: readonly ObservedRoute[];
  readonly sysctls: ReadonlyMap<string, string>;
}

export interface Observation {
  /** Namespaces that exist, with their state (absent ones are not in the map). */
  readonly netns: ReadonlyMap<string, ObservedNetns>;
}

/** The order operations run in; the executor batches each phase per namespace. */
export const PHASES: readonly (readonly NetOp["kind"][])[] = [
  ["netns-delete"],
  ["netns"],
  ["sysctl"],
  ["link-delete"],
  ["bridge", "veth"],
  ["master"],
  ["up"],
  ["addr-delete"],
  ["addr"],
  ["route-delete"],
  ["route"],
];

function routeMatches(op: Extract<NetOp, { kind: "route" }>, r: ObservedRoute): boolean {
  return (
    r.dst === op.dst &&
    r.dev === op.dev &&
    r.via === op.via &&
    (op.src === undefined || r.src === op.src) &&
    (op.onlink === true) === r.onlink
  );
}

function vethPaired(obs: Observation, op: Extract<NetOp, { kind: "veth" }>): boolean {
  const a = obs.netns.get(op.netns)?.links.get(op.dev);
  const b = obs.netns.get(op.peerNetns)?.links.get(op.peerDev);
  return (
    a?.kind === "veth" &&
    b?.kind === "veth" &&
    a.peerIfindex === b.ifindex &&
    b.peerIfindex === a.ifindex
  );
}

/**
 * The operations still needed. `managedRanges` are the CIDRs whose routes we own (the pod
 * ranges): observed routes into them that the plan does not have are deleted.
 */
export function pendingOps(
  ops: readonly NetOp[],
  obs: Observation,
  managedRanges: readonly string[],
): NetOp[] {
  const out: NetOp[] = [];
  const recreated = new Set<string>(); // `${netns} ${dev}` of links (re)created in this run
  const key = (netns: string, dev: string) => `${netns} ${dev}`;

  for (const op of ops) {
    const ns = obs.netns.get(op.netns);
    switch (op.kind) {
      case "netns":
        if (!ns) out.push(op);
        break;
      case "sysctl":
        if (ns?.sysctls.get(op.key) !== op.value) out.push(op);
        break;
      case "bridge": {
        const l = ns?.links.get(op.dev);
        if (l?.kind !== "bridge") {
          if (l) out.push({ kind: "link-delete", netns: op.netns, dev: op.dev });
          out.push(op);
          recreated.add(key(op.netns, op.dev));
        }
        break;
      }
      case "veth": {
        if (vethPaired(obs, op)) break;
        // Either end may exist on its own (a pod that moved node keeps its eth0, paired with the
        // old node): remove both so the pair can be made again.
        if (ns?.links.has(op.dev)) out.push({ kind: "link-delete", netns: op.netns, dev: op.dev });
        if (obs.netns.get(op.peerNetns)?.links.has(op.peerDev)) {
          out.push({ kind: "link-delete", netns: op.peerNetns, dev: op.peerDev });
        }
        out.push(op);
        recreated.add(key(op.netns, op.dev));
        recreated.add(key(op.peerNetns, op.peerDev));
        break;
      }
      case "master": {
        const l = ns?.links.get(op.dev);
        if (recreated.has(key(op.netns, op.dev)) || l?.master !== op.master) out.push(op);
        break;
      }
      case "up": {
        const l = ns?.links.get(op.dev);
        if (recreated.has(key(op.netns, op.dev)) || !l?.up) out.push(op);
        break;
      }
      case "addr": {
        const l = ns?.links.get(op.dev);
        if (recreated.has(key(op.netns, op.dev)) || !l?.addrs.includes(op.cidr)) out.push(op);
        break;
      }
      case "route": {
        const fresh = recreated.has(key(op.netns, op.dev));
        if (fresh || !ns?.routes.some((r) => routeMatches(op, r))) out.push(op);
        break;
      }
      case "netns-delete":
      case "link-delete":
      case "addr-delete":
      case "route-delete":
        out.push(op);
        break;
    }
  }

  // Addresses on links we manage that the plan does not give them.
  const wantAddrs = new Map<string, Set<string>>();
  for (const op of ops) {
    if (op.kind === "addr") {
      const k = key(op.netns, op.dev);
      if (!wantAddrs.has(k)) wantAddrs.set(k, new Set());
      wantAddrs.get(k)!.add(op.cidr);
    }
  }
  for (const [k, want] of wantAddrs) {
    const [netns, dev] = k.split(" ") as [string, string];
    if (recreated.has(k)) continue;
    for (const a of obs.netns.get(netns)?.links.get(dev)?.addrs ?? []) {
      if (!want.has(a)) out.push({ kind: "addr-delete", netns, dev, cidr: a });
    }
  }

  // Routes via a gateway into our pod ranges that the plan does not have (a node that is gone).
  // Routes without a gateway are bound to their device and vanish with it.
  const ranges = managedRanges.map((r) => parseCidr(r)).filter((r) => r !== undefined);
  const planned = new Set(ops.filter((o) => o.kind === "netns").map((o) => o.netns));
  for (const netns of planned) {
    const want = ops.filter((o) => o.kind === "route" && o.netns === netns);
    for (const r of obs.netns.get(netns)?.routes ?? []) {
      if (r.dst === "default" || r.via === undefined) continue;
      const base = parseIpv4(r.dst.split("/")[0]!);
      if (base === undefined || !ranges.some((range) => containsIp(range, base))) continue;
      if (!want.some((o) => o.kind === "route" && o.dst === r.dst)) {
        out.push({ kind: "route-delete", netns, dst: r.dst });
      }
    }
  }

  // Run phase by phase, keeping plan order inside each phase.
  const phaseOf = (op: NetOp) => PHASES.findIndex((p) => p.includes(op.kind));
  return out
    .map((op, i) => ({ op, i, phase: phaseOf(op) }))
    .sort((a, b) => a.phase - b.phase || a.i - b.i)
    .map((x) => x.op);
}

/** The `ip -batch` line for an operation (run with `ip -n <netns>`), or undefined if not an ip command. */
export function ipCommand(op: NetOp): string | undefined {
  switch (op.kind) {
    case "netns":
      return `netns add ${op.netns}`;
    case "netns-delete":
      return `netns delete ${op.netns}`;
    case "bridge":
      return `link add ${op.dev} type bridge`;
    case "veth":
      return `link add ${op.dev} type veth peer name ${op.peerDev} netns ${op.peerNetns}`;
    case "link-delete":
      return `link delete ${op.dev}`;
    case "master":
      return `link set ${op.dev} master ${op.master}`;
    case "up":
      return `link set ${op.dev} up`;
    case "addr":
      return `address add ${op.cidr} dev ${op.dev}`;
    case "addr-delete":
      return `address delete ${op.cidr} dev ${op.dev}`;
    case "route": {
      let line = `route replace ${op.dst}`;
      if (op.via !== undefined) line += ` via ${op.via}`;
      line += ` dev ${op.dev}`;
      if (op.onlink === true) line += " onlink";
      if (op.src !== undefined) line += ` src ${op.src}`;
      return line;
    }
    case "route-delete":
      return `route delete ${op.dst}`;
    case "sysctl":
      return undefined;
  }
}
