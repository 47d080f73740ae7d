/**
 * Waypoints and who binds to them (istiod `waypoints.go`). A Gateway becomes a waypoint once its
 * `status.addresses` is non-empty (set when it has a ready instance). Services and workloads bind
 * with `istio.io/use-waypoint` (+ `-namespace`) on themselves or, failing that, their namespace;
 * `none` on the object opts out. The waypoint's `istio.io/waypoint-for` decides which kinds may
 * bind, and its bound listener's `allowedRoutes.namespaces` which namespaces.
 */
import { create } from "@bufbuild/protobuf";
import {
  ApplicationTunnel_Protocol,
  GatewayAddressSchema,
  NamespacedHostnameSchema,
  NetworkAddressSchema,
} from "../../lib/gen/istio/workload/workload_pb.ts";
import type { GatewayAddress } from "../../lib/gen/istio/workload/workload_pb.ts";
import {
  formatIp,
  label,
  labelSelectorMatches,
  parseIp,
  podServiceAccount,
  value,
} from "../model/index.ts";
import type {
  Gateway,
  GatewayClass,
  GatewayListener,
  LabelSelector,
  Namespace,
  ObjectMeta,
  Pod,
} from "../model/index.ts";
import type { Ctx, Table } from "./krt/index.ts";

export interface InboundBinding {
  protocol: ApplicationTunnel_Protocol;
  port: number;
}

export interface AllowedRoutes {
  from: "All" | "Same" | "Selector";
  selector?: LabelSelector;
}

export interface Waypoint {
  /** `<namespace>/<name>` of the Gateway. */
  key: string;
  namespace: string;
  name: string;
  /** How ztunnel reaches it; undefined when no status address is usable. */
  address: GatewayAddress | undefined;
  /** Application tunnel for the waypoint's own instances (`waypoint-inbound-binding`). */
  defaultBinding: InboundBinding | undefined;
  /** `istio.io/waypoint-for`: `service` (default), `workload`, `all` or `none` (or any other text). */
  trafficType: string;
  /** Service accounts of the instances (pods labelled `gateway.networking.k8s.io/gateway-name`). */
  serviceAccounts: string[];
  allowedRoutes: AllowedRoutes;
  /** Comparable summary: equal fingerprints mean equal waypoints. */
  fingerprint: string;
}

/** Pods index: `<namespace>/<gateway-name label>` of waypoint instances. */
export const podsByGatewayIndex = "gatewayInstance";

export function buildWaypoint(
  ctx: Ctx,
  gateway: Gateway,
  tables: { gatewayClasses: Table<GatewayClass>; pods: Table<Pod> },
  network: string,
): Waypoint | undefined {
  const statusAddresses = gateway.status?.addresses ?? [];
  // istiod: status addresses are only populated once the waypoint has a ready instance.
  if (statusAddresses.length === 0) return undefined;
  const namespace = gateway.metadata.namespace ?? "";
  const name = gateway.metadata.name;
  const key = `${namespace}/${name}`;
  const instances = ctx.index(tables.pods, podsByGatewayIndex, key);
  const serviceAccounts = [...new Set(instances.map((p) => podServiceAccount(p)))].sort();

  const className = gateway.spec?.gatewayClassName ?? "";
  const gatewayClass = ctx.get(tables.gatewayClasses, className);
  let trafficType = "service";
  if (gatewayClass === undefined) {
    ctx.report("warning", `Gateway/${key}`, `GatewayClass ${className} not found`);
  } else {
    const t = gatewayClass.metadata.labels?.[label.waypointFor];
    if (t !== undefined) trafficType = t;
  }
  const own = gateway.metadata.labels?.[label.waypointFor];
  if (own !== undefined) trafficType = own;

  const defaultBinding = inboundBinding(ctx, gateway, gatewayClass);
  const address = gatewayAddress(ctx, gateway, network);
  const allowedRoutes = allowedRoutesOf(gateway, defaultBinding);
  const fingerprint = JSON.stringify([
    key,
    address === undefined ? null : describeGatewayAddress(address),
    defaultBinding ?? null,
    trafficType,
    serviceAccounts,
    allowedRoutes,
  ]);
  return {
    key,
    namespace,
    name,
    address,
    defaultBinding,
    trafficType,
    serviceAccounts,
    allowedRoutes,
    fingerprint,
  };
}

/** Readable form of a GatewayAddress, for fingerprints, reports and the CLI. */
export function describeGatewayAddress(a: GatewayAddress): string {
  const d = a.destination;
  if (d.case === "hostname") return `${d.value.namespace}/${d.value.hostname}:${a.hboneMtlsPort}`;
  if (d.case === "address")
    return `${d.value.network}/${formatIp(d.value.address)}:${a.hboneMtlsPort}`;
  return `<none>:${a.hboneMtlsPort}`;
}

/** istiod prefers a hostname status address (namespace + value), else the first valid IP; HBONE port 15008. */
function gatewayAddress(ctx: Ctx, gateway: Gateway, network: string): GatewayAddress | undefined {
  const namespace = gateway.metadata.namespace ?? "";
  const addresses = gateway.status?.addresses ?? [];
  for (const a of addresses) {
    if (a.type === "Hostname") {
      return create(GatewayAddressSchema, {
        destination: {
          case: "hostname",
          value: create(NamespacedHostnameSchema, { namespace, hostname: a.value }),
        },
        hboneMtlsPort: 15008,
      });
    }
  }
  for (const a of addresses) {
    // The Gateway API defaults an address's type to IPAddress.
    if (a.type === undefined || a.type === "IPAddress") {
      const ip = parseIp(a.value);
      if (ip === undefined) {
        ctx.report(
          "warning",
          `Gateway/${namespace}/${gateway.metadata.name}`,
          `status address ${JSON.stringify(a.value)} is not an IP address`,
        );
        continue;
      }
      return create(GatewayAddressSchema, {
        destination: {
          case: "address",
          value: create(NetworkAddressSchema, { network, address: ip }),
        },
        hboneMtlsPort: 15008,
      });
    }
  }
  ctx.report(
    "warning",
    `Gateway/${namespace}/${gateway.metadata.name}`,
    "no usable status address (Hostname or IPAddress); ztunnel cannot reach this waypoint",
  );
  return undefined;
}

/** `ambient.istio.io/waypoint-inbound-binding: <PROXY|NONE>[/<port>]`, Gateway over GatewayClass. */
function inboundBinding(
  ctx: Ctx,
  gateway: Gateway,
  gatewayClass: GatewayClass | undefined,
): InboundBinding | undefined {
  const fromGateway = gateway.metadata.annotations?.[annotationInbound];
  const text = fromGateway ?? gatewayClass?.metadata.annotations?.[annotationInbound];
  if (text === undefined) return undefined;
  const where = `Gateway/${gateway.metadata.namespace ?? ""}/${gateway.metadata.name}`;
  const parts = text.split("/");
  if (parts.length > 2) {
    ctx.report(
      "warning",
      where,
      `invalid ${annotationInbound} ${JSON.stringify(text)}: must be "<protocol>" or "<protocol>/<port>"`,
    );
    return undefined;
  }
  let protocol: ApplicationTunnel_Protocol;
  if (parts[0] === "NONE") protocol = ApplicationTunnel_Protocol.NONE;
  else if (parts[0] === "PROXY") protocol = ApplicationTunnel_Protocol.PROXY;
  else {
    ctx.report(
      "warning",
      where,
      `invalid protocol ${JSON.stringify(parts[0])} in ${annotationInbound}: only NONE or PROXY are supported`,
    );
    return undefined;
  }
  let port = 0;
  if (parts.length === 2) {
    // istiod warns on a bad port and carries on with 0 (unset).
    const p = parts[1] ?? "";
    if (/^[0-9]+$/.test(p) && Number(p) <= 0xffffffff) port = Number(p);
    else
      ctx.report(
        "warning",
        where,
        `invalid port ${JSON.stringify(p)} in ${annotationInbound}; using none`,
      );
  }
  return { protocol, port };
}

const annotationInbound = "ambient.istio.io/waypoint-inbound-binding";

/** The listener a binding is served on (port, else the PROXY listener), else the HBONE/15008 one. */
function allowedRoutesOf(gateway: Gateway, binding: InboundBinding | undefined): AllowedRoutes {
  const listeners = gateway.spec?.listeners ?? [];
  let bound: GatewayListener | undefined;
  if (binding !== undefined) {
    if (binding.port !== 0) bound = listeners.find((l) => l.port === binding.port);
    else if (binding.protocol === ApplicationTunnel_Protocol.PROXY) {
      bound = listeners.find((l) => l.protocol === value.sandwichProxyProtocol);
    }
  }
  bound ??= listeners.find((l) => l.protocol === "HBONE" && l.port === 15008);
  const ns = bound?.allowedRoutes?.namespaces;
  if (ns === undefined) return { from: "Same" };
  // Anything but All/Selector is treated as Same, istiod's default ("should be impossible").
  const from = ns.from === "All" || ns.from === "Selector" ? ns.from : "Same";
  return ns.selector === undefined ? { from } : { from, selector: ns.selector };
}

/** Whether objects in `namespace` may bind to `w`. */
export function allowsAttachmentFrom(
  w: Waypoint,
  namespace: string,
  namespaceObj: Namespace | undefined,
): boolean {
  switch (w.allowedRoutes.from) {
    case "All":
      return true;
    case "Selector":
      return labelSelectorMatches(w.allowedRoutes.selector, namespaceObj?.metadata.labels ?? {});
    case "Same":
      return w.namespace === namespace;
  }
}

export interface WaypointRef {
  key: string;
}

/** `istio.io/use-waypoint` (+ namespace) on an object; `none` means opted out. */
export function useWaypointLabel(
  meta: Pick<ObjectMeta, "labels">,
  defaultNamespace: string,
): { ref: WaypointRef | undefined; none: boolean } {
  const v = meta.labels?.[label.useWaypoint];
  if (v === undefined) return { ref: undefined, none: false };
  // Istio reserves "none": a waypoint named "none" cannot be used.
  if (v === value.useWaypointNone) return { ref: undefined, none: true };
  const ns = meta.labels?.[label.useWaypointNamespace] ?? defaultNamespace;
  return { ref: { key: `${ns}/${v}` }, none: false };
}

export interface WaypointBinding {
  waypoint: Waypoint | undefined;
  /** Why a requested waypoint is not used (not ready, not allowed, wrong traffic type). */
  error: string | undefined;
  /** Where the request came from, for reports: `object` or `namespace`. */
  source: "object" | "namespace" | undefined;
}

const noBinding: WaypointBinding = { waypoint: undefined, error: undefined, source: undefined };

/** `fetchWaypointForTarget`: the object's own label, else its namespace's. */
export function waypointForTarget(
  ctx: Ctx,
  tables: { waypoints: Table<Waypoint>; namespaces: Table<Namespace> },
  meta: Pick<ObjectMeta, "labels" | "namespace">,
): WaypointBinding {
  const namespace = meta.namespace ?? "";
  const own = useWaypointLabel(meta, namespace);
  if (own.none) return noBinding;
  if (own.ref !== undefined) {
    const w = ctx.get(tables.waypoints, own.ref.key);
    if (w === undefined) {
      return {
        waypoint: undefined,
        error: `waypoint ${own.ref.key} is not ready (Gateway missing or without status addresses)`,
        source: "object",
      };
    }
    const nsObj =
      w.allowedRoutes.from === "Selector" ? ctx.get(tables.namespaces, namespace) : undefined;
    if (!allowsAttachmentFrom(w, namespace, nsObj)) {
      return {
        waypoint: undefined,
        error: `waypoint ${w.key} does not allow attachment from namespace ${namespace} (allowedRoutes.namespaces.from=${w.allowedRoutes.from})`,
        source: "object",
      };
    }
    return { waypoint: w, error: undefined, source: "object" };
  }
  const nsObj = ctx.get(tables.namespaces, namespace);
  if (nsObj === undefined) return noBinding;
  const fromNs = useWaypointLabel(nsObj.metadata, namespace);
  if (fromNs.ref === undefined) return noBinding;
  const w = ctx.get(tables.waypoints, fromNs.ref.key);
  if (w === undefined) {
    return {
      waypoint: undefined,
      error: `namespace waypoint ${fromNs.ref.key} is not ready (Gateway missing or without status addresses)`,
      source: "namespace",
    };
  }
  if (!allowsAttachmentFrom(w, namespace, nsObj)) {
    return {
      waypoint: undefined,
      error: `waypoint ${w.key} does not allow attachment from namespace ${namespace} (allowedRoutes.namespaces.from=${w.allowedRoutes.from})`,
      source: "namespace",
    };
  }
  return { waypoint: w, error: undefined, source: "namespace" };
}

/** `fetchWaypointForService`: waypoint Services never get one; the waypoint must serve `service` or `all`. */
export function waypointForService(
  ctx: Ctx,
  tables: { waypoints: Table<Waypoint>; namespaces: Table<Namespace> },
  meta: Pick<ObjectMeta, "labels" | "namespace">,
): WaypointBinding {
  if (meta.labels?.[label.gatewayManaged] === value.meshControllerLabel) return noBinding;
  const b = waypointForTarget(ctx, tables, meta);
  if (b.waypoint === undefined) return b;
  if (b.waypoint.trafficType === "service" || b.waypoint.trafficType === "all") return b;
  return {
    waypoint: undefined,
    error: `waypoint ${b.waypoint.key} is for ${JSON.stringify(b.waypoint.trafficType)} traffic, not service traffic (istio.io/waypoint-for)`,
    source: b.source,
  };
}

/** `fetchWaypointForWorkload`: the waypoint must serve `workload` or `all`. */
export function waypointForWorkload(
  ctx: Ctx,
  tables: { waypoints: Table<Waypoint>; namespaces: Table<Namespace> },
  meta: Pick<ObjectMeta, "labels" | "namespace">,
): WaypointBinding {
  const b = waypointForTarget(ctx, tables, meta);
  if (b.waypoint === undefined) return b;
  if (b.waypoint.trafficType === "workload" || b.waypoint.trafficType === "all") return b;
  return {
    waypoint: undefined,
    error: `waypoint ${b.waypoint.key} is for ${JSON.stringify(b.waypoint.trafficType)} traffic, not workload traffic (istio.io/waypoint-for)`,
    source: b.source,
  };
}

/** The waypoint an object is an instance of (`gateway.networking.k8s.io/gateway-name`, same namespace). */
export function waypointInstanceOf(
  ctx: Ctx,
  waypoints: Table<Waypoint>,
  meta: Pick<ObjectMeta, "labels" | "namespace">,
): Waypoint | undefined {
  const name = meta.labels?.[label.gatewayName] ?? "";
  if (name === "") return undefined;
  return ctx.get(waypoints, `${meta.namespace ?? ""}/${name}`);
}
