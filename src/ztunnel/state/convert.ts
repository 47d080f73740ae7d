/**
 * `istio.workload.Address` (Workload / Service) -> domain types, with the validation ztunnel
 * applies. A resource that fails is rejected whole with a reason naming the field; the xDS client
 * turns the reason into a NACK (`<name>: <reason>`).
 *
 * Rejected like ztunnel: addresses that are not 4 or 16 bytes, `LEGACY_ISTIO_MTLS` and other
 * unknown enum values, a gateway address without a destination, a `services` key without `/`,
 * an unspecified routing-preference scope, a CIDR prefix longer than its address.
 * Rejected additionally (ztunnel would accept them and misbehave later): an empty uid, empty or
 * malformed hostnames, ports above 65535 (ztunnel truncates them) and service port 0.
 */
import type { Identity } from "../../lib/identity/index.ts";
import { parseIdentity } from "../../lib/identity/index.ts";
import { fail, ok, type Result } from "../../lib/errors.ts";
import { cidrFromBytes, formatIp } from "../../lib/net/index.ts";
import type {
  Address as XdsAddress,
  GatewayAddress as XdsGatewayAddress,
  NetworkAddress as XdsNetworkAddress,
  Port as XdsPort,
  Service as XdsService,
  Workload as XdsWorkload,
} from "../../lib/gen/istio/workload/workload_pb.ts";
import type {
  ApplicationTunnel,
  GatewayAddress,
  HealthPolicy,
  IpFamilies,
  LoadBalancing,
  LoadBalancingMode,
  LoadBalancingScope,
  NamespacedHostname,
  PortMap,
  Service,
  ServiceVip,
  WeightedWaypoint,
  Workload,
  WorkloadType,
} from "./types.ts";

export const DEFAULT_TRUST_DOMAIN = "cluster.local";
export const DEFAULT_SERVICE_ACCOUNT = "default";
export const DEFAULT_CLUSTER_ID = "Kubernetes";

/** Internal: unwinds a conversion to its single exit, where it becomes a value. */
class Reject extends Error {
  readonly reason: string;
  constructor(reason: string) {
    super(reason);
    this.reason = reason;
  }
}

function catching<T>(f: () => T): Result<T> {
  try {
    return ok(f());
  } catch (err) {
    if (err instanceof Reject) return fail(err.reason);
    throw err;
  }
}

function ipFromBytes(path: string, b: Uint8Array): string {
  const s = formatIp(b);
  if (s === undefined)
    throw new Reject(`${path}: address has ${b.length} bytes (expected 4 or 16)`);
  return s;
}

const hostnameChars = /^[A-Za-z0-9*_-][A-Za-z0-9.*_-]*$/;

/** Why `h` is not usable as a service/workload/gateway hostname, or undefined. */
export function checkHostname(h: string): string | undefined {
  if (h === "") return "must not be empty";
  if (h.length > 253) return `"${h.slice(0, 40)}..." is longer than 253 characters`;
  if (h.includes("/")) return `"${h}" contains "/"`;
  if (!hostnameChars.test(h) || h.includes("..")) return `"${h}" is not a valid DNS name`;
  return undefined;
}

function hostname(path: string, h: string): string {
  const why = checkHostname(h);
  if (why !== undefined) throw new Reject(`${path}: hostname ${why}`);
  return h;
}

function namespace(path: string, ns: string): string {
  if (ns.includes("/")) throw new Reject(`${path}: namespace "${ns}" contains "/"`);
  return ns;
}

function port(path: string, p: number, allowZero: boolean): number {
  if (p > 65535) throw new Reject(`${path}: port ${p} is out of range (1-65535)`);
  if (p === 0 && !allowZero) throw new Reject(`${path}: port 0 is not a valid service port`);
  return p;
}

function portMap(path: string, ports: readonly XdsPort[]): PortMap {
  const m = new Map<number, number>();
  ports.forEach((p, i) => {
    m.set(
      port(`${path}[${i}].service_port`, p.servicePort, false),
      port(`${path}[${i}].target_port`, p.targetPort, true),
    );
  });
  return m;
}

function networkAddress(path: string, a: XdsNetworkAddress) {
  return { network: a.network, address: ipFromBytes(`${path}.address`, a.address) };
}

export function gatewayFromXds(path: string, g: XdsGatewayAddress): GatewayAddress {
  const d = g.destination;
  const hbonePort = port(`${path}.hbone_mtls_port`, g.hboneMtlsPort, true);
  switch (d.case) {
    case "address":
      return {
        destination: { kind: "address", address: networkAddress(`${path}.address`, d.value) },
        hboneMtlsPort: hbonePort,
      };
    case "hostname":
      return {
        destination: {
          kind: "hostname",
          hostname: {
            namespace: namespace(`${path}.hostname`, d.value.namespace),
            hostname: hostname(`${path}.hostname`, d.value.hostname),
          },
        },
        hboneMtlsPort: hbonePort,
      };
    case undefined:
      throw new Reject(`${path}: gateway address has no destination (need hostname or address)`);
  }
}

function tunnelProtocol(v: number): Workload["protocol"] {
  switch (v) {
    case 0:
      return "TCP";
    case 1:
      return "HBONE";
    case 2:
      throw new Reject(
        "tunnel_protocol: LEGACY_ISTIO_MTLS is not supported by ztunnel (use HBONE or NONE)",
      );
    default:
      throw new Reject(`tunnel_protocol: unknown value ${v}`);
  }
}

function enumValue<T>(path: string, v: number, values: readonly T[]): T {
  const x = values[v];
  if (x === undefined) throw new Reject(`${path}: unknown value ${v}`);
  return x;
}

const workloadTypes: readonly WorkloadType[] = ["deployment", "cronjob", "pod", "job"];

/** Splits a `Workload.services` key `<namespace>/<hostname>` at the first `/`. */
export function parseNamespacedHostname(s: string): NamespacedHostname | undefined {
  const slash = s.indexOf("/");
  if (slash === -1) return undefined;
  return { namespace: s.slice(0, slash), hostname: s.slice(slash + 1) };
}

/** The converted workload plus its per-service port lists (keyed `<ns>/<hostname>`). */
export interface ConvertedWorkload {
  readonly workload: Workload;
  readonly services: ReadonlyMap<string, PortMap>;
}

export function workloadFromXds(w: XdsWorkload): Result<ConvertedWorkload> {
  return catching(() => {
    if (w.uid === "") throw new Reject("uid: must not be empty");
    const workloadIps = w.addresses.map((a, i) => ipFromBytes(`addresses[${i}]`, a));
    const services = new Map<string, PortMap>();
    const serviceRefs: NamespacedHostname[] = [];
    for (const [key, list] of Object.entries(w.services)) {
      const nh = parseNamespacedHostname(key);
      if (nh === undefined) {
        throw new Reject(`services["${key}"]: key must be "<namespace>/<hostname>"`);
      }
      hostname(`services["${key}"]`, nh.hostname);
      serviceRefs.push(nh);
      services.set(key, portMap(`services["${key}"].ports`, list.ports));
    }
    const trustDomain = w.trustDomain === "" ? DEFAULT_TRUST_DOMAIN : w.trustDomain;
    const serviceAccount = w.serviceAccount === "" ? DEFAULT_SERVICE_ACCOUNT : w.serviceAccount;
    let applicationTunnel: ApplicationTunnel | undefined;
    if (w.applicationTunnel !== undefined) {
      applicationTunnel = {
        protocol: enumValue("application_tunnel.protocol", w.applicationTunnel.protocol, [
          "NONE",
          "PROXY",
        ] as const),
        port:
          w.applicationTunnel.port === 0
            ? undefined
            : port("application_tunnel.port", w.applicationTunnel.port, false),
      };
    }
    const workload: Workload = {
      uid: w.uid,
      name: w.name,
      namespace: w.namespace,
      workloadIps,
      hostname: w.hostname === "" ? "" : hostname("hostname", w.hostname),
      network: w.network,
      protocol: tunnelProtocol(w.tunnelProtocol),
      trustDomain,
      serviceAccount,
      identity: { trustDomain, namespace: w.namespace, serviceAccount },
      waypoint: w.waypoint === undefined ? undefined : gatewayFromXds("waypoint", w.waypoint),
      networkGateway:
        w.networkGateway === undefined
          ? undefined
          : gatewayFromXds("network_gateway", w.networkGateway),
      node: w.node,
      canonicalName: w.canonicalName,
      canonicalRevision: w.canonicalRevision,
      // ztunnel reads this enum leniently (unknown -> default); it only feeds telemetry.
      workloadType: workloadTypes[w.workloadType] ?? "deployment",
      workloadName: w.workloadName,
      nativeTunnel: w.nativeTunnel,
      applicationTunnel,
      services: serviceRefs,
      authorizationPolicies: [...w.authorizationPolicies],
      status: enumValue("status", w.status, ["HEALTHY", "UNHEALTHY"] as const),
      clusterId: w.clusterId === "" ? DEFAULT_CLUSTER_ID : w.clusterId,
      locality: {
        region: w.locality?.region ?? "",
        zone: w.locality?.zone ?? "",
        subzone: w.locality?.subzone ?? "",
      },
      networkMode: enumValue("network_mode", w.networkMode, ["STANDARD", "HOST_NETWORK"] as const),
      capacity: w.capacity ?? 1,
    };
    return { workload, services };
  });
}

const scopes: readonly (LoadBalancingScope | undefined)[] = [
  undefined,
  "REGION",
  "ZONE",
  "SUBZONE",
  "NODE",
  "CLUSTER",
  "NETWORK",
];
const modes: readonly LoadBalancingMode[] = ["STANDARD", "STRICT", "FAILOVER", "PASSTHROUGH"];
const healthPolicies: readonly HealthPolicy[] = ["ONLY_HEALTHY", "ALLOW_ALL"];
const ipFamilies: readonly (IpFamilies | undefined)[] = [
  undefined,
  "IPV4_ONLY",
  "IPV6_ONLY",
  "DUAL",
];

function vip(path: string, a: XdsNetworkAddress): ServiceVip {
  const bits = a.address.length * 8;
  const len = a.length ?? bits;
  const c = cidrFromBytes(a.address, len);
  if (!c.ok) throw new Reject(`${path}: ${c.reason}`);
  // Host bits of a CIDR VIP are cleared so `10.1.2.3/8` and `10.0.0.0/8` are one range.
  return {
    network: a.network,
    address: formatIp(c.value.bytes) as string,
    family: c.value.family,
    prefixLength: len,
  };
}

/** Parses the SANs that are SPIFFE identities; others are ignored, as ztunnel does. */
export function sanIdentities(sans: readonly string[]): Identity[] {
  const out: Identity[] = [];
  for (const s of sans) {
    const id = parseIdentity(s);
    if (id.ok) out.push(id.value);
  }
  return out;
}

export function serviceFromXds(s: XdsService): Result<Service> {
  return catching(() => {
    let loadBalancing: LoadBalancing | undefined;
    if (s.loadBalancing !== undefined) {
      const lb = s.loadBalancing;
      loadBalancing = {
        routingPreference: lb.routingPreference.map((v, i) => {
          const sc = scopes[v];
          if (sc === undefined) {
            throw new Reject(
              `load_balancing.routing_preference[${i}]: ${v === 0 ? "UNSPECIFIED_SCOPE is not a scope" : `unknown value ${v}`}`,
            );
          }
          return sc;
        }),
        mode: enumValue("load_balancing.mode", lb.mode, modes),
        healthPolicy: enumValue("load_balancing.health_policy", lb.healthPolicy, healthPolicies),
      };
    }
    if (s.ipFamilies < 0 || s.ipFamilies >= ipFamilies.length) {
      throw new Reject(`ip_families: unknown value ${s.ipFamilies}`);
    }
    const weightedWaypoints: WeightedWaypoint[] = s.weightedWaypoints.map((w, i) => {
      if (w.destination === undefined) {
        throw new Reject(`weighted_waypoints[${i}]: has no destination`);
      }
      return {
        destination: gatewayFromXds(`weighted_waypoints[${i}].destination`, w.destination),
        weight: w.weight,
      };
    });
    return {
      name: s.name,
      namespace: namespace("namespace", s.namespace),
      hostname: hostname("hostname", s.hostname),
      vips: s.addresses.map((a, i) => vip(`addresses[${i}]`, a)),
      ports: portMap("ports", s.ports),
      subjectAltNames: [...s.subjectAltNames],
      sanIdentities: sanIdentities(s.subjectAltNames),
      waypoint: s.waypoint === undefined ? undefined : gatewayFromXds("waypoint", s.waypoint),
      weightedWaypoints,
      loadBalancing,
      ipFamilies: ipFamilies[s.ipFamilies],
      canonical: s.canonical,
      ingressUseWaypoint: s.ingressUseWaypoint,
      // A visibility this version does not know is treated as PUBLIC.
      visibility: s.visibility === 1 ? "NAMESPACE" : "PUBLIC",
    };
  });
}

export type ConvertedAddress =
  | ({ readonly kind: "workload" } & ConvertedWorkload)
  | { readonly kind: "service"; readonly service: Service };

export function addressFromXds(a: XdsAddress): Result<ConvertedAddress> {
  switch (a.type.case) {
    case "workload": {
      const r = workloadFromXds(a.type.value);
      return r.ok ? ok({ kind: "workload", ...r.value }) : r;
    }
    case "service": {
      const r = serviceFromXds(a.type.value);
      return r.ok ? ok({ kind: "service", service: r.value }) : r;
    }
    case undefined:
      return fail("type: Address has neither workload nor service set");
  }
}
