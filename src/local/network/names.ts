/**
 * Names of the namespaces and interfaces we create. Namespaces are `amb-<cluster>-...` so a
 * teardown can find them by prefix even without its state file. Interface names are at most 15
 * bytes (IFNAMSIZ - 1); each lives inside one of our namespaces, so it only has to be unique there,
 * and nothing is ever created in the host namespace.
 */
import { createHash } from "node:crypto";

export const IFNAME_MAX = 15;
/** A netns name is a file under /run/netns. */
const NETNS_NAME_MAX = 255;

export const BRIDGE = "br0";
/** The pod's, node's and control plane's own interface. */
export const UPLINK = "eth0";
/** The control plane's port on the bridge. */
export const CONTROL_PLANE_PORT = "cp0";

export function shortHash(text: string, chars: number): string {
  return createHash("sha256").update(text).digest("hex").slice(0, chars);
}

export function prefixOf(cluster: string): string {
  return `amb-${cluster}-`;
}

function bounded(name: string, keep: string): string {
  return name.length <= NETNS_NAME_MAX ? name : `${keep}${shortHash(name, 16)}`;
}

export function networkNetns(cluster: string): string {
  return `${prefixOf(cluster)}net`;
}

export function controlPlaneNetns(cluster: string): string {
  return `${prefixOf(cluster)}cp`;
}

export function nodeNetns(cluster: string, node: string): string {
  return `${prefixOf(cluster)}${node}`;
}

export function podNetns(cluster: string, namespace: string, name: string): string {
  return bounded(`${prefixOf(cluster)}${namespace}-${name}`, `${prefixOf(cluster)}${namespace}-`);
}

/** The node's port on the shared bridge: `n-<node>`, or `n-<hash>` when that would be too long. */
export function nodeBridgePort(node: string): string {
  const plain = `n-${node}`;
  return plain.length <= IFNAME_MAX ? plain : `n-${shortHash(node, 12)}`;
}

/** The node-side end of a pod's veth, like Calico's `cali<hash>`: `vp` + 12 hex digits. */
export function podHostInterface(namespace: string, name: string): string {
  return `vp${shortHash(`${namespace}/${name}`, 12)}`;
}
