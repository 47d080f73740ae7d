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
  ownerReferences?: OwnerReference[];
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
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
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
  containers?: { name?: string; ports?: ContainerPort[] }[];
}

export interface PodStatus {
  phase?: string;
  podIP?: string;
  podIPs?: { ip: string }[];
  conditions?: { type: string; status: string }[];
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
  clusterIPs?: string[];
  ipFamilies?: string[];
  ports?: ServicePort[];
  trafficDistribution?: string;
  internalTrafficPolicy?: string;
  publishNotReadyAddresses?: boolean;
}

export type Service = KubeObject<ServiceSpec>;

export interface EndpointSliceEndpoint {
  addresses: string[];
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  targetRef?: { kind?: string; namespace?: string; name?: string; uid?: string };
  nodeName?: string;
}

/** EndpointSlice keeps its fields at the top level rather than under `spec`. */
export interface EndpointSlice extends KubeObject {
  addressType?: string;
  endpoints?: EndpointSliceEndpoint[];
  ports?: { name?: string; port?: number; protocol?: string; appProtocol?: string }[];
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
  hosts?: string[];
  addresses?: string[];
  ports?: ServiceEntryPort[];
  location?: string;
  resolution?: string;
  endpoints?: WorkloadEntrySpec[];
  workloadSelector?: { labels?: Record<string, string> };
  subjectAltNames?: string[];
  exportTo?: string[];
}

export interface ServiceEntryStatus {
  addresses?: { value: string; host?: string }[];
}

export type ServiceEntry = KubeObject<ServiceEntrySpec, ServiceEntryStatus>;

// ---- gateway.networking.k8s.io ------------------------------------------------------------------

export interface GatewayListener {
  name?: string;
  port: number;
  protocol: string;
  allowedRoutes?: {
    namespaces?: { from?: "All" | "Same" | "Selector"; selector?: LabelSelector };
  };
}

export interface GatewaySpec {
  gatewayClassName: string;
  listeners?: GatewayListener[];
}

export interface GatewayStatus {
  addresses?: { type?: string; value: string }[];
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
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
}

export interface AuthorizationOperation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface AuthorizationCondition {
  key: string;
  values?: string[];
  notValues?: string[];
}

export interface AuthorizationRule {
  from?: { source?: AuthorizationSource }[];
  to?: { operation?: AuthorizationOperation }[];
  when?: AuthorizationCondition[];
}

export interface AuthorizationPolicySpec {
  selector?: { matchLabels?: Record<string, string> };
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  action?: string;
  rules?: AuthorizationRule[];
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
