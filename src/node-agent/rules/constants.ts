/**
 * Interface facts of istio-cni's in-pod redirection (INTEROP.md §5.4, checked against istio/istio
 * `cni/pkg/iptables/iptables.go`). ztunnel depends on these values: its sockets carry `INPOD_MARK`,
 * and it listens on the ports below inside every enrolled pod's network namespace.
 */

/** `SO_MARK` on every socket ztunnel opens in a pod netns (1337). */
export const INPOD_MARK = 0x539;
export const INPOD_MASK = 0xfff;
/** Connmark set on connections ztunnel accepted, restored on replies so they route via table 100. */
export const INPOD_TPROXY_MARK = 0x111;
export const INPOD_TPROXY_MASK = 0xfff;
export const INPOD_RESTORE_MASK = 0xffffffff;

export const CHAIN_PREROUTING = "ISTIO_PRERT";
export const CHAIN_OUTPUT = "ISTIO_OUTPUT";
/** The chains we own inside a pod netns; anything else there belongs to someone else. */
export const OWNED_POD_CHAINS: readonly string[] = [CHAIN_PREROUTING, CHAIN_OUTPUT];

export const ROUTE_TABLE_INBOUND = 100;
export const INPOD_RULE_PRIORITY = 32764;

export const ZTUNNEL_OUTBOUND_PORT = 15001;
export const ZTUNNEL_INBOUND_PLAINTEXT_PORT = 15006;
export const ZTUNNEL_INBOUND_PORT = 15008;
export const DNS_CAPTURE_PORT = 15053;

/** Source address kubelet probes are SNAT-ed to on the node, so pod rules can let them bypass ztunnel. */
export const PROBE_SNAT_IPV4 = "169.254.7.127";
export const PROBE_SNAT_IPV6 = "fd16:9254:7127:1337:ffff:ffff:ffff:ffff";

/** istio-cni's probe set prefix; the sets are `<prefix>-v4` and `<prefix>-v6` (ipset or nft). */
export const PROBE_SET_PREFIX = "istio-inpod-probes";
export const PROBE_SET_V4 = `${PROBE_SET_PREFIX}-v4`;
export const PROBE_SET_V6 = `${PROBE_SET_PREFIX}-v6`;
/** Upstream's native-nftables host table; we use it in the node netns for the probe SNAT. */
export const HOST_NFT_TABLE = "istio-ambient-nat";

/** Pod annotations the node agent honours (INTEROP.md §8). */
export const ANNOTATION_DNS_CAPTURE = "ambient.istio.io/dns-capture";
export const ANNOTATION_BYPASS_INBOUND_CAPTURE = "ambient.istio.io/bypass-inbound-capture";
export const ANNOTATION_REROUTE_VIRTUAL_INTERFACES = "istio.io/reroute-virtual-interfaces";

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

export const INPOD_MARK_SPEC = `${hex(INPOD_MARK)}/${hex(INPOD_MASK)}`;
export const INPOD_TPROXY_MARK_SPEC = `${hex(INPOD_TPROXY_MARK)}/${hex(INPOD_TPROXY_MASK)}`;
