/**
 * ztunnel's domain view of the mesh, converted from `istio.workload.Address` at the xDS boundary
 * (see convert.ts). IPs are canonical strings (`ipFamilyOf`/`canonicalIp` in src/lib/rbac);
 * defaults are applied (trust domain `cluster.local`, service account `default`, cluster
 * `Kubernetes`, capacity 1), so nothing downstream handles protobuf or empty-means-default.
 */
import type { Identity } from "../../lib/identity/index.ts";
import type { IpFamily } from "../../lib/net/index.ts";

/** What the destination pod accepts: HBONE on 15008, or plain TCP. */
export type InboundProtocol = "TCP" | "HBONE";
export type NetworkMode = "STANDARD" | "HOST_NETWORK";
export type HealthStatus = "HEALTHY" | "UNHEALTHY";
/** Lower-case, as it appears in telemetry (`k8s.<type>.name`). */
export type WorkloadType = "deployment" | "cronjob" | "pod" | "job";

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subzone: string;
}

/** An IP on a network; its key `<network>/<ip>` is ztunnel's address key (and xDS alias). */
export interface NetworkAddress {
  readonly network: string;
  readonly address: string;
}

/** A service reference `<namespace>/<hostname>`. */
export interface NamespacedHostname {
  readonly namespace: string;
  readonly hostname: string;
}

export type GatewayDestination =
  | { readonly kind: "address"; readonly address: NetworkAddress }
  | { readonly kind: "hostname"; readonly hostname: NamespacedHostname };

/** A waypoint or east-west gateway reference. */
export interface GatewayAddress {
  readonly destination: GatewayDestination;
  /** The HBONE port on the gateway (15008 for waypoints). */
  readonly hboneMtlsPort: number;
}

export interface ApplicationTunnel {
  readonly protocol: "NONE" | "PROXY";
  /** The port to deliver to instead of the original one; undefined = keep the port. */
  readonly port: number | undefined;
}

/** Service port -> target port. A target of 0 means "unknown here" (a named port). */
export type PortMap = ReadonlyMap<number, number>;

export interface Workload {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly workloadIps: readonly string[];
  /** DNS name to resolve on demand when there are no IPs ("" if none). */
  readonly hostname: string;
  readonly network: string;
  readonly protocol: InboundProtocol;
  readonly trustDomain: string;
  readonly serviceAccount: string;
  /** trust domain + namespace + service account. */
  readonly identity: Identity;
  readonly waypoint: GatewayAddress | undefined;
  readonly networkGateway: GatewayAddress | undefined;
  readonly node: string;
  readonly canonicalName: string;
  readonly canonicalRevision: string;
  readonly workloadType: WorkloadType;
  readonly workloadName: string;
  readonly nativeTunnel: boolean;
  readonly applicationTunnel: ApplicationTunnel | undefined;
  /** The services this workload is an endpoint of (`Workload.services` keys). */
  readonly services: readonly NamespacedHostname[];
  /** `<ns>/<name>` keys of WORKLOAD_SELECTOR policies selecting this workload. */
  readonly authorizationPolicies: readonly string[];
  readonly status: HealthStatus;
  readonly clusterId: string;
  readonly locality: Locality;
  readonly networkMode: NetworkMode;
  /** Load-balancing weight (default 1; 0 is never chosen). */
  readonly capacity: number;
}

/** One workload's membership in one service. */
export interface Endpoint {
  readonly workloadUid: string;
  /** Per-endpoint port mapping (`Workload.services[key].ports`). */
  readonly ports: PortMap;
  readonly status: HealthStatus;
}

export type LoadBalancingScope = "REGION" | "ZONE" | "SUBZONE" | "NODE" | "CLUSTER" | "NETWORK";
/** STANDARD = no routing preference; PASSTHROUGH = no endpoint selection at all. */
export type LoadBalancingMode = "STANDARD" | "STRICT" | "FAILOVER" | "PASSTHROUGH";
export type HealthPolicy = "ONLY_HEALTHY" | "ALLOW_ALL";

export interface LoadBalancing {
  readonly routingPreference: readonly LoadBalancingScope[];
  readonly mode: LoadBalancingMode;
  readonly healthPolicy: HealthPolicy;
}

/** undefined = AUTOMATIC (no restriction). */
export type IpFamilies = "IPV4_ONLY" | "IPV6_ONLY" | "DUAL";

/** A service VIP: a host address, or a CIDR range when `prefixLength` is shorter than the IP. */
export interface ServiceVip {
  readonly network: string;
  readonly address: string;
  readonly family: IpFamily;
  readonly prefixLength: number;
}

export interface WeightedWaypoint {
  readonly destination: GatewayAddress;
  readonly weight: number;
}

export type Visibility = "PUBLIC" | "NAMESPACE";

export interface Service {
  readonly name: string;
  readonly namespace: string;
  readonly hostname: string;
  readonly vips: readonly ServiceVip[];
  readonly ports: PortMap;
  /** As sent; `sanIdentities` holds the ones that parse as SPIFFE ids. */
  readonly subjectAltNames: readonly string[];
  readonly sanIdentities: readonly Identity[];
  readonly waypoint: GatewayAddress | undefined;
  readonly weightedWaypoints: readonly WeightedWaypoint[];
  readonly loadBalancing: LoadBalancing | undefined;
  readonly ipFamilies: IpFamilies | undefined;
  /** Wins hostname/VIP ties across namespaces. */
  readonly canonical: boolean;
  readonly ingressUseWaypoint: boolean;
  readonly visibility: Visibility;
}

/** Identifies a service in telemetry and logs. */
export interface ServiceDescription {
  readonly hostname: string;
  readonly name: string;
  readonly namespace: string;
}

export type Address =
  | { readonly kind: "workload"; readonly workload: Workload }
  | { readonly kind: "service"; readonly service: Service };

export function serviceKey(s: NamespacedHostname): string {
  return `${s.namespace}/${s.hostname}`;
}

export function networkAddressKey(network: string, ip: string): string {
  return `${network}/${ip}`;
}

const descriptions = new WeakMap<Service, ServiceDescription>();

/** The telemetry description of a service (one shared object per service). */
export function describeService(s: Service): ServiceDescription {
  let d = descriptions.get(s);
  if (d === undefined) {
    d = Object.freeze({ hostname: s.hostname, name: s.name, namespace: s.namespace });
    descriptions.set(s, d);
  }
  return d;
}

/** Whether the service may be used by a client in `namespace` (undefined = any client). */
export function visibleTo(s: Service, namespace: string | undefined): boolean {
  return s.visibility === "PUBLIC" || namespace === undefined || s.namespace === namespace;
}
