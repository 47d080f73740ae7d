/**
 * The resources an API server serves: group, versions, REST name, kind, scope, and whether the
 * resource has a status subresource. One table drives routing, discovery and list/watch.
 */

export interface ApiResource {
  readonly group: string;
  /** Versions served, preferred first. Objects are stored once, whatever version wrote them. */
  readonly versions: readonly string[];
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
  /** Built into the API server (its list items have no apiVersion/kind), not a CRD. */
  readonly builtIn: boolean;
  /** Has a status subresource. */
  readonly status: boolean;
  /** For discovery (`kubectl get po`). */
  readonly shortNames?: readonly string[];
}

function r(
  group: string,
  versions: readonly string[],
  plural: string,
  kind: string,
  namespaced: boolean,
  builtIn: boolean,
  status = true,
  shortNames?: readonly string[],
): ApiResource {
  return Object.freeze({
    group,
    versions: Object.freeze([...versions]),
    plural,
    kind,
    namespaced,
    builtIn,
    status,
    ...(shortNames ? { shortNames: Object.freeze([...shortNames]) } : {}),
  });
}

const NET = ["v1", "v1beta1", "v1alpha3"] as const;
const SEC = ["v1", "v1beta1"] as const;
const GW = "gateway.networking.k8s.io";

/** The resources Ambient reads and writes, as a cluster with Istio and Gateway API CRDs serves them. */
export const DEFAULT_RESOURCES: readonly ApiResource[] = Object.freeze([
  r("", ["v1"], "namespaces", "Namespace", false, true, true, ["ns"]),
  r("", ["v1"], "pods", "Pod", true, true, true, ["po"]),
  r("", ["v1"], "services", "Service", true, true, true, ["svc"]),
  r("", ["v1"], "serviceaccounts", "ServiceAccount", true, true, false, ["sa"]),
  r("", ["v1"], "nodes", "Node", false, true, true, ["no"]),
  r("apps", ["v1"], "deployments", "Deployment", true, true, true, ["deploy"]),
  r("apps", ["v1"], "replicasets", "ReplicaSet", true, true, true, ["rs"]),
  r("discovery.k8s.io", ["v1"], "endpointslices", "EndpointSlice", true, true, false),
  r("security.istio.io", SEC, "authorizationpolicies", "AuthorizationPolicy", true, false),
  r("security.istio.io", SEC, "peerauthentications", "PeerAuthentication", true, false),
  r("security.istio.io", SEC, "requestauthentications", "RequestAuthentication", true, false),
  r("networking.istio.io", NET, "serviceentries", "ServiceEntry", true, false, true, ["se"]),
  r("networking.istio.io", NET, "workloadentries", "WorkloadEntry", true, false, true, ["we"]),
  r("networking.istio.io", NET, "virtualservices", "VirtualService", true, false, true, ["vs"]),
  r("networking.istio.io", NET, "destinationrules", "DestinationRule", true, false, true, ["dr"]),
  r("telemetry.istio.io", ["v1", "v1alpha1"], "telemetries", "Telemetry", true, false),
  r(GW, ["v1", "v1beta1"], "gateways", "Gateway", true, false, true, ["gtw"]),
  r(GW, ["v1", "v1beta1"], "gatewayclasses", "GatewayClass", false, false, true, ["gc"]),
  r(GW, ["v1", "v1beta1"], "httproutes", "HTTPRoute", true, false),
  r(GW, ["v1", "v1alpha2"], "grpcroutes", "GRPCRoute", true, false),
  r(GW, ["v1alpha2"], "tcproutes", "TCPRoute", true, false),
]);

/** `group/version`, or just `version` for the core group. */
export function apiVersionOf(res: Pick<ApiResource, "group">, version: string): string {
  return res.group === "" ? version : `${res.group}/${version}`;
}

/** The preferred apiVersion of a resource. */
export function preferredApiVersion(res: ApiResource): string {
  return apiVersionOf(res, res.versions[0]!);
}

/** Splits an apiVersion into group and version (`v1` → core group). */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf("/");
  return slash === -1
    ? { group: "", version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** A lookup table over a list of resources. */
export class ResourceTable {
  readonly all: readonly ApiResource[];
  readonly #byKind = new Map<string, ApiResource>();
  readonly #byPlural = new Map<string, ApiResource>();

  constructor(resources: readonly ApiResource[]) {
    this.all = resources;
    for (const res of resources) {
      this.#byKind.set(`${res.group}/${res.kind}`, res);
      this.#byPlural.set(`${res.group}/${res.plural}`, res);
    }
  }

  /** The resource an object's apiVersion and kind name (the version must be served). */
  forObject(apiVersion: string, kind: string): ApiResource | undefined {
    const { group, version } = splitApiVersion(apiVersion);
    const res = this.#byKind.get(`${group}/${kind}`);
    return res !== undefined && res.versions.includes(version) ? res : undefined;
  }

  /** The resource of a kind in a group, whatever the version. */
  forKind(group: string, kind: string): ApiResource | undefined {
    return this.#byKind.get(`${group}/${kind}`);
  }

  forPlural(group: string, plural: string): ApiResource | undefined {
    return this.#byPlural.get(`${group}/${plural}`);
  }
}
