/**
 * Outbound decisions, table-driven from small ztunnel-style YAML fixtures. Each case states what
 * the proxy would do: refuse, pass through, or connect (protocol, next hop, authority, identities).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_ILLEGAL_PORTS, seededRng } from "./common.ts";
import { planOutbound } from "./outbound.ts";
import type { OutboundInput } from "./outbound.ts";
import { assertSubset, stateFrom, summarize } from "./fixtures.test-helper.ts";
import type { OutboundSummary } from "./fixtures.test-helper.ts";
import type { ProxyState } from "../../state/index.ts";

/** The client pod, a waypoint (pod + service) and an east-west gateway on network "west". */
const base = `
workloads:
- {uid: Kubernetes//Pod/ns/source, name: source, namespace: ns, serviceAccount: source-sa, node: node-a,
   protocol: HBONE, workloadIps: [198.18.0.1, "fd00::1"], locality: {region: r1, zone: z1}}
- {uid: Kubernetes//Pod/ns/waypoint, name: waypoint, namespace: ns, serviceAccount: waypoint, protocol: HBONE,
   workloadIps: [198.18.0.10], services: {ns/waypoint.ns.svc.cluster.local: {15008: 15008}}}
- {uid: Kubernetes//Pod/istio-system/ew, name: ew, namespace: istio-system, serviceAccount: ew-gw, network: west,
   protocol: HBONE, workloadIps: [198.19.0.1]}
services:
- {name: waypoint, namespace: ns, hostname: waypoint.ns.svc.cluster.local, vips: [/198.18.100.10], ports: {15008: 15008},
   subjectAltNames: [spiffe://cluster.local/ns/ns/sa/waypoint-extra]}
`;

const WAYPOINT_IDS = [
  "spiffe://cluster.local/ns/ns/sa/waypoint-extra",
  "spiffe://cluster.local/ns/ns/sa/waypoint",
];

interface Case {
  name: string;
  yaml?: string;
  to: string;
  from?: string;
  source?: string | null;
  want: OutboundSummary;
}

function plan(
  state: ProxyState,
  to: string,
  opts: Partial<OutboundInput> & { sourceName?: string | null } = {},
) {
  const colon = to.lastIndexOf(":");
  const ip = to.slice(0, colon).replace(/^\[|\]$/g, "");
  const sourceUid =
    opts.sourceName === null ? undefined : `Kubernetes//Pod/ns/${opts.sourceName ?? "source"}`;
  return planOutbound({
    source: sourceUid === undefined ? undefined : state.workloadByUid(sourceUid),
    destination: { ip, port: Number(to.slice(colon + 1)) },
    state,
    config: { network: "", illegalPorts: DEFAULT_ILLEGAL_PORTS },
    rng: seededRng(7),
    ...opts,
  });
}

const svc = (extra = "") =>
  `services:
- {name: svc, namespace: ns, hostname: svc.ns.svc.cluster.local, vips: [/198.18.100.1], ports: {80: 8080},
   subjectAltNames: [spiffe://cluster.local/ns/ns/sa/svc-san, not-a-spiffe-id]${extra}}`;

const cases: Case[] = [
  {
    name: "unknown destination: passthrough, plain TCP to the original address",
    to: "203.0.113.9:443",
    want: { kind: "passthrough", destination: "203.0.113.9:443", reason: "unknown-destination" },
  },
  {
    name: "loopback to a ztunnel port is refused (self call)",
    to: "127.0.0.1:15001",
    want: { kind: "refused", code: "self-call" },
  },
  {
    name: "loopback to another port passes through",
    to: "127.0.0.1:8080",
    want: { kind: "passthrough", destination: "127.0.0.1:8080" },
  },
  {
    name: "a non-loopback address on port 15008 is not a self call",
    yaml: `workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.2]}]`,
    to: "198.18.0.2:15008",
    want: { kind: "connect", destination: "198.18.0.2:15008", authority: "198.18.0.2:15008" },
  },
  {
    name: "unknown source is refused",
    to: "198.18.0.2:80",
    source: null,
    want: { kind: "refused", code: "unknown-source" },
  },
  {
    name: "pod IP, TCP workload: plain TCP to ip:port",
    yaml: `workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, workloadIps: [198.18.0.2]}]`,
    to: "198.18.0.2:80",
    want: {
      kind: "connect",
      via: "direct",
      protocol: "TCP",
      destination: "198.18.0.2:80",
      upstream: "b",
      identities: ["spiffe://cluster.local/ns/ns/sa/default"],
    },
  },
  {
    name: "pod IP, HBONE workload: HBONE to ip:15008, authority ip:port",
    yaml: `workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, serviceAccount: b-sa, protocol: HBONE, workloadIps: [198.18.0.2]}]`,
    to: "198.18.0.2:80",
    want: {
      kind: "connect",
      via: "direct",
      protocol: "HBONE",
      destination: "198.18.0.2:15008",
      authority: "198.18.0.2:80",
      identities: ["spiffe://cluster.local/ns/ns/sa/b-sa"],
      upstream: "b",
    },
  },
  {
    name: "service VIP: load-balanced endpoint, authority endpointIP:targetPort, service SANs + workload identity",
    yaml: `${svc()}
workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, serviceAccount: b-sa, protocol: HBONE, workloadIps: [198.18.0.2],
  services: {ns/svc.ns.svc.cluster.local: {80: 8080}}}]`,
    to: "198.18.100.1:80",
    want: {
      kind: "connect",
      via: "direct",
      protocol: "HBONE",
      destination: "198.18.0.2:15008",
      authority: "198.18.0.2:8080",
      identities: [
        "spiffe://cluster.local/ns/ns/sa/svc-san",
        "spiffe://cluster.local/ns/ns/sa/b-sa",
      ],
      service: "svc.ns.svc.cluster.local",
      forwardedHost: "svc.ns.svc.cluster.local",
      upstream: "b",
    },
  },
  {
    name: "target port: the endpoint's mapping beats the service's",
    yaml: `${svc()}
workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.2],
  services: {ns/svc.ns.svc.cluster.local: {80: 9090}}}]`,
    to: "198.18.100.1:80",
    want: { authority: "198.18.0.2:9090" },
  },
  {
    name: "target port: service target_port when the endpoint has no mapping",
    yaml: `${svc()}
workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.2],
  services: {ns/svc.ns.svc.cluster.local: {}}}]`,
    to: "198.18.100.1:80",
    want: { authority: "198.18.0.2:8080" },
  },
  {
    name: "target port: a named port (0) with no endpoint mapping has no upstream",
    yaml: `services: [{name: svc, namespace: ns, hostname: svc.ns.svc.cluster.local, vips: [/198.18.100.1], ports: {80: 0}}]
workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.2],
  services: {ns/svc.ns.svc.cluster.local: {}}}]`,
    to: "198.18.100.1:80",
    want: { kind: "refused", code: "no-healthy-upstream", service: "svc.ns.svc.cluster.local" },
  },
  {
    name: "a named port resolves through the endpoint that maps it (other endpoints skipped)",
    yaml: `services: [{name: svc, namespace: ns, hostname: svc.ns.svc.cluster.local, vips: [/198.18.100.1], ports: {80: 0, 8080: 0}}]
workloads:
- {uid: Kubernetes//Pod/ns/unmatched, name: unmatched, namespace: ns, workloadIps: [198.18.0.4], services: {ns/svc.ns.svc.cluster.local: {8080: 9999}}}
- {uid: Kubernetes//Pod/ns/matched, name: matched, namespace: ns, workloadIps: [198.18.0.2], services: {ns/svc.ns.svc.cluster.local: {80: 1234}}}`,
    to: "198.18.100.1:80",
    want: { kind: "connect", protocol: "TCP", destination: "198.18.0.2:1234", upstream: "matched" },
  },
  {
    name: "a port the service does not declare: no healthy upstream",
    yaml: `${svc()}
workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, workloadIps: [198.18.0.2], services: {ns/svc.ns.svc.cluster.local: {81: 81}}}]`,
    to: "198.18.100.1:81",
    want: { kind: "refused", code: "no-healthy-upstream" },
  },
  {
    name: "a service with no endpoint: no healthy upstream",
    yaml: svc(),
    to: "198.18.100.1:80",
    want: { kind: "refused", code: "no-healthy-upstream", service: "svc.ns.svc.cluster.local" },
  },
  {
    name: "a service whose only endpoint is unhealthy: no healthy upstream",
    yaml: `${svc()}
workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, status: Unhealthy, workloadIps: [198.18.0.2], services: {ns/svc.ns.svc.cluster.local: {}}}]`,
    to: "198.18.100.1:80",
    want: { kind: "refused", code: "no-healthy-upstream" },
  },
  {
    name: "health policy ALLOW_ALL uses unhealthy endpoints",
    yaml: `${svc(", loadBalancer: {healthPolicy: ALLOW_ALL}")}
workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, status: Unhealthy, workloadIps: [198.18.0.2], services: {ns/svc.ns.svc.cluster.local: {}}}]`,
    to: "198.18.100.1:80",
    want: { kind: "connect", destination: "198.18.0.2:8080", upstream: "b" },
  },
  {
    name: "PASSTHROUGH service: plain TCP to the original destination",
    yaml: `${svc(", loadBalancer: {mode: PASSTHROUGH}")}
workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.2], services: {ns/svc.ns.svc.cluster.local: {}}}]`,
    to: "198.18.100.1:80",
    want: { kind: "passthrough", destination: "198.18.100.1:80", reason: "passthrough-service" },
  },
  {
    name: "service waypoint by hostname: HBONE to the waypoint, authority = original VIP:port",
    yaml: `${svc(", waypoint: {destination: ns/waypoint.ns.svc.cluster.local}")}
workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.2], services: {ns/svc.ns.svc.cluster.local: {}}}]`,
    to: "198.18.100.1:80",
    want: {
      kind: "connect",
      via: "service-waypoint",
      protocol: "HBONE",
      destination: "198.18.0.10:15008",
      authority: "198.18.100.1:80",
      identities: WAYPOINT_IDS,
      upstream: "waypoint",
      waypoint: "waypoint",
      service: "svc.ns.svc.cluster.local",
      forwardedHost: "svc.ns.svc.cluster.local",
    },
  },
  {
    name: "service waypoint by IP (the waypoint pod)",
    yaml: svc(", waypoint: {destination: /198.18.0.10}"),
    to: "198.18.100.1:80",
    want: {
      via: "service-waypoint",
      destination: "198.18.0.10:15008",
      authority: "198.18.100.1:80",
      identities: ["spiffe://cluster.local/ns/ns/sa/waypoint"],
    },
  },
  {
    name: "service waypoint by IP (the waypoint service VIP)",
    yaml: svc(", waypoint: {destination: /198.18.100.10}"),
    to: "198.18.100.1:80",
    want: { via: "service-waypoint", destination: "198.18.0.10:15008", identities: WAYPOINT_IDS },
  },
  {
    name: "a PASSTHROUGH service still goes through its waypoint",
    yaml: svc(
      ", loadBalancer: {mode: PASSTHROUGH}, waypoint: {destination: ns/waypoint.ns.svc.cluster.local}",
    ),
    to: "198.18.100.1:80",
    want: { kind: "connect", via: "service-waypoint", destination: "198.18.0.10:15008" },
  },
  {
    name: "unknown waypoint: the connection fails (never skips the waypoint)",
    yaml: svc(", waypoint: {destination: ns/missing.ns.svc.cluster.local}"),
    to: "198.18.100.1:80",
    want: { kind: "refused", code: "unknown-waypoint", service: "svc.ns.svc.cluster.local" },
  },
  {
    name: "a waypoint service without port 15008 and no app tunnel has no usable waypoint",
    yaml: `${svc(", waypoint: {destination: ns/wp2.ns.svc.cluster.local}")}
- {name: wp2, namespace: ns, hostname: wp2.ns.svc.cluster.local, ports: {80: 80}}
workloads: [{uid: Kubernetes//Pod/ns/wp2, name: wp2, namespace: ns, workloadIps: [198.18.0.11], services: {ns/wp2.ns.svc.cluster.local: {}}}]`,
    to: "198.18.100.1:80",
    want: { kind: "refused", code: "unknown-waypoint" },
  },
  {
    name: "a waypoint endpoint with an application tunnel needs no declared 15008 port",
    yaml: `${svc(", waypoint: {destination: ns/wp2.ns.svc.cluster.local}")}
- {name: wp2, namespace: ns, hostname: wp2.ns.svc.cluster.local, ports: {80: 80}}
workloads: [{uid: Kubernetes//Pod/ns/wp2, name: wp2, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.11],
  applicationTunnel: {protocol: PROXY, port: 15088}, services: {ns/wp2.ns.svc.cluster.local: {}}}]`,
    to: "198.18.100.1:80",
    want: {
      kind: "connect",
      via: "service-waypoint",
      destination: "198.18.0.11:15008",
      upstream: "wp2",
    },
  },
  {
    name: "pod IP of a workload with a waypoint: via the workload waypoint, authority = pod IP:port",
    yaml: `workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.2],
  waypoint: {destination: ns/waypoint.ns.svc.cluster.local}}]`,
    to: "198.18.0.2:80",
    want: {
      kind: "connect",
      via: "workload-waypoint",
      protocol: "HBONE",
      destination: "198.18.0.10:15008",
      authority: "198.18.0.2:80",
      identities: WAYPOINT_IDS,
      waypoint: "waypoint",
    },
  },
  {
    name: "service-addressed without a service waypoint: direct even if the pod has a workload waypoint",
    yaml: `${svc()}
workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.2],
  waypoint: {destination: ns/waypoint.ns.svc.cluster.local}, services: {ns/svc.ns.svc.cluster.local: {}}}]`,
    to: "198.18.100.1:80",
    want: {
      kind: "connect",
      via: "direct",
      destination: "198.18.0.2:15008",
      authority: "198.18.0.2:8080",
    },
  },
  {
    name: "service waypoint beats the pod's workload waypoint",
    yaml: `${svc(", waypoint: {destination: ns/waypoint.ns.svc.cluster.local}")}
workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.2],
  waypoint: {destination: /198.18.0.77}, services: {ns/svc.ns.svc.cluster.local: {}}}]`,
    to: "198.18.100.1:80",
    want: { via: "service-waypoint", destination: "198.18.0.10:15008" },
  },
  {
    name: "the waypoint sending to its own workload goes direct (no loop)",
    yaml: `workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.2],
  waypoint: {destination: ns/waypoint.ns.svc.cluster.local}}]`,
    to: "198.18.0.2:80",
    source: "waypoint",
    want: {
      kind: "connect",
      via: "direct",
      destination: "198.18.0.2:15008",
      authority: "198.18.0.2:80",
    },
  },
  {
    name: "the waypoint sending to its own service goes to the endpoint (no loop)",
    yaml: `${svc(", waypoint: {destination: ns/waypoint.ns.svc.cluster.local}")}
workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.2], services: {ns/svc.ns.svc.cluster.local: {}}}]`,
    to: "198.18.100.1:80",
    source: "waypoint",
    want: {
      kind: "connect",
      via: "direct",
      destination: "198.18.0.2:15008",
      authority: "198.18.0.2:8080",
    },
  },
  {
    name: "same identity but another IP is not the waypoint: still routed via the waypoint",
    yaml: `workloads:
- {uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.2], waypoint: {destination: ns/waypoint.ns.svc.cluster.local}}
- {uid: Kubernetes//Pod/ns/imposter, name: imposter, namespace: ns, serviceAccount: waypoint, workloadIps: [198.18.0.66]}`,
    to: "198.18.0.2:80",
    source: "imposter",
    want: { via: "workload-waypoint", destination: "198.18.0.10:15008" },
  },
  {
    name: "IPv6: authority and next hop are bracketed",
    yaml: `workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.2, "fd00::2"]}]`,
    to: "[fd00::2]:80",
    want: { kind: "connect", destination: "[fd00::2]:15008", authority: "[fd00::2]:80" },
  },
  {
    name: "IPv6 via a workload waypoint: the authority keeps the original IPv6 target",
    yaml: `workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.2, "fd00::2"], waypoint: {destination: /198.18.0.10}}]`,
    to: "[FD00:0::2]:80",
    want: { via: "workload-waypoint", destination: "198.18.0.10:15008", authority: "[fd00::2]:80" },
  },
  {
    name: "IP family: an IPV6_ONLY service picks the endpoint's IPv6 address for an IPv4 request",
    yaml: `${svc(", ipFamilies: IPV6_ONLY")}
workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.2, "fd00::2"], services: {ns/svc.ns.svc.cluster.local: {}}}]`,
    to: "198.18.100.1:80",
    want: { destination: "[fd00::2]:15008", authority: "[fd00::2]:8080" },
  },
  {
    name: "IP family: a dual-stack service follows the request's family",
    yaml: `services: [{name: svc, namespace: ns, hostname: svc.ns.svc.cluster.local, vips: [/198.18.100.1, "/fd00::100"], ports: {80: 8080}, ipFamilies: DUAL}]
workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.2, "fd00::2"], services: {ns/svc.ns.svc.cluster.local: {}}}]`,
    to: "[fd00::100]:80",
    want: { destination: "[fd00::2]:15008", authority: "[fd00::2]:8080" },
  },
  {
    name: "a hostname-only workload needs DNS first",
    yaml: `${svc()}
workloads: [{uid: Kubernetes//Pod/ns/ext, name: ext, namespace: ns, hostname: db.example.com, services: {ns/svc.ns.svc.cluster.local: {}}}]`,
    to: "198.18.100.1:80",
    want: { kind: "needs-dns", hostname: "db.example.com", upstream: "ext" },
  },
  {
    name: "host-network workloads are not found by IP: passthrough",
    yaml: `workloads: [{uid: Kubernetes//Pod/ns/h, name: h, namespace: ns, protocol: HBONE, networkMode: HOST_NETWORK, workloadIps: [198.18.0.50]}]`,
    to: "198.18.0.50:80",
    want: { kind: "passthrough", reason: "unknown-destination" },
  },
  {
    name: "a host-network endpoint is still reached through its service",
    yaml: `${svc()}
workloads: [{uid: Kubernetes//Pod/ns/h, name: h, namespace: ns, networkMode: HOST_NETWORK, workloadIps: [198.18.0.50], services: {ns/svc.ns.svc.cluster.local: {}}}]`,
    to: "198.18.100.1:80",
    want: { kind: "connect", protocol: "TCP", destination: "198.18.0.50:8080", upstream: "h" },
  },
  {
    name: "VIP collision: the service in the client's namespace wins",
    yaml: `services:
- {name: mine, namespace: ns, hostname: mine.example.com, vips: [/198.18.100.5], ports: {80: 80}}
- {name: theirs, namespace: other, hostname: theirs.example.com, vips: [/198.18.100.5], ports: {80: 80}, canonical: true}
workloads:
- {uid: Kubernetes//Pod/ns/m, name: m, namespace: ns, workloadIps: [198.18.0.31], services: {ns/mine.example.com: {}}}
- {uid: Kubernetes//Pod/other/t, name: t, namespace: other, workloadIps: [198.18.0.32], services: {other/theirs.example.com: {}}}`,
    to: "198.18.100.5:80",
    want: { upstream: "m", service: "mine.example.com" },
  },
  {
    name: "VIP collision: another namespace's private service is invisible",
    yaml: `services:
- {name: private, namespace: other, hostname: private.example.com, vips: [/198.18.100.6], ports: {80: 80}, visibility: NAMESPACE}
workloads:
- {uid: Kubernetes//Pod/other/p, name: p, namespace: other, workloadIps: [198.18.0.33], services: {other/private.example.com: {}}}`,
    to: "198.18.100.6:80",
    want: { kind: "passthrough", reason: "unknown-destination" },
  },
  {
    name: "CIDR VIP (ServiceEntry range) is service-addressed",
    yaml: `services: [{name: range, namespace: ns, hostname: range.example.com, vips: [/203.0.113.0/24], ports: {443: 443}}]
workloads: [{uid: Kubernetes//Pod/ns/r, name: r, namespace: ns, workloadIps: [198.18.0.40], services: {ns/range.example.com: {}}}]`,
    to: "203.0.113.77:443",
    want: { kind: "connect", destination: "198.18.0.40:443", service: "range.example.com" },
  },
  {
    name: "another network: double HBONE via the gateway (by address), authority svc-host:port",
    yaml: `${svc()}
workloads: [{uid: Kubernetes//Pod/ns/remote, name: remote, namespace: ns, serviceAccount: remote-sa, network: west, protocol: HBONE,
  networkGateway: {destination: west/198.19.0.1, hboneMtlsPort: 15009}, services: {ns/svc.ns.svc.cluster.local: {}}}]`,
    to: "198.18.100.1:80",
    want: {
      kind: "connect",
      via: "direct",
      protocol: "DOUBLE_HBONE",
      destination: "198.19.0.1:15009",
      authority: "svc.ns.svc.cluster.local:80",
      identities: ["spiffe://cluster.local/ns/istio-system/sa/ew-gw"],
      innerAuthority: "svc.ns.svc.cluster.local:80",
      innerIdentities: ["spiffe://cluster.local/ns/ns/sa/svc-san"],
      forwardedNetwork: "",
      upstream: "remote",
      gateway: "ew",
      service: "svc.ns.svc.cluster.local",
    },
  },
  {
    name: "another network: gateway by hostname maps its service port to the target port",
    yaml: `${svc()}
- {name: ew, namespace: istio-system, hostname: ew.istio-system.svc.cluster.local, ports: {15009: 15008}}
workloads:
- {uid: Kubernetes//Pod/ns/remote, name: remote, namespace: ns, network: west, protocol: HBONE, workloadIps: [198.19.5.5],
   networkGateway: {destination: istio-system/ew.istio-system.svc.cluster.local, hboneMtlsPort: 15009}, services: {ns/svc.ns.svc.cluster.local: {}}}
- {uid: Kubernetes//Pod/istio-system/ew2, name: ew2, namespace: istio-system, network: west, workloadIps: [198.19.0.2],
   services: {istio-system/ew.istio-system.svc.cluster.local: {15009: 15008}}}`,
    to: "198.18.100.1:80",
    want: {
      protocol: "DOUBLE_HBONE",
      destination: "198.19.0.2:15008",
      authority: "svc.ns.svc.cluster.local:80",
      gateway: "ew2",
    },
  },
  {
    name: "another network without a gateway: refused",
    yaml: `${svc()}
workloads: [{uid: Kubernetes//Pod/ns/remote, name: remote, namespace: ns, network: west, workloadIps: [198.19.5.5], services: {ns/svc.ns.svc.cluster.local: {}}}]`,
    to: "198.18.100.1:80",
    want: { kind: "refused", code: "no-valid-destination" },
  },
  {
    name: "a waypoint on another network: double HBONE through its gateway",
    yaml: `${svc(", waypoint: {destination: ns/rwp.ns.svc.cluster.local}")}
- {name: rwp, namespace: ns, hostname: rwp.ns.svc.cluster.local, ports: {15008: 15008}, subjectAltNames: [spiffe://cluster.local/ns/ns/sa/rwp]}
workloads: [{uid: Kubernetes//Pod/ns/rwp, name: rwp, namespace: ns, network: west, protocol: HBONE,
  networkGateway: {destination: west/198.19.0.1, hboneMtlsPort: 15009}, services: {ns/rwp.ns.svc.cluster.local: {}}}]`,
    to: "198.18.100.1:80",
    want: {
      protocol: "DOUBLE_HBONE",
      via: "service-waypoint",
      destination: "198.19.0.1:15009",
      authority: "svc.ns.svc.cluster.local:80",
      innerIdentities: ["spiffe://cluster.local/ns/ns/sa/rwp"],
      waypoint: "rwp",
    },
  },
];

describe("planOutbound", () => {
  for (const c of cases) {
    it(c.name, () => {
      const state = stateFrom(base, ...(c.yaml !== undefined ? [c.yaml] : []));
      const p = plan(state, c.to, {
        sourceName: c.source === null ? null : (c.source ?? "source"),
      });
      assertSubset(summarize(p), c.want, c.name);
    });
  }

  it("explains refusals for operators", () => {
    const state = stateFrom(
      base,
      svc(", waypoint: {destination: ns/missing.ns.svc.cluster.local}"),
    );
    const p = plan(state, "198.18.100.1:80");
    assert.equal(p.kind, "refused");
    assert.equal(
      p.kind === "refused" && p.message,
      "service ns/svc.ns.svc.cluster.local uses waypoint ns/missing.ns.svc.cluster.local: not found; check that the waypoint is deployed and ready",
    );
    assert.equal(p.kind === "refused" && p.responseFlag, "CONNECT");
    const self = plan(state, "127.0.0.1:15006");
    assert.equal(self.kind === "refused" && self.responseFlag, "DENY");
  });

  it("uses the DNS cache for hostname-only workloads, preferring the request's family", () => {
    const state = stateFrom(
      base,
      `${svc()}
workloads: [{uid: Kubernetes//Pod/ns/ext, name: ext, namespace: ns, hostname: db.example.com, services: {ns/svc.ns.svc.cluster.local: {}}}]`,
    );
    const dns = (h: string) => (h === "db.example.com" ? ["fd00::9", "198.18.7.7"] : undefined);
    assertSubset(
      summarize(plan(state, "198.18.100.1:80", { dns })),
      { kind: "connect", protocol: "TCP", destination: "198.18.7.7:8080" },
      "v4",
    );
    const empty = plan(state, "198.18.100.1:80", { dns: () => [] });
    assertSubset(
      summarize(empty),
      { kind: "refused", code: "no-valid-destination" },
      "empty answer",
    );
  });

  it("the source workload is never in the way: its own waypoint does not apply to its outbound", () => {
    const state = stateFrom(
      base,
      `workloads:
- {uid: Kubernetes//Pod/ns/src2, name: src2, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.3], waypoint: {destination: /198.18.0.10}}
- {uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.2]}`,
    );
    assertSubset(
      summarize(plan(state, "198.18.0.2:80", { sourceName: "src2" })),
      { via: "direct", destination: "198.18.0.2:15008" },
      "",
    );
  });

  it("looks up service-addressing in the configured network", () => {
    const state = stateFrom(
      base,
      `services: [{name: w, namespace: ns, hostname: w.example.com, vips: [west/198.18.100.9], ports: {80: 80}}]`,
    );
    const p = planOutbound({
      source: state.workloadByUid("Kubernetes//Pod/ns/source"),
      destination: { ip: "198.18.100.9", port: 80 },
      state,
      config: { network: "west", illegalPorts: DEFAULT_ILLEGAL_PORTS },
      rng: seededRng(1),
    });
    assertSubset(
      summarize(p),
      { kind: "refused", code: "no-healthy-upstream", service: "w.example.com" },
      "",
    );
  });
});
