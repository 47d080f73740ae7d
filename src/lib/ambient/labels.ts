/**
 * The label and annotation keys (and their special values) Istio's control plane and CNI honour
 * in ambient mode, spelled exactly as Istio spells them (INTEROP.md §7–§8).
 */

export const label = {
  dataplaneMode: "istio.io/dataplane-mode",
  useWaypoint: "istio.io/use-waypoint",
  useWaypointNamespace: "istio.io/use-waypoint-namespace",
  waypointFor: "istio.io/waypoint-for",
  ingressUseWaypoint: "istio.io/ingress-use-waypoint",
  tunnel: "networking.istio.io/tunnel",
  network: "topology.istio.io/network",
  subzone: "topology.istio.io/subzone",
  region: "topology.kubernetes.io/region",
  zone: "topology.kubernetes.io/zone",
  canonicalName: "service.istio.io/canonical-name",
  canonicalRevision: "service.istio.io/canonical-revision",
  workloadName: "service.istio.io/workload-name",
  gatewayName: "gateway.networking.k8s.io/gateway-name",
  gatewayManaged: "gateway.istio.io/managed",
  sidecarInject: "sidecar.istio.io/inject",
  istioInjection: "istio-injection",
  istioRev: "istio.io/rev",
  serviceName: "kubernetes.io/service-name",
  podTemplateHash: "pod-template-hash",
  rolloutsPodTemplateHash: "rollouts-pod-template-hash",
} as const;

export const annotation = {
  redirection: "ambient.istio.io/redirection",
  waypointInboundBinding: "ambient.istio.io/waypoint-inbound-binding",
  bypassInboundCapture: "ambient.istio.io/bypass-inbound-capture",
  dnsCapture: "ambient.istio.io/dns-capture",
  rerouteVirtualInterfaces: "istio.io/reroute-virtual-interfaces",
  sidecarStatus: "sidecar.istio.io/status",
  trafficDistribution: "networking.istio.io/traffic-distribution",
  dryRun: "istio.io/dry-run",
  autoRegistrationGroup: "istio.io/autoRegistrationGroup",
} as const;

export const value = {
  dataplaneModeAmbient: "ambient",
  dataplaneModeNone: "none",
  redirectionEnabled: "enabled",
  redirectionPending: "pending",
  redirectionDisabled: "disabled",
  useWaypointNone: "none",
  tunnelHttp: "http",
  /** `gateway.istio.io/managed` on waypoint Deployments/pods (and Services istiod deploys). */
  meshControllerLabel: "istio.io-mesh-controller",
  /** GatewayClass `spec.controllerName` of waypoint classes. */
  meshController: "istio.io/mesh-controller",
  waypointClassName: "istio-waypoint",
  /** Listener protocol of the PROXY-protocol ("sandwich") inbound binding. */
  sandwichProxyProtocol: "istio.io/PROXY",
} as const;

export type TrafficType = "service" | "workload" | "all" | "none";
