/**
 * The Kubernetes-shaped objects the control plane computes from: `{ apiVersion, kind, metadata,
 * spec, status }`, exactly as users write them. Only the fields the ambient conversion reads are
 * typed; everything else passes through untouched. The config store validates documents against
 * their schemas; these types are what the conversion relies on after that.
 */

export interface OwnerReference {
  apiVersion?: string;
  kind: string;
  name: string;
  uid?: string;
  controller?: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generateName?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: readonly OwnerReference[];
  creationTimestamp?: string;
  deletionTimestamp?: string;
  resourceVersion?: string;
  generation?: number;
}

export interface KubeObject<Spec = unknown, Status = unknown> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: Spec;
  status?: Status;
}

/** The kinds the ambient conversion reads, named by their Kubernetes kind. */
export type ResourceKind =
  | "Namespace"
  | "Node"
  | "Pod"
  | "Service"
  | "EndpointSlice"
  | "ServiceEntry"
  | "WorkloadEntry"
  | "Gateway"
  | "GatewayClass"
  | "AuthorizationPolicy"
  | "PeerAuthentication";

export const resourceKinds: readonly ResourceKind[] = [
  "Namespace",
  "Node",
  "Pod",
  "Service",
  "EndpointSlice",
  "ServiceEntry",
  "WorkloadEntry",
  "Gateway",
  "GatewayClass",
  "AuthorizationPolicy",
  "PeerAuthentication",
];

const clusterScoped: ReadonlySet<ResourceKind> = new Set(["Namespace", "Node", "GatewayClass"]);

/** API groups per kind; `Gateway` is the Gateway API one (Istio's own `Gateway` is not a waypoint). */
const groups: Readonly<Record<ResourceKind, readonly string[]>> = {
  Namespace: [""],
  Node: [""],
  Pod: [""],
  Service: [""],
  EndpointSlice: ["discovery.k8s.io"],
  ServiceEntry: ["networking.istio.io"],
  WorkloadEntry: ["networking.istio.io"],
  Gateway: ["gateway.networking.k8s.io"],
  GatewayClass: ["gateway.networking.k8s.io"],
  AuthorizationPolicy: ["security.istio.io"],
  PeerAuthentication: ["security.istio.io"],
};

/** The API group of an `apiVersion` (`v1` → "", `apps/v1` → "apps"). */
export function apiGroup(apiVersion: string): string {
  const slash = apiVersion.indexOf("/");
  return slash === -1 ? "" : apiVersion.slice(0, slash);
}

/** Which of our kinds an object is, or undefined for kinds the ambient conversion ignores. */
export function resourceKindOf(
  obj: Pick<KubeObject, "apiVersion" | "kind">,
): ResourceKind | undefined {
  const kind = obj.kind as ResourceKind;
  const allowed = groups[kind] as readonly string[] | undefined;
  if (allowed === undefined) return undefined;
  return allowed.includes(apiGroup(obj.apiVersion)) ? kind : undefined;
}

export function isClusterScoped(kind: ResourceKind): boolean {
  return clusterScoped.has(kind);
}

/** The store key of an object: `namespace/name`, or `name` for cluster-scoped kinds. */
export function objectKey(
  kind: ResourceKind,
  meta: Pick<ObjectMeta, "name" | "namespace">,
): string {
  if (isClusterScoped(kind)) return meta.name;
  return `${meta.namespace ?? ""}/${meta.name}`;
}

export interface ObjectRef {
  kind: ResourceKind;
  namespace: string;
  name: string;
}

export function refOf(kind: ResourceKind, obj: KubeObject): ObjectRef {
  return { kind, namespace: obj.metadata.namespace ?? "", name: obj.metadata.name };
}

export function formatRef(ref: ObjectRef): string {
  return ref.namespace === ""
    ? `${ref.kind}/${ref.name}`
    : `${ref.kind}/${ref.namespace}/${ref.name}`;
}

export function labelsOf(obj: { metadata: ObjectMeta }): Readonly<Record<string, string>> {
  return obj.metadata.labels ?? {};
}

export function annotationsOf(obj: { metadata: ObjectMeta }): Readonly<Record<string, string>> {
  return obj.metadata.annotations ?? {};
}

// ---- Label selectors ---------------------------------------------------------------------------

export interface LabelSelectorRequirement {
  key: string;
  /** `In`, `NotIn`, `Exists`, `DoesNotExist`; anything else never matches. */
  operator: string;
  values?: readonly string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: readonly LabelSelectorRequirement[];
}

// ---- core/v1 -----------------------------------------------------------------------------------

export type Namespace = KubeObject;
export type Node = KubeObject;

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}

export interface PodSpec {
  nodeName?: string;
  hostNetwork?: boolean;
  serviceAccountName?: string;
  serviceAccount?: string;
  containers?: readonly { name?: string; ports?: readonly ContainerPort[] }[];
}

export interface PodStatus {
  phase?: string;
  podIP?: string;
  podIPs?: readonly { ip: string }[];
  conditions?: readonly { type: string; status: string }[];
}

export type Pod = KubeObject<PodSpec, PodStatus>;

export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
  appProtocol?: string;
}

export interface ServiceSpec {
  type?: string;
  selector?: Record<string, string>;
  clusterIP?: string;
  clusterIPs?: readonly string[];
  ipFamilies?: readonly string[];
  ports?: readonly ServicePort[];
  trafficDistribution?: string;
  internalTrafficPolicy?: string;
  publishNotReadyAddresses?: boolean;
}

export type Service = KubeObject<ServiceSpec>;

export interface EndpointSliceEndpoint {
  addresses: readonly string[];
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  targetRef?: { kind?: string; namespace?: string; name?: string; uid?: string };
  nodeName?: string;
}

export interface EndpointSliceFields {
  addressType?: string;
  endpoints?: readonly EndpointSliceEndpoint[];
  ports?: readonly { name?: string; port?: number; protocol?: string; appProtocol?: string }[];
}

/**
 * EndpointSlice keeps its fields at the top level on the wire; the config store carries them as
 * `spec`. Read them with `endpointSliceFields`, which accepts both.
 */
export type EndpointSlice = KubeObject<EndpointSliceFields> & EndpointSliceFields;

export function endpointSliceFields(slice: EndpointSlice): EndpointSliceFields {
  return slice.spec ?? slice;
}

// ---- networking.istio.io -----------------------------------------------------------------------

export interface WorkloadEntrySpec {
  address?: string;
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  network?: string;
  locality?: string;
  weight?: number;
  serviceAccount?: string;
}

export type WorkloadEntry = KubeObject<WorkloadEntrySpec>;

export interface ServiceEntryPort {
  number: number;
  protocol?: string;
  name?: string;
  targetPort?: number;
}

export interface ServiceEntrySpec {
  hosts?: readonly string[];
  addresses?: readonly string[];
  ports?: readonly ServiceEntryPort[];
  location?: string;
  resolution?: string;
  endpoints?: readonly WorkloadEntrySpec[];
  workloadSelector?: { labels?: Record<string, string> };
  subjectAltNames?: readonly string[];
  exportTo?: readonly string[];
}

export interface ServiceEntryStatus {
  /** Addresses auto-allocated by Istio's IP allocation controller, per host. */
  addresses?: readonly { value: string; host?: string }[];
  readonly [field: string]: unknown;
}

export type ServiceEntry = KubeObject<ServiceEntrySpec, ServiceEntryStatus>;

// ---- gateway.networking.k8s.io ------------------------------------------------------------------

export interface GatewayListener {
  name?: string;
  port: number;
  protocol: string;
  allowedRoutes?: {
    /** `from`: `All`, `Same` (default) or `Selector`. */
    namespaces?: { from?: string; selector?: LabelSelector };
  };
}

export interface GatewaySpec {
  gatewayClassName: string;
  listeners?: readonly GatewayListener[];
}

export interface GatewayStatus {
  addresses?: readonly { type?: string; value: string }[];
}

export type Gateway = KubeObject<GatewaySpec, GatewayStatus>;

export type GatewayClass = KubeObject<{ controllerName?: string }>;

// ---- security.istio.io -------------------------------------------------------------------------

export interface PolicyTargetReference {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface AuthorizationSource {
  principals?: readonly string[];
  notPrincipals?: readonly string[];
  requestPrincipals?: readonly string[];
  notRequestPrincipals?: readonly string[];
  namespaces?: readonly string[];
  notNamespaces?: readonly string[];
  serviceAccounts?: readonly string[];
  notServiceAccounts?: readonly string[];
  ipBlocks?: readonly string[];
  notIpBlocks?: readonly string[];
  remoteIpBlocks?: readonly string[];
  notRemoteIpBlocks?: readonly string[];
}

export interface AuthorizationOperation {
  hosts?: readonly string[];
  notHosts?: readonly string[];
  ports?: readonly string[];
  notPorts?: readonly string[];
  methods?: readonly string[];
  notMethods?: readonly string[];
  paths?: readonly string[];
  notPaths?: readonly string[];
}

export interface AuthorizationCondition {
  key: string;
  values?: readonly string[];
  notValues?: readonly string[];
}

export interface AuthorizationRule {
  from?: readonly { source?: AuthorizationSource }[];
  to?: readonly { operation?: AuthorizationOperation }[];
  when?: readonly AuthorizationCondition[];
}

export interface AuthorizationPolicySpec {
  selector?: { matchLabels?: Record<string, string> };
  targetRef?: PolicyTargetReference;
  targetRefs?: readonly PolicyTargetReference[];
  action?: string;
  rules?: readonly AuthorizationRule[];
  provider?: { name?: string };
}

export type AuthorizationPolicy = KubeObject<AuthorizationPolicySpec>;

export type MtlsMode = "UNSET" | "DISABLE" | "PERMISSIVE" | "STRICT";

export interface PeerAuthenticationSpec {
  selector?: { matchLabels?: Record<string, string> };
  mtls?: { mode?: MtlsMode };
  portLevelMtls?: Record<string, { mode?: MtlsMode }>;
}

export type PeerAuthentication = KubeObject<PeerAuthenticationSpec>;
