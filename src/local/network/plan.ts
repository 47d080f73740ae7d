/**
 * The planner: a topology and its address allocation in, the ordered operations that build it
 * (and the ones that tear it down) out. Pure; the executor carries the operations out.
 *
 * Shape (all inside namespaces we own; the host namespace is not touched):
 *
 *   amb-<c>-net   bridge br0 joining every node (n-<node>) and the control plane (cp0)
 *   amb-<c>-cp    eth0 = control-plane address on the bridge; routes to each node's pod range
 *   amb-<c>-<n>   eth0 = node address on the bridge; forwards; routes other nodes' pod ranges
 *                 via those nodes; one veth per pod (vp<hash>) holding the pod gateway /32
 *   amb-<c>-<ns>-<pod>  eth0 = pod IP /32, default route via its node's gateway
 *
 * Pod traffic always crosses its node's network stack, as on Kubernetes with a routed CNI, so
 * node-level rules (the probe SNAT) see it.
 */
import { AmbientError } from "../../lib/errors.ts";
import { podGateway, type IpamState } from "./ipam.ts";
import {
  BRIDGE,
  CONTROL_PLANE_PORT,
  UPLINK,
  controlPlaneNetns,
  networkNetns,
  nodeBridgePort,
  nodeNetns,
  podHostInterface,
  podNetns,
  prefixOf,
} from "./names.ts";
import { parseCidr } from "./ipv4.ts";
import { podKey, type TopologySpec } from "./spec.ts";

export type NetnsRole = "network" | "control-plane" | "node" | "pod";

export type NetOp =
  | { readonly kind: "netns"; readonly netns: string }
  | { readonly kind: "netns-delete"; readonly netns: string }
  | {
      readonly kind: "sysctl";
      readonly netns: string;
      readonly key: string;
      readonly value: string;
    }
  | { readonly kind: "bridge"; readonly netns: string; readonly dev: string }
  | {
      readonly kind: "veth";
      readonly netns: string;
      readonly dev: string;
      readonly peerNetns: string;
      readonly peerDev: string;
    }
  | { readonly kind: "link-delete"; readonly netns: string; readonly dev: string }
  | {
      readonly kind: "master";
      readonly netns: string;
      readonly dev: string;
      readonly master: string;
    }
  | { readonly kind: "up"; readonly netns: string; readonly dev: string }
  | { readonly kind: "addr"; readonly netns: string; readonly dev: string; readonly cidr: string }
  | {
      readonly kind: "addr-delete";
      readonly netns: string;
      readonly dev: string;
      readonly cidr: string;
    }
  | {
      readonly kind: "route";
      readonly netns: string;
      /** `default` or a CIDR. */
      readonly dst: string;
      readonly dev: string;
      readonly via?: string;
      readonly src?: string;
      readonly onlink?: boolean;
    }
  | { readonly kind: "route-delete"; readonly netns: string; readonly dst: string };

export interface NamespaceInfo {
  readonly netns: string;
  /** `/run/netns/<netns>`, for `nsenter --net=` and setns. */
  readonly netnsPath: string;
}

export interface NodeNetwork extends NamespaceInfo {
  readonly name: string;
  readonly address: string;
  readonly podCidr: string;
  readonly podGateway: string;
}

export interface PodNetwork extends NamespaceInfo {
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
  readonly ip: string;
  readonly gateway: string;
  /** Inside the pod namespace. */
  readonly interface: string;
  /** The node-side end of the pod's veth, in the node namespace. */
  readonly hostInterface: string;
}

export interface Topology {
  readonly cluster: string;
  /** Every namespace of this cluster starts with it. */
  readonly prefix: string;
  readonly cidrs: IpamState["cidrs"];
  readonly network: NamespaceInfo & { readonly bridge: string };
  readonly controlPlane: NamespaceInfo & { readonly address: string };
  readonly nodes: readonly NodeNetwork[];
  readonly pods: readonly PodNetwork[];
  readonly services: readonly {
    readonly namespace: string;
    readonly name: string;
    readonly vip: string;
  }[];
  /** Every namespace, in creation order, with its role. */
  readonly namespaces: readonly { readonly netns: string; readonly role: NetnsRole }[];
}

export interface NetworkPlan {
  readonly topology: Topology;
  /** In order; each is idempotent given the observation step (see pending.ts). */
  readonly ops: readonly NetOp[];
  /** Pods first, the shared network last. */
  readonly teardown: readonly NetOp[];
}

export function netnsPath(netns: string): string {
  return `/run/netns/${netns}`;
}

/** Sysctls of a node namespace: it routes between its pods and the bridge. */
const NODE_SYSCTLS: readonly [string, string][] = [
  ["net.ipv4.ip_forward", "1"],
  // Pods answer from their /32 behind a veth; strict reverse-path filtering would drop that.
  ["net.ipv4.conf.all.rp_filter", "0"],
  ["net.ipv4.conf.default.rp_filter", "0"],
];

/**
 * Builds the plan for `spec` with the allocation `ipam` (from `allocate`). Throws
 * `NETWORK_INVALID_TOPOLOGY` when names collide or the allocation does not cover the spec.
 */
export function planTopology(spec: TopologySpec, ipam: IpamState): NetworkPlan {
  const c = spec.cluster;
  const problems: string[] = [];
  const net = networkNetns(c);
  const cpNs = controlPlaneNetns(c);

  const nodes: NodeNetwork[] = [];
  for (const n of spec.nodes) {
    const a = ipam.nodes[n.name];
    if (!a) {
      problems.push(`node ${n.name} has no address allocation`);
      continue;
    }
    const netns = nodeNetns(c, n.name);
    nodes.push({
      name: n.name,
      netns,
      netnsPath: netnsPath(netns),
      address: a.address,
      podCidr: a.podCidr,
      podGateway: podGateway(a.podCidr),
    });
  }
  const pods: PodNetwork[] = [];
  for (const p of spec.pods ?? []) {
    const a = ipam.pods[podKey(p)];
    const node = nodes.find((n) => n.name === p.node);
    if (!a || !node || a.node !== p.node) {
      problems.push(`pod ${podKey(p)} has no address allocation on node ${p.node}`);
      continue;
    }
    const netns = podNetns(c, p.namespace, p.name);
    pods.push({
      namespace: p.namespace,
      name: p.name,
      node: p.node,
      netns,
      netnsPath: netnsPath(netns),
      ip: a.ip,
      gateway: node.podGateway,
      interface: UPLINK,
      hostInterface: podHostInterface(p.namespace, p.name),
    });
  }
  const services = (spec.services ?? []).flatMap((s) => {
    const vip = ipam.services[podKey(s)];
    if (vip === undefined) problems.push(`service ${podKey(s)} has no VIP allocation`);
    return vip === undefined ? [] : [{ namespace: s.namespace, name: s.name, vip }];
  });

  const namespaces: { netns: string; role: NetnsRole }[] = [
    { netns: net, role: "network" },
    { netns: cpNs, role: "control-plane" },
    ...nodes.map((n) => ({ netns: n.netns, role: "node" as const })),
    ...pods.map((p) => ({ netns: p.netns, role: "pod" as const })),
  ];
  const seen = new Map<string, string>();
  for (const ns of namespaces) {
    const other = seen.get(ns.netns);
    if (other !== undefined)
      problems.push(`namespace name ${ns.netns} is used twice (${other} and ${ns.role})`);
    seen.set(ns.netns, ns.role);
  }
  const ports = new Set<string>([CONTROL_PLANE_PORT]);
  for (const n of nodes) {
    const port = nodeBridgePort(n.name);
    if (ports.has(port)) problems.push(`bridge port name ${port} of node ${n.name} collides`);
    ports.add(port);
  }
  for (const n of nodes) {
    const names = new Set<string>([UPLINK]);
    for (const p of pods.filter((x) => x.node === n.name)) {
      if (names.has(p.hostInterface)) {
        problems.push(
          `interface ${p.hostInterface} of pod ${p.namespace}/${p.name} collides on node ${n.name}`,
        );
      }
      names.add(p.hostInterface);
    }
  }
  if (problems.length > 0) {
    throw new AmbientError(
      "NETWORK_INVALID_TOPOLOGY",
      `cannot plan the local network: ${problems.join("; ")}`,
    );
  }

  const nodePrefix = parseCidr(ipam.cidrs.nodes)!.prefix;
  const ops: NetOp[] = [];
  for (const ns of namespaces) ops.push({ kind: "netns", netns: ns.netns });
  for (const n of nodes) {
    for (const [key, value] of NODE_SYSCTLS)
      ops.push({ kind: "sysctl", netns: n.netns, key, value });
  }
  for (const ns of namespaces) ops.push({ kind: "up", netns: ns.netns, dev: "lo" });

  // The shared L2 segment.
  ops.push({ kind: "bridge", netns: net, dev: BRIDGE }, { kind: "up", netns: net, dev: BRIDGE });
  const attach = (port: string, peerNetns: string, address: string) => {
    ops.push(
      { kind: "veth", netns: net, dev: port, peerNetns, peerDev: UPLINK },
      { kind: "master", netns: net, dev: port, master: BRIDGE },
      { kind: "up", netns: net, dev: port },
      { kind: "addr", netns: peerNetns, dev: UPLINK, cidr: `${address}/${nodePrefix}` },
      { kind: "up", netns: peerNetns, dev: UPLINK },
    );
  };
  attach(CONTROL_PLANE_PORT, cpNs, ipam.controlPlane);
  for (const n of nodes) attach(nodeBridgePort(n.name), n.netns, n.address);

  // Pods, each on a routed veth to its node.
  for (const p of pods) {
    const node = nodes.find((n) => n.name === p.node)!;
    ops.push(
      {
        kind: "veth",
        netns: node.netns,
        dev: p.hostInterface,
        peerNetns: p.netns,
        peerDev: UPLINK,
      },
      { kind: "addr", netns: node.netns, dev: p.hostInterface, cidr: `${p.gateway}/32` },
      { kind: "up", netns: node.netns, dev: p.hostInterface },
      { kind: "addr", netns: p.netns, dev: UPLINK, cidr: `${p.ip}/32` },
      { kind: "up", netns: p.netns, dev: UPLINK },
      { kind: "route", netns: node.netns, dst: `${p.ip}/32`, dev: p.hostInterface, src: p.gateway },
      { kind: "route", netns: p.netns, dst: "default", via: p.gateway, dev: UPLINK, onlink: true },
    );
  }

  // Pod ranges across nodes, and back from the control plane.
  for (const n of nodes) {
    for (const other of nodes) {
      if (other !== n) {
        ops.push({
          kind: "route",
          netns: n.netns,
          dst: other.podCidr,
          via: other.address,
          dev: UPLINK,
        });
      }
    }
    ops.push({ kind: "route", netns: cpNs, dst: n.podCidr, via: n.address, dev: UPLINK });
  }

  const teardown: NetOp[] = [...namespaces]
    .reverse()
    .map((ns) => ({ kind: "netns-delete" as const, netns: ns.netns }));

  return {
    topology: {
      cluster: c,
      prefix: prefixOf(c),
      cidrs: ipam.cidrs,
      network: { netns: net, netnsPath: netnsPath(net), bridge: BRIDGE },
      controlPlane: { netns: cpNs, netnsPath: netnsPath(cpNs), address: ipam.controlPlane },
      nodes,
      pods,
      services,
      namespaces,
    },
    ops,
    teardown,
  };
}
