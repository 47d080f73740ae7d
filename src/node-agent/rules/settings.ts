/**
 * What shapes one pod's redirection rules: the node agent's global settings, overridden by the
 * pod's annotations the way istio-cni reads them (`getPodLevelTrafficOverrides`).
 */
import {
  ANNOTATION_BYPASS_INBOUND_CAPTURE,
  ANNOTATION_DNS_CAPTURE,
  ANNOTATION_REROUTE_VIRTUAL_INTERFACES,
  PROBE_SNAT_IPV4,
  PROBE_SNAT_IPV6,
} from "./constants.ts";

export interface PodRedirectionSettings {
  /** Program iptables (IPv4). istio-cni always does; false only for an IPv6-only pod. */
  readonly ipv4: boolean;
  /** Program ip6tables and the IPv6 policy route (istio-cni `ENABLE_INBOUND_IPV6`). */
  readonly ipv6: boolean;
  /** Redirect DNS (UDP and TCP port 53) to ztunnel's DNS proxy on 15053. */
  readonly dnsCapture: boolean;
  /** `ambient.istio.io/bypass-inbound-capture`: only outbound traffic is captured. */
  readonly bypassInboundCapture: boolean;
  /** `istio.io/reroute-virtual-interfaces`: inbound TCP on these interfaces is treated as outbound. */
  readonly rerouteVirtualInterfaces: readonly string[];
  /** Source address node-local probes are SNAT-ed to (istio-cni `HOST_PROBE_SNAT_ADDRESS`). */
  readonly probeSnatIpv4: string;
  /** IPv6 counterpart (`HOST_PROBE_V6_SNAT_ADDRESS`). */
  readonly probeSnatIpv6: string;
}

export const defaultPodSettings: PodRedirectionSettings = Object.freeze({
  ipv4: true,
  ipv6: false,
  dnsCapture: true,
  bypassInboundCapture: false,
  rerouteVirtualInterfaces: Object.freeze([]),
  probeSnatIpv4: PROBE_SNAT_IPV4,
  probeSnatIpv6: PROBE_SNAT_IPV6,
});

/** The node-wide settings a pod's annotations are applied on top of. */
export type NodeRedirectionSettings = Omit<
  PodRedirectionSettings,
  "bypassInboundCapture" | "rerouteVirtualInterfaces"
>;

/**
 * Interface names end up inside iptables rules, so anything else is refused: at most 15 bytes
 * (IFNAMSIZ - 1), no whitespace or '/', optionally ending in iptables' '+' wildcard.
 */
const interfaceName = /^[A-Za-z0-9_.:@-]{1,15}\+?$/;

export function isValidInterfaceName(name: string): boolean {
  return interfaceName.test(name) && name !== "." && name !== "..";
}

/** Go's `strconv.ParseBool`, which istio-cni uses for boolean annotations. */
function parseGoBool(value: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  return undefined;
}

/**
 * Applies a pod's annotations to the node settings. Like istio-cni, an unparsable boolean counts as
 * absent; unlike istio-cni, an interface name that cannot exist is dropped (not passed to
 * iptables). Each value ignored is reported in `warnings` for the operator.
 */
export function podSettingsFromAnnotations(
  annotations: Readonly<Record<string, string | undefined>>,
  node: NodeRedirectionSettings = defaultPodSettings,
): { settings: PodRedirectionSettings; warnings: string[] } {
  const warnings: string[] = [];
  let dnsCapture = node.dnsCapture;
  let bypassInboundCapture = false;
  const rerouteVirtualInterfaces: string[] = [];

  const dns = annotations[ANNOTATION_DNS_CAPTURE];
  if (dns !== undefined) {
    const v = parseGoBool(dns);
    if (v === undefined)
      warnings.push(`ignoring ${ANNOTATION_DNS_CAPTURE}="${dns}": not a boolean`);
    else dnsCapture = v;
  }
  const bypass = annotations[ANNOTATION_BYPASS_INBOUND_CAPTURE];
  if (bypass !== undefined) {
    const v = parseGoBool(bypass);
    if (v === undefined)
      warnings.push(`ignoring ${ANNOTATION_BYPASS_INBOUND_CAPTURE}="${bypass}": not a boolean`);
    else bypassInboundCapture = v;
  }
  const virt = annotations[ANNOTATION_REROUTE_VIRTUAL_INTERFACES];
  if (virt !== undefined) {
    for (const part of virt.split(",")) {
      const name = part.trim();
      if (name === "") continue;
      if (!isValidInterfaceName(name)) {
        warnings.push(
          `ignoring interface "${name}" in ${ANNOTATION_REROUTE_VIRTUAL_INTERFACES}: not a valid interface name`,
        );
      } else if (!rerouteVirtualInterfaces.includes(name)) {
        rerouteVirtualInterfaces.push(name);
      }
    }
  }
  return {
    settings: {
      ipv4: node.ipv4,
      ipv6: node.ipv6,
      dnsCapture,
      bypassInboundCapture,
      rerouteVirtualInterfaces,
      probeSnatIpv4: node.probeSnatIpv4,
      probeSnatIpv6: node.probeSnatIpv6,
    },
    warnings,
  };
}
