/**
 * The node-side half of probe handling. Connections a node-local process (kubelet, or in the
 * local runtime anything run in the node namespace) opens to an enrolled pod are SNAT-ed to
 * 169.254.7.127, which the pod's rules let through without ztunnel. Forwarded traffic (no local
 * socket) keeps its source and is captured.
 *
 * istio-cni's iptables backend matches `-m owner --socket-exists` plus an ipset
 * `istio-inpod-probes-v4`/`-v6`. The `ipset` tool is not available here, so we use the layout of
 * istio-cni's native nftables backend: table `inet istio-ambient-nat` with nft sets of the same
 * names. `meta skuid` only loads for packets with a local full socket, so it stands in for
 * `--socket-exists` (upstream matches kubelet's uid instead). The whole table is rewritten in one
 * nft transaction, members included, so an update is atomic and idempotent.
 */
import { isIPv4, isIPv6 } from "node:net";
import { AmbientError } from "../../lib/errors.ts";
import {
  HOST_NFT_TABLE,
  PROBE_SET_V4,
  PROBE_SET_V6,
  PROBE_SNAT_IPV4,
  PROBE_SNAT_IPV6,
} from "./constants.ts";

export interface HostProbeSettings {
  readonly ipv6: boolean;
  /** Addresses of the node's enrolled pods (either family; IPv6 ones need `ipv6`). */
  readonly podIps: readonly string[];
  readonly probeSnatIpv4?: string;
  readonly probeSnatIpv6?: string;
}

function elements(ips: readonly string[]): string {
  return ips.length === 0 ? "" : `\t\telements = { ${ips.join(", ")} }\n`;
}

/** The `nft -f` script that installs (or replaces) the node's probe SNAT. */
export function buildHostProbeNft(s: HostProbeSettings): string {
  const snat4 = s.probeSnatIpv4 ?? PROBE_SNAT_IPV4;
  const snat6 = s.probeSnatIpv6 ?? PROBE_SNAT_IPV6;
  const problems: string[] = [];
  if (!isIPv4(snat4)) problems.push(`probe SNAT address "${snat4}" is not IPv4`);
  if (!isIPv6(snat6)) problems.push(`probe SNAT address "${snat6}" is not IPv6`);
  const v4: string[] = [];
  const v6: string[] = [];
  for (const ip of s.podIps) {
    if (isIPv4(ip)) v4.push(ip);
    else if (isIPv6(ip) && s.ipv6) v6.push(ip);
    else if (isIPv6(ip)) problems.push(`pod address ${ip} is IPv6 but IPv6 is not enabled`);
    else problems.push(`pod address "${ip}" is not an IP address`);
  }
  if (problems.length > 0) {
    throw new AmbientError(
      "RULES_INVALID_SETTINGS",
      `cannot build host probe rules: ${problems.join("; ")}`,
    );
  }
  const uniq = (a: string[]) => [...new Set(a)].sort();
  const t = `inet ${HOST_NFT_TABLE}`;
  let out = `table ${t} {}\ndelete table ${t}\ntable ${t} {\n`;
  out += `\tset ${PROBE_SET_V4} {\n\t\ttype ipv4_addr\n${elements(uniq(v4))}\t}\n`;
  if (s.ipv6) out += `\tset ${PROBE_SET_V6} {\n\t\ttype ipv6_addr\n${elements(uniq(v6))}\t}\n`;
  out += `\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n`;
  out += `\t\tmeta l4proto tcp meta skuid >= 0 ip daddr @${PROBE_SET_V4} counter snat ip to ${snat4}\n`;
  if (s.ipv6) {
    out += `\t\tmeta l4proto tcp meta skuid >= 0 ip6 daddr @${PROBE_SET_V6} counter snat ip6 to ${snat6}\n`;
  }
  out += `\t}\n}\n`;
  return out;
}

/** The `nft -f` script that removes the probe SNAT; applied only when the table exists. */
export function removeHostProbeNft(): string {
  return `delete table inet ${HOST_NFT_TABLE}\n`;
}
