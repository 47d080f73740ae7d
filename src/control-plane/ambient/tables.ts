/**
 * The tables of the ambient computation: the inputs (one per kind) and the derived collections
 * between them, with the records they hold.
 */
import type { Locality } from "../../lib/gen/istio/workload/workload_pb.ts";
import type {
  AuthorizationPolicy,
  EndpointSlice,
  Gateway,
  GatewayClass,
  Namespace,
  Node,
  ObjectRef,
  PeerAuthentication,
  Pod,
  Service,
  ServiceEntry,
  WorkloadEntry,
} from "../model/index.ts";
import type { Table } from "./krt/index.ts";
import type { RuleNote } from "./authorization.ts";
import type { AddressResource, AuthorizationResource } from "./resources.ts";
import type { ServiceInfo } from "./services.ts";
import type { Waypoint } from "./waypoints.ts";

/** The network of this cluster's workloads (singleton, key `local`). */
export interface NetworkInfo {
  key: "local";
  network: string;
}

/** A node's locality from its topology labels (only locality changes wake workloads). */
export interface NodeLocality {
  key: string;
  locality: Locality | undefined;
  fingerprint: string;
}

/** An AuthorizationPolicy as ztunnel sees it. */
export interface PolicyInfo {
  /** `<namespace>/<name>` */
  key: string;
  namespace: string;
  name: string;
  /** Non-empty `selector.matchLabels`: attached to the workloads it selects. */
  selector: Readonly<Record<string, string>> | undefined;
  /** Sent to ztunnel (undefined when skipped: dry-run, targetRefs, AUDIT/CUSTOM). */
  resource: AuthorizationResource | undefined;
  skipped: string | undefined;
  notes: RuleNote[];
  summary: string | undefined;
  fingerprint: string;
}

/** A generated Authorization (PeerAuthentication-derived, static strict, allow-from-waypoint). */
export interface GeneratedPolicy {
  key: string;
  resource: AuthorizationResource;
  /** The object it comes from, for reports. */
  source: string;
}

export interface WorkloadInfo {
  /** The workload uid (xDS resource name). */
  key: string;
  resource: AddressResource;
  source: ObjectRef;
}

export type Enforcer = "ztunnel" | "waypoint";

/** Who enforces one AuthorizationPolicy, and how faithfully. */
export interface PolicyEnforcement {
  /** `<namespace>/<name>` */
  key: string;
  enforcedBy: Enforcer[];
  /** Waypoints (`<namespace>/<name>`) that must enforce it (targetRefs). */
  waypoints: string[];
  /** GatewayClasses whose waypoints must all enforce it (root-namespace policies). */
  gatewayClasses: string[];
  /** Why a component does not enforce it, or enforces it differently than written. */
  notes: string[];
}

export interface EnforcementInfo extends PolicyEnforcement {
  fingerprint: string;
}

export interface AmbientTables {
  namespaces: Table<Namespace>;
  nodes: Table<Node>;
  pods: Table<Pod>;
  services: Table<Service>;
  endpointSlices: Table<EndpointSlice>;
  serviceEntries: Table<ServiceEntry>;
  workloadEntries: Table<WorkloadEntry>;
  gateways: Table<Gateway>;
  gatewayClasses: Table<GatewayClass>;
  authorizationPolicies: Table<AuthorizationPolicy>;
  peerAuthentications: Table<PeerAuthentication>;

  unit: Table<"mesh">;
  network: Table<NetworkInfo>;
  localities: Table<NodeLocality>;
  waypoints: Table<Waypoint>;
  typedServices: Table<ServiceInfo>;
  hostnames: Table<string>;
  workloadServices: Table<ServiceInfo>;
  policies: Table<PolicyInfo>;
  generatedPolicies: Table<GeneratedPolicy>;
  enforcement: Table<EnforcementInfo>;
  workloads: Table<WorkloadInfo>;
}
