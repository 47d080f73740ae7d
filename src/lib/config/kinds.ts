/**
 * The kinds the control plane reads, with what each needs to be found on disk and on the Kubernetes
 * API: group, the versions served (preferred first), the resource (plural) name, and whether the
 * kind is namespaced. One table, so the files source, the Kubernetes source and the API-server
 * stand-in agree on every path.
 */

export type CoreKind =
  "Namespace" | "Pod" | "Deployment" | "Service" | "EndpointSlice" | "ServiceAccount" | "Node";
export type IstioKind =
  | "AuthorizationPolicy"
  | "PeerAuthentication"
  | "RequestAuthentication"
  | "ServiceEntry"
  | "WorkloadEntry"
  | "VirtualService"
  | "DestinationRule"
  | "Telemetry";
export type GatewayApiKind = "Gateway" | "GatewayClass" | "HTTPRoute" | "GRPCRoute" | "TCPRoute";
export type Kind = CoreKind | IstioKind | GatewayApiKind;

export interface KindInfo {
  readonly kind: Kind;
  /** API group; "" for the core group. */
  readonly group: string;
  /** Versions accepted, preferred first (the Kubernetes source lists the first one served). */
  readonly versions: readonly string[];
  /** Resource name in API paths (lower-case plural). */
  readonly plural: string;
  readonly namespaced: boolean;
  /**
   * True where the object has no `spec` field on the wire (EndpointSlice, ServiceAccount): the
   * store then carries the top-level fields other than apiVersion/kind/metadata as `spec`.
   */
  readonly topLevelSpec: boolean;
  /** Name syntax the API server enforces for this kind. */
  readonly nameRule: "dns1123-subdomain" | "dns1123-label" | "dns1035-label";
}

const NET = ["v1", "v1beta1", "v1alpha3"] as const;
const SEC = ["v1", "v1beta1"] as const;
const GW = "gateway.networking.k8s.io";

function info(
  kind: Kind,
  group: string,
  versions: readonly string[],
  plural: string,
  namespaced: boolean,
  extra: Partial<Pick<KindInfo, "topLevelSpec" | "nameRule">> = {},
): KindInfo {
  return Object.freeze({
    kind,
    group,
    versions: Object.freeze([...versions]),
    plural,
    namespaced,
    topLevelSpec: extra.topLevelSpec ?? false,
    nameRule: extra.nameRule ?? "dns1123-subdomain",
  });
}

export const KINDS: Readonly<Record<Kind, KindInfo>> = Object.freeze({
  Namespace: info("Namespace", "", ["v1"], "namespaces", false, { nameRule: "dns1123-label" }),
  Pod: info("Pod", "", ["v1"], "pods", true),
  Deployment: info("Deployment", "apps", ["v1"], "deployments", true),
  Service: info("Service", "", ["v1"], "services", true, { nameRule: "dns1035-label" }),
  EndpointSlice: info("EndpointSlice", "discovery.k8s.io", ["v1"], "endpointslices", true, {
    topLevelSpec: true,
  }),
  ServiceAccount: info("ServiceAccount", "", ["v1"], "serviceaccounts", true, {
    topLevelSpec: true,
  }),
  Node: info("Node", "", ["v1"], "nodes", false),
  AuthorizationPolicy: info(
    "AuthorizationPolicy",
    "security.istio.io",
    SEC,
    "authorizationpolicies",
    true,
  ),
  PeerAuthentication: info(
    "PeerAuthentication",
    "security.istio.io",
    SEC,
    "peerauthentications",
    true,
  ),
  RequestAuthentication: info(
    "RequestAuthentication",
    "security.istio.io",
    SEC,
    "requestauthentications",
    true,
  ),
  ServiceEntry: info("ServiceEntry", "networking.istio.io", NET, "serviceentries", true),
  WorkloadEntry: info("WorkloadEntry", "networking.istio.io", NET, "workloadentries", true),
  VirtualService: info("VirtualService", "networking.istio.io", NET, "virtualservices", true),
  DestinationRule: info("DestinationRule", "networking.istio.io", NET, "destinationrules", true),
  // Istio serves Telemetry as v1 and v1alpha1 (there is no v1beta1).
  Telemetry: info("Telemetry", "telemetry.istio.io", ["v1", "v1alpha1"], "telemetries", true),
  Gateway: info("Gateway", GW, ["v1", "v1beta1"], "gateways", true),
  GatewayClass: info("GatewayClass", GW, ["v1", "v1beta1"], "gatewayclasses", false),
  HTTPRoute: info("HTTPRoute", GW, ["v1", "v1beta1"], "httproutes", true),
  // GRPCRoute went from v1alpha2 straight to v1.
  GRPCRoute: info("GRPCRoute", GW, ["v1", "v1alpha2"], "grpcroutes", true),
  TCPRoute: info("TCPRoute", GW, ["v1alpha2"], "tcproutes", true),
});

export const ALL_KINDS: readonly Kind[] = Object.freeze(Object.keys(KINDS) as Kind[]);

export function isKind(s: unknown): s is Kind {
  return typeof s === "string" && Object.hasOwn(KINDS, s);
}

/** `group/version`, or just `version` for the core group. */
export function apiVersionOf(group: string, version: string): string {
  return group === "" ? version : `${group}/${version}`;
}

/** Splits an apiVersion into group and version (`v1` → core group). */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf("/");
  return slash === -1
    ? { group: "", version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** The apiVersions accepted for a kind, preferred first. */
export function apiVersionsFor(kind: Kind): readonly string[] {
  const k = KINDS[kind];
  return k.versions.map((v) => apiVersionOf(k.group, v));
}

/** The kind an (apiVersion, kind) pair names, or a reason it names none we serve. */
export function resolveKind(
  apiVersion: string,
  kind: string,
): { ok: true; value: KindInfo } | { ok: false; reason: "unknown-kind" | "unknown-version" } {
  if (!isKind(kind)) return { ok: false, reason: "unknown-kind" };
  const k = KINDS[kind];
  const { group, version } = splitApiVersion(apiVersion);
  if (group !== k.group || !k.versions.includes(version)) {
    return { ok: false, reason: "unknown-version" };
  }
  return { ok: true, value: k };
}

/**
 * The REST path of a kind's collection (all namespaces when `namespace` is undefined for a
 * namespaced kind), or of one object when `name` is given.
 */
export function apiPath(
  kind: Kind,
  version: string,
  opts: { namespace?: string; name?: string; subresource?: string } = {},
): string {
  const k = KINDS[kind];
  let p = k.group === "" ? `/api/${version}` : `/apis/${k.group}/${version}`;
  if (k.namespaced && opts.namespace !== undefined) {
    p += `/namespaces/${encodeURIComponent(opts.namespace)}`;
  }
  p += `/${k.plural}`;
  if (opts.name !== undefined) {
    p += `/${encodeURIComponent(opts.name)}`;
    if (opts.subresource !== undefined) p += `/${opts.subresource}`;
  }
  return p;
}
