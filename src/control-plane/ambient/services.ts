/**
 * Kubernetes Services and ServiceEntries → `istio.workload.Service` (istiod `services.go`).
 * One ServiceInfo per Service, one per ServiceEntry host; then, per hostname, one winner per
 * namespace (a Service beats ServiceEntries, else the oldest) and one `canonical` overall.
 */
import { clone, create } from "@bufbuild/protobuf";
import {
  AppProtocol,
  IPFamilies,
  LoadBalancing_HealthPolicy,
  LoadBalancing_Mode,
  LoadBalancing_Scope,
  LoadBalancingSchema,
  NetworkAddressSchema,
  PortSchema,
  ServiceSchema,
  Visibility,
} from "../../lib/gen/istio/workload/workload_pb.ts";
import type {
  GatewayAddress,
  LoadBalancing,
  NetworkAddress,
  Port,
  Service,
} from "../../lib/gen/istio/workload/workload_pb.ts";
import { annotation, isEmpty, label, parseCidr, parseIp } from "../model/index.ts";
import type { ServiceEntry, ServicePort, Service as KubeService } from "../model/index.ts";
import { parseBool } from "./parse.ts";
import { serviceResource } from "./resources.ts";
import type { AddressResource } from "./resources.ts";

export interface PortName {
  portName: string;
  /** Named `targetPort` of a Kubernetes Service port ("" when numeric). */
  targetPortName: string;
}

export interface ServiceInfo {
  /** `<namespace>/<hostname>`: the xDS resource name. */
  key: string;
  /** `<Kind>/<namespace>/<name>/<hostname>`: unique per source object and host. */
  typedKey: string;
  service: Service;
  portNames: Readonly<Record<number, PortName>>;
  /** Non-empty selector (Service `selector`, ServiceEntry `workloadSelector.labels`), if any. */
  selector: Readonly<Record<string, string>> | undefined;
  source: { kind: "Service" | "ServiceEntry"; namespace: string; name: string };
  /** The bound waypoint's key, or why a requested one is not used. */
  waypoint: { key: string | undefined; error: string | undefined };
  creationTime: number;
  resource: AddressResource;
  fingerprint: string;
}

export type ServiceDistribution = "PreferSameZone" | "PreferSameNode" | undefined;

/** Kubernetes `spec.trafficDistribution`, else the `networking.istio.io/traffic-distribution`
 * annotation of the object, else of its namespace. */
export function trafficDistribution(
  spec: string | undefined,
  annotations: Readonly<Record<string, string>>,
  namespaceAnnotations: Readonly<Record<string, string>>,
  warn: (message: string) => void,
): ServiceDistribution {
  if (spec === "PreferSameZone" || spec === "PreferClose") return "PreferSameZone";
  if (spec === "PreferSameNode") return "PreferSameNode";
  const raw =
    annotations[annotation.trafficDistribution] ??
    namespaceAnnotations[annotation.trafficDistribution] ??
    "";
  const text = raw.toLowerCase();
  if (text === "preferclose" || text === "prefersamezone") return "PreferSameZone";
  if (text === "prefersamenode") return "PreferSameNode";
  if (text !== "")
    warn(
      `unknown ${annotation.trafficDistribution} value ${JSON.stringify(raw)}; using no preference`,
    );
  return undefined;
}

function distributionLoadBalancing(d: ServiceDistribution): LoadBalancing | undefined {
  if (d === "PreferSameZone") {
    return create(LoadBalancingSchema, {
      routingPreference: [
        LoadBalancing_Scope.NETWORK,
        LoadBalancing_Scope.REGION,
        LoadBalancing_Scope.ZONE,
      ],
      mode: LoadBalancing_Mode.FAILOVER,
    });
  }
  if (d === "PreferSameNode") {
    return create(LoadBalancingSchema, {
      routingPreference: [
        LoadBalancing_Scope.NETWORK,
        LoadBalancing_Scope.REGION,
        LoadBalancing_Scope.ZONE,
        LoadBalancing_Scope.SUBZONE,
        LoadBalancing_Scope.NODE,
      ],
      mode: LoadBalancing_Mode.FAILOVER,
    });
  }
  return undefined;
}

/** The application protocol Istio infers for a Service port (`kube.ConvertProtocol`). */
export function kubeAppProtocol(port: ServicePort): AppProtocol {
  if ((port.protocol ?? "TCP").toUpperCase() === "UDP") return AppProtocol.UNKNOWN;
  let name = port.name ?? "";
  if (port.appProtocol !== undefined) {
    name = port.appProtocol;
    if (name === "kubernetes.io/h2c") return AppProtocol.HTTP2;
    if (name === "kubernetes.io/ws") return AppProtocol.HTTP11;
    if (name === "kubernetes.io/wss") return AppProtocol.UNKNOWN;
  }
  if (name.toLowerCase().startsWith("grpc-web")) return AppProtocol.UNKNOWN;
  const dash = name.indexOf("-");
  return istioAppProtocol(dash === -1 ? name : name.slice(0, dash));
}

/** `protocol.Parse` narrowed to what the workload API carries. */
export function istioAppProtocol(name: string | undefined): AppProtocol {
  switch ((name ?? "").toLowerCase()) {
    case "http":
      return AppProtocol.HTTP11;
    case "http2":
      return AppProtocol.HTTP2;
    case "grpc":
      return AppProtocol.GRPC;
    default:
      return AppProtocol.UNKNOWN;
  }
}

function vipsOf(spec: KubeService["spec"]): string[] {
  const ips =
    spec?.clusterIPs !== undefined && spec.clusterIPs.length > 0
      ? spec.clusterIPs
      : [spec?.clusterIP ?? ""];
  return ips.filter((ip) => ip !== "" && ip !== "None");
}

export interface ServiceContext {
  domainSuffix: string;
  network: string;
  namespaceLabels: Readonly<Record<string, string>>;
  namespaceAnnotations: Readonly<Record<string, string>>;
  waypoint: {
    key: string | undefined;
    address: GatewayAddress | undefined;
    error: string | undefined;
  };
  warn: (message: string) => void;
}

/** Whether `istio.io/ingress-use-waypoint` is true on the object, else on its namespace. */
function ingressUseWaypoint(labels: Readonly<Record<string, string>>, c: ServiceContext): boolean {
  const text = labels[label.ingressUseWaypoint] ?? c.namespaceLabels[label.ingressUseWaypoint];
  if (text === undefined) return false;
  const b = parseBool(text);
  if (b === undefined)
    c.warn(`invalid ${label.ingressUseWaypoint} value ${JSON.stringify(text)}; using false`);
  return b === true;
}

/** A Kubernetes Service → ServiceInfo, or undefined (ExternalName, invalid VIP). */
export function kubeServiceInfo(svc: KubeService, c: ServiceContext): ServiceInfo | undefined {
  const spec = svc.spec ?? {};
  if (spec.type === "ExternalName") return undefined;
  const namespace = svc.metadata.namespace ?? "";
  const name = svc.metadata.name;
  const hostname = `${name}.${namespace}.svc.${c.domainSuffix}`;
  const portNames: Record<number, PortName> = {};
  const ports: Port[] = [];
  for (const p of spec.ports ?? []) {
    const target = p.targetPort;
    portNames[p.port] = {
      portName: p.name ?? "",
      targetPortName: typeof target === "string" ? target : "",
    };
    ports.push(
      create(PortSchema, {
        servicePort: p.port,
        // A named targetPort is resolved per workload; an absent one defaults to the port (API server default).
        targetPort: typeof target === "number" ? target : target === undefined ? p.port : 0,
        appProtocol: kubeAppProtocol(p),
      }),
    );
  }
  const addresses: NetworkAddress[] = [];
  for (const vip of vipsOf(spec)) {
    const ip = parseIp(vip);
    if (ip === undefined) {
      c.warn(
        `cluster IP ${JSON.stringify(vip)} is not an IP address; the Service is not sent to ztunnel`,
      );
      return undefined;
    }
    addresses.push(create(NetworkAddressSchema, { network: c.network, address: ip }));
  }
  let lb: LoadBalancing | undefined;
  if (spec.internalTrafficPolicy === "Local") {
    lb = create(LoadBalancingSchema, {
      routingPreference: [LoadBalancing_Scope.NODE],
      mode: LoadBalancing_Mode.STRICT,
    });
  } else {
    lb = distributionLoadBalancing(
      trafficDistribution(
        spec.trafficDistribution,
        svc.metadata.annotations ?? {},
        c.namespaceAnnotations,
        c.warn,
      ),
    );
  }
  if (spec.publishNotReadyAddresses === true) {
    lb ??= create(LoadBalancingSchema, {});
    lb.healthPolicy = LoadBalancing_HealthPolicy.ALLOW_ALL;
  }
  const families = spec.ipFamilies ?? [];
  const ipFamilies =
    families.length === 2
      ? IPFamilies.DUAL
      : families.length === 1
        ? families[0] === "IPv4"
          ? IPFamilies.IPV4_ONLY
          : IPFamilies.IPV6_ONLY
        : IPFamilies.AUTOMATIC;
  const service = create(ServiceSchema, {
    name,
    namespace,
    hostname,
    addresses,
    ports,
    ipFamilies,
    // A Kubernetes Service always owns its hostname.
    canonical: true,
  });
  if (lb !== undefined) service.loadBalancing = lb;
  if (c.waypoint.address !== undefined) {
    service.waypoint = c.waypoint.address;
    service.ingressUseWaypoint = ingressUseWaypoint(svc.metadata.labels ?? {}, c);
  }
  const selector =
    spec.selector !== undefined && !isEmpty(spec.selector) ? spec.selector : undefined;
  return finish({
    service,
    portNames,
    selector,
    source: { kind: "Service", namespace, name },
    waypoint: { key: c.waypoint.key, error: c.waypoint.error },
    creationTime: timeOf(svc.metadata.creationTimestamp),
  });
}

/**
 * The `Service` messages of a ServiceEntry, one per host (`constructServiceEntries`), or an empty
 * list when an address is not a single IP (istiod drops the whole entry then).
 */
export function serviceEntryServices(
  se: ServiceEntry,
  c: Omit<ServiceContext, "namespaceLabels" | "waypoint"> & {
    waypoint: GatewayAddress | undefined;
  },
): Service[] {
  const spec = se.spec ?? {};
  const namespace = se.metadata.namespace ?? "";
  const addresses: NetworkAddress[] = [];
  for (const a of spec.addresses ?? []) {
    const cidr = parseCidr(a);
    if (cidr === undefined || cidr.prefixLength !== cidr.address.length * 8) {
      c.warn(
        `address ${JSON.stringify(a)} is not a single IP (ambient supports only IPs or /32, /128 CIDRs); the ServiceEntry is not sent to ztunnel`,
      );
      return [];
    }
    addresses.push(create(NetworkAddressSchema, { network: c.network, address: cidr.address }));
  }
  const ports = (spec.ports ?? []).map((p) =>
    create(PortSchema, {
      servicePort: p.number,
      targetPort: p.targetPort !== undefined && p.targetPort !== 0 ? p.targetPort : p.number,
      appProtocol: istioAppProtocol(p.protocol),
    }),
  );
  const resolution = spec.resolution ?? "NONE";
  let lb: LoadBalancing | undefined;
  if (resolution === "NONE") {
    // Traffic goes to the address the client dialled; health is irrelevant then.
    lb = create(LoadBalancingSchema, {
      mode: LoadBalancing_Mode.PASSTHROUGH,
      healthPolicy: LoadBalancing_HealthPolicy.ALLOW_ALL,
    });
  } else {
    lb = distributionLoadBalancing(
      trafficDistribution(undefined, se.metadata.annotations ?? {}, c.namespaceAnnotations, c.warn),
    );
  }
  const allocated = se.status?.addresses ?? [];
  return (spec.hosts ?? []).map((host) => {
    let hostAddresses = addresses;
    if (hostAddresses.length === 0 && resolution !== "NONE") {
      // Addresses auto-allocated by the IP allocation controller live in status, keyed by host.
      if (!(host.startsWith("*") && resolution !== "DYNAMIC_DNS")) {
        hostAddresses = [];
        for (const a of allocated) {
          if (a.host !== host) continue;
          const ip = parseIp(a.value);
          if (ip !== undefined)
            hostAddresses.push(create(NetworkAddressSchema, { network: c.network, address: ip }));
        }
      }
    }
    const service = create(ServiceSchema, {
      name: se.metadata.name,
      namespace,
      hostname: host,
      addresses: hostAddresses.map((a) => clone(NetworkAddressSchema, a)),
      ports: ports.map((p) => clone(PortSchema, p)),
      subjectAltNames: [...(spec.subjectAltNames ?? [])],
      visibility: Visibility.PUBLIC,
    });
    if (lb !== undefined) service.loadBalancing = clone(LoadBalancingSchema, lb);
    if (c.waypoint !== undefined) service.waypoint = c.waypoint;
    return service;
  });
}

/** A ServiceEntry → one ServiceInfo per host. */
export function serviceEntryInfos(se: ServiceEntry, c: ServiceContext): ServiceInfo[] {
  const spec = se.spec ?? {};
  const namespace = se.metadata.namespace ?? "";
  const portNames: Record<number, PortName> = {};
  for (const p of spec.ports ?? [])
    portNames[p.number] = { portName: p.name ?? "", targetPortName: "" };
  const selectorLabels = spec.workloadSelector?.labels;
  const selector =
    selectorLabels !== undefined && !isEmpty(selectorLabels) ? selectorLabels : undefined;
  if (spec.resolution === "DYNAMIC_DNS" && c.waypoint.address === undefined) {
    c.warn(
      "DYNAMIC_DNS resolution needs an egress waypoint; ztunnel cannot serve this entry on its own",
    );
  }
  const useIngress =
    c.waypoint.address !== undefined && ingressUseWaypoint(se.metadata.labels ?? {}, c);
  return serviceEntryServices(se, { ...c, waypoint: c.waypoint.address }).map((service) => {
    service.ingressUseWaypoint = useIngress;
    return finish({
      service,
      portNames,
      selector,
      source: { kind: "ServiceEntry", namespace, name: se.metadata.name },
      waypoint: { key: c.waypoint.key, error: c.waypoint.error },
      creationTime: timeOf(se.metadata.creationTimestamp),
    });
  });
}

function finish(
  info: Omit<ServiceInfo, "key" | "typedKey" | "resource" | "fingerprint">,
): ServiceInfo {
  const resource = serviceResource(info.service);
  const typedKey = `${info.source.kind}/${info.source.namespace}/${info.source.name}/${info.service.hostname}`;
  return {
    ...info,
    key: resource.name,
    typedKey,
    resource,
    fingerprint: JSON.stringify([
      resource.version,
      info.portNames,
      info.selector ?? null,
      info.source,
      info.waypoint,
      info.creationTime,
    ]),
  };
}

/** `creationTimestamp` as milliseconds; missing sorts as oldest (Go's zero time). */
export function timeOf(ts: string | undefined): number {
  if (ts === undefined) return Number.NEGATIVE_INFINITY;
  const t = Date.parse(ts);
  return Number.isNaN(t) ? Number.NEGATIVE_INFINITY : t;
}

/**
 * `selectWorkloadServices`: for the services sharing one hostname, the winner per namespace (a
 * Kubernetes Service, else the oldest ServiceEntry) and the one canonical service (the
 * Kubernetes Service, else the oldest public ServiceEntry). Input order breaks ties.
 */
export function selectServices(candidates: readonly ServiceInfo[]): ServiceInfo[] {
  const isBetter = (a: ServiceInfo, b: ServiceInfo) =>
    a.creationTime < b.creationTime && b.source.kind !== "Service";
  const best = new Map<string, ServiceInfo>();
  for (const s of candidates) {
    const ns = s.source.namespace;
    if (s.source.kind === "Service") {
      best.set(ns, s);
      continue;
    }
    const current = best.get(ns);
    if (current === undefined || isBetter(s, current)) best.set(ns, s);
  }
  let canonical: ServiceInfo | undefined;
  for (const ns of [...best.keys()].sort()) {
    const s = best.get(ns);
    if (s === undefined) continue;
    if (s.source.kind === "Service") canonical = s;
    else if (s.service.visibility === Visibility.NAMESPACE) continue;
    else if (canonical === undefined || isBetter(s, canonical)) canonical = s;
  }
  const out: ServiceInfo[] = [];
  for (const ns of [...best.keys()].sort()) {
    const s = best.get(ns);
    if (s === undefined) continue;
    if (s === canonical && !s.service.canonical) {
      const service = clone(ServiceSchema, s.service);
      service.canonical = true;
      out.push(
        finish({
          service,
          portNames: s.portNames,
          selector: s.selector,
          source: s.source,
          waypoint: s.waypoint,
          creationTime: s.creationTime,
        }),
      );
    } else {
      out.push(s);
    }
  }
  return out;
}

export function serviceSelects(s: ServiceInfo, labels: Readonly<Record<string, string>>): boolean {
  const sel = s.selector;
  if (sel === undefined) return false;
  for (const k in sel) if (labels[k] !== sel[k]) return false;
  return true;
}
