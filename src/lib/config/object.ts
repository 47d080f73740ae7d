/**
 * The typed object model every config source produces. An object keeps what the model layer
 * reads — kind, apiVersion, metadata, spec and (where the system writes one) status — with spec
 * and status typed from the maintained `kubernetes-models` packages, so `obj.kind === "Pod"`
 * narrows `obj.spec` to a PodSpec. Stored objects are deeply frozen: treat them as values.
 */
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IEndpointSlice } from "kubernetes-models/discovery.k8s.io/v1/EndpointSlice";
import type { INamespace } from "kubernetes-models/v1/Namespace";
import type { INode } from "kubernetes-models/v1/Node";
import type { IPod } from "kubernetes-models/v1/Pod";
import type { IService } from "kubernetes-models/v1/Service";
import type { IServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import type { IAuthorizationPolicy } from "@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy";
import type { IPeerAuthentication } from "@kubernetes-models/istio/security.istio.io/v1/PeerAuthentication";
import type { IRequestAuthentication } from "@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication";
import type { IDestinationRule } from "@kubernetes-models/istio/networking.istio.io/v1/DestinationRule";
import type { IServiceEntry } from "@kubernetes-models/istio/networking.istio.io/v1/ServiceEntry";
import type { IVirtualService } from "@kubernetes-models/istio/networking.istio.io/v1/VirtualService";
import type { IWorkloadEntry } from "@kubernetes-models/istio/networking.istio.io/v1/WorkloadEntry";
import type { ITelemetry } from "@kubernetes-models/istio/telemetry.istio.io/v1/Telemetry";
import type { IGateway } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway";
import type { IGatewayClass } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GatewayClass";
import type { IGRPCRoute } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GRPCRoute";
import type { IHTTPRoute } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute";
import type { ITCPRoute } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/TCPRoute";
import type { Kind } from "./kinds.ts";

export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [P in keyof T]: DeepReadonly<T[P]> }
    : T;

type Spec<T extends { spec?: unknown }> = NonNullable<T["spec"]>;
type Status<T extends { status?: unknown }> = NonNullable<T["status"]>;

/** Spec and status types per kind (v1 shapes; older versions of a kind share them). */
export interface KindTypes {
  Namespace: { spec: Spec<INamespace>; status: Status<INamespace> };
  Pod: { spec: Spec<IPod>; status: Status<IPod> };
  Deployment: { spec: Spec<IDeployment>; status: Status<IDeployment> };
  Service: { spec: Spec<IService>; status: Status<IService> };
  /** EndpointSlice has no `spec` on the wire: its top-level fields are carried here. */
  EndpointSlice: {
    spec: Pick<IEndpointSlice, "addressType" | "endpoints" | "ports">;
    status: never;
  };
  /** ServiceAccount has no `spec` on the wire: its top-level fields are carried here. */
  ServiceAccount: {
    spec: Pick<IServiceAccount, "automountServiceAccountToken" | "imagePullSecrets" | "secrets">;
    status: never;
  };
  Node: { spec: Spec<INode>; status: Status<INode> };
  AuthorizationPolicy: {
    spec: Spec<IAuthorizationPolicy>;
    status: Status<IAuthorizationPolicy>;
  };
  PeerAuthentication: { spec: Spec<IPeerAuthentication>; status: Status<IPeerAuthentication> };
  RequestAuthentication: {
    spec: Spec<IRequestAuthentication>;
    status: Status<IRequestAuthentication>;
  };
  ServiceEntry: { spec: Spec<IServiceEntry>; status: Status<IServiceEntry> };
  WorkloadEntry: { spec: Spec<IWorkloadEntry>; status: Status<IWorkloadEntry> };
  VirtualService: { spec: Spec<IVirtualService>; status: Status<IVirtualService> };
  DestinationRule: { spec: Spec<IDestinationRule>; status: Status<IDestinationRule> };
  Telemetry: { spec: Spec<ITelemetry>; status: Status<ITelemetry> };
  Gateway: { spec: Spec<IGateway>; status: Status<IGateway> };
  GatewayClass: { spec: Spec<IGatewayClass>; status: Status<IGatewayClass> };
  HTTPRoute: { spec: Spec<IHTTPRoute>; status: Status<IHTTPRoute> };
  GRPCRoute: { spec: Spec<IGRPCRoute>; status: Status<IGRPCRoute> };
  TCPRoute: { spec: Spec<ITCPRoute>; status: Status<ITCPRoute> };
}

export type SpecOf<K extends Kind> = DeepReadonly<KindTypes[K]["spec"]>;
export type StatusOf<K extends Kind> = DeepReadonly<KindTypes[K]["status"]>;

export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
  readonly controller?: boolean;
  readonly blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  readonly name: string;
  /** The namespace; "" for cluster-scoped kinds. Namespaced kinds default to "default". */
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly uid: string;
  /** Opaque; changes on every write (spec, metadata or status). */
  readonly resourceVersion: string;
  /** Bumped when the spec changes (0 where the API server does not track it). */
  readonly generation: number;
  /** RFC 3339 timestamp. */
  readonly creationTimestamp: string;
  readonly ownerReferences: readonly OwnerReference[];
  /** Set while the object is being deleted (Kubernetes finalizers). */
  readonly deletionTimestamp?: string;
}

/** One stored object of kind K. */
export interface StoredObject<K extends Kind> {
  readonly kind: K;
  /** The apiVersion the object was written with (e.g. `security.istio.io/v1beta1`). */
  readonly apiVersion: string;
  readonly metadata: ObjectMeta;
  readonly spec: SpecOf<K>;
  readonly status?: StatusOf<K>;
}

/** A stored object; a union over kinds, so checking `kind` narrows spec and status. */
export type ConfigObject<K extends Kind = Kind> = { [P in K]: StoredObject<P> }[K];

/** `kind/namespace/name`, or `kind/name` for cluster-scoped kinds. */
export type ObjectKey = string;

export function objectKey(kind: Kind, namespace: string, name: string): ObjectKey {
  return namespace === "" ? `${kind}/${name}` : `${kind}/${namespace}/${name}`;
}

export function keyOf(obj: {
  readonly kind: Kind;
  readonly metadata: { readonly namespace: string; readonly name: string };
}): ObjectKey {
  return objectKey(obj.kind, obj.metadata.namespace, obj.metadata.name);
}

/** The parts of a key; `undefined` when it is not `kind/name` or `kind/namespace/name`. */
export function parseKey(
  key: string,
): { kind: string; namespace: string; name: string } | undefined {
  const parts = key.split("/");
  if (parts.length === 2 && parts[0] && parts[1]) {
    return { kind: parts[0], namespace: "", name: parts[1] };
  }
  if (parts.length === 3 && parts[0] && parts[1] && parts[2]) {
    return { kind: parts[0], namespace: parts[1], name: parts[2] };
  }
  return undefined;
}

/** Freezes a plain JSON value and everything under it. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Structural equality of two JSON values (key order does not matter). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ak = Object.keys(a);
  const bk = Object.keys(b);
  if (ak.length !== bk.length) return false;
  const bo = b as Record<string, unknown>;
  const ao = a as Record<string, unknown>;
  for (const k of ak) {
    if (!Object.hasOwn(bo, k) || !jsonEqual(ao[k], bo[k])) return false;
  }
  return true;
}
