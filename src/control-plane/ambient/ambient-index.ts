/**
 * The ambient index: user objects in, ztunnel's `Address` and `Authorization` resources out,
 * kept up to date incrementally. `apply` takes config changes and returns exactly the resources
 * that changed (by content hash), rebuilding only what read the changed objects.
 */
import { create } from "@bufbuild/protobuf";
import { LocalitySchema } from "../../lib/gen/istio/workload/workload_pb.ts";
import type { ConfigBatch } from "../../lib/config/index.ts";
import {
  ambientEnrollment,
  changesFromBatch,
  diffSnapshots,
  label,
  objectKey,
  resourceKindOf,
  snapshotOf,
} from "../model/index.ts";
import type {
  ConfigChange,
  EndpointSlice,
  Enrollment,
  KubeObject,
  PeerAuthentication,
  Pod,
  ResourceKind,
  Snapshot,
} from "../model/index.ts";
import { convertAuthorizationPolicy } from "./authorization.ts";
import { policyEnforcement } from "./enforcement.ts";
import { Graph, Table } from "./krt/index.ts";
import type { Ctx, Report } from "./krt/index.ts";
import { ambientOptions } from "./options.ts";
import type { AmbientOptions } from "./options.ts";
import { convertPeerAuthentication, oldest, staticStrictPolicy } from "./peer-authentication.ts";
import { authorizationResource } from "./resources.ts";
import type { AddressResource, AuthorizationResource } from "./resources.ts";
import { kubeServiceInfo, selectServices, serviceEntryInfos } from "./services.ts";
import type { ServiceContext, ServiceInfo } from "./services.ts";
import type {
  AmbientTables,
  EnforcementInfo,
  GeneratedPolicy,
  NetworkInfo,
  NodeLocality,
  PolicyEnforcement,
  PolicyInfo,
  WorkloadInfo,
} from "./tables.ts";
import { buildWaypoint, podsByGatewayIndex, waypointForService } from "./waypoints.ts";
import type { Waypoint } from "./waypoints.ts";
import { implicitWaypointPolicy } from "./workload-policies.ts";
import {
  endpointSliceWorkloads,
  podWorkload,
  serviceEntryWorkloads,
  slicePodTargets,
  workloadEntryWorkload,
} from "./workloads.ts";

export interface ResourceDelta<R> {
  /** Added or changed resources, by name. */
  updated: R[];
  /** Names of removed resources. */
  removed: string[];
}

export interface AmbientDelta {
  addresses: ResourceDelta<AddressResource>;
  authorizations: ResourceDelta<AuthorizationResource>;
  /** How many objects each derived collection rebuilt (for measurements and tests). */
  builds: Record<string, number>;
}

export interface AmbientState {
  addresses: AddressResource[];
  authorizations: AuthorizationResource[];
  enforcement: PolicyEnforcement[];
  reports: Report[];
}

function byName<R extends { name: string }>(a: R, b: R): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export class AmbientIndex {
  readonly options: AmbientOptions;
  private readonly graph = new Graph();
  private readonly t: AmbientTables;
  private readonly inputs: Map<ResourceKind, Table<KubeObject>>;
  private readonly publishedAddresses = new Map<string, string>();
  /** alias (`<network>/<ip>`) → names of the published Address resources carrying it. */
  private readonly aliases = new Map<string, Set<string>>();
  private readonly aliasesOf = new Map<string, readonly string[]>();
  private readonly publishedAuthorizations = new Map<string, string>();

  constructor(options: Partial<AmbientOptions> = {}) {
    this.options = ambientOptions(options);
    const opts = this.options;
    const t = createTables();
    this.t = t;
    this.inputs = new Map<ResourceKind, Table<KubeObject>>([
      ["Namespace", t.namespaces],
      ["Node", t.nodes],
      ["Pod", t.pods],
      ["Service", t.services],
      ["EndpointSlice", t.endpointSlices],
      ["ServiceEntry", t.serviceEntries],
      ["WorkloadEntry", t.workloadEntries],
      ["Gateway", t.gateways],
      ["GatewayClass", t.gatewayClasses],
      ["AuthorizationPolicy", t.authorizationPolicies],
      ["PeerAuthentication", t.peerAuthentications],
    ] as [ResourceKind, Table<KubeObject>][]);
    const g = this.graph;

    g.derive<"mesh", NetworkInfo>({
      name: "Network",
      input: t.unit,
      output: t.network,
      build: (ctx) => {
        const ns = ctx.get(t.namespaces, opts.systemNamespace);
        return [{ key: "local", network: ns?.metadata.labels?.[label.network] ?? opts.network }];
      },
      keyOf: (n) => n.key,
      equals: (a, b) => a.network === b.network,
    });
    g.derive({
      name: "NodeLocality",
      input: t.nodes,
      output: t.localities,
      build: (_ctx, node, key): NodeLocality[] => {
        const labels = node.metadata.labels ?? {};
        const region = labels[label.region] ?? "";
        const zone = labels[label.zone] ?? "";
        const subzone = labels[label.subzone] ?? "";
        const has = region !== "" || zone !== "" || subzone !== "";
        return [
          {
            key,
            locality: has ? create(LocalitySchema, { region, zone, subzone }) : undefined,
            fingerprint: JSON.stringify([region, zone, subzone]),
          },
        ];
      },
      keyOf: (n) => n.key,
      equals: (a, b) => a.fingerprint === b.fingerprint,
    });
    g.derive({
      name: "Waypoints",
      input: t.gateways,
      output: t.waypoints,
      build: (ctx, gw): Waypoint[] => {
        const network = ctx.get(t.network, "local")?.network ?? opts.network;
        const w = buildWaypoint(ctx, gw, t, network);
        return w === undefined ? [] : [w];
      },
      keyOf: (w) => w.key,
      equals: (a, b) => a.fingerprint === b.fingerprint,
    });
    g.derive({
      name: "ServiceInfos",
      input: t.services,
      output: t.typedServices,
      build: (ctx, svc): ServiceInfo[] => {
        const where = `Service/${svc.metadata.namespace ?? ""}/${svc.metadata.name}`;
        const info = kubeServiceInfo(svc, serviceContext(ctx, t, opts, where, svc.metadata));
        return info === undefined ? [] : [info];
      },
      keyOf: (s) => s.typedKey,
      equals: (a, b) => a.fingerprint === b.fingerprint,
    });
    g.derive({
      name: "ServiceEntryInfos",
      input: t.serviceEntries,
      output: t.typedServices,
      build: (ctx, se): ServiceInfo[] => {
        const where = `ServiceEntry/${se.metadata.namespace ?? ""}/${se.metadata.name}`;
        return serviceEntryInfos(se, serviceContext(ctx, t, opts, where, se.metadata));
      },
      keyOf: (s) => s.typedKey,
      equals: (a, b) => a.fingerprint === b.fingerprint,
    });
    g.derive({
      name: "WorkloadServices",
      input: t.hostnames,
      output: t.workloadServices,
      build: (ctx, hostname): ServiceInfo[] => {
        const candidates = ctx.index(t.typedServices, "hostname", hostname);
        candidates.sort((a, b) => (a.typedKey < b.typedKey ? -1 : a.typedKey > b.typedKey ? 1 : 0));
        return selectServices(candidates);
      },
      keyOf: (s) => s.key,
      equals: (a, b) => a.fingerprint === b.fingerprint,
    });
    g.derive({
      name: "AuthorizationPolicies",
      input: t.authorizationPolicies,
      output: t.policies,
      build: (ctx, ap, key): PolicyInfo[] => {
        const converted = convertAuthorizationPolicy(ap, opts.rootNamespace);
        const where = `AuthorizationPolicy/${key}`;
        for (const w of converted.warnings) ctx.report("warning", where, w);
        for (const n of converted.notes)
          ctx.report(n.effect === "stripped" ? "info" : "warning", where, n.message);
        if (converted.summary !== undefined) ctx.report("info", where, converted.summary);
        const resource =
          converted.authorization === undefined
            ? undefined
            : authorizationResource(converted.authorization);
        const matchLabels = ap.spec?.selector?.matchLabels;
        const selector =
          matchLabels !== undefined && Object.keys(matchLabels).length > 0
            ? matchLabels
            : undefined;
        return [
          {
            key,
            namespace: ap.metadata.namespace ?? "",
            name: ap.metadata.name,
            selector,
            resource,
            skipped: converted.skipped,
            notes: converted.notes,
            summary: converted.summary,
            fingerprint: JSON.stringify([
              resource?.version ?? null,
              selector ?? null,
              converted.skipped ?? null,
              converted.notes,
              converted.summary ?? null,
            ]),
          },
        ];
      },
      keyOf: (p) => p.key,
      equals: (a, b) => a.fingerprint === b.fingerprint,
    });
    g.derive({
      name: "PeerAuthenticationPolicies",
      input: t.peerAuthentications,
      output: t.generatedPolicies,
      build: (ctx, pa, key): GeneratedPolicy[] => {
        const ns = pa.metadata.namespace ?? "";
        const namespaceWide = (p: PeerAuthentication) => p.spec?.selector === undefined;
        // Only selector policies with port-level settings outside the root namespace convert.
        if (ns === opts.rootNamespace || pa.spec?.selector === undefined) return [];
        if (Object.keys(pa.spec.portLevelMtls ?? {}).length === 0) return [];
        const nsPolicy = oldest(ctx.index(t.peerAuthentications, "namespace", ns, namespaceWide));
        const rootPolicy = oldest(
          ctx.index(t.peerAuthentications, "namespace", opts.rootNamespace, namespaceWide),
        );
        const auth = convertPeerAuthentication(pa, opts.rootNamespace, nsPolicy, rootPolicy, (m) =>
          ctx.report("warning", `PeerAuthentication/${key}`, m),
        );
        if (auth === undefined) return [];
        const resource = authorizationResource(auth);
        return [{ key: resource.name, resource, source: `PeerAuthentication/${key}` }];
      },
      keyOf: (p) => p.key,
      equals: (a, b) => a.resource.version === b.resource.version,
    });
    g.derive({
      name: "StaticStrictPolicy",
      input: t.unit,
      output: t.generatedPolicies,
      build: (ctx): GeneratedPolicy[] => {
        // istiod sends the static STRICT policy as soon as any PeerAuthentication exists.
        if (ctx.all(t.peerAuthentications).length === 0) return [];
        const resource = authorizationResource(staticStrictPolicy(opts.rootNamespace));
        return [{ key: resource.name, resource, source: "PeerAuthentication/*" }];
      },
      keyOf: (p) => p.key,
      equals: (a, b) => a.resource.version === b.resource.version,
    });
    g.derive({
      name: "AllowFromWaypointPolicies",
      input: t.waypoints,
      output: t.generatedPolicies,
      build: (_ctx, w): GeneratedPolicy[] => {
        if (!opts.defaultAllowFromWaypoint || w.serviceAccounts.length === 0) return [];
        const resource = authorizationResource(implicitWaypointPolicy(w, opts.trustDomain));
        return [{ key: resource.name, resource, source: `Gateway/${w.key}` }];
      },
      keyOf: (p) => p.key,
      equals: (a, b) => a.resource.version === b.resource.version,
    });
    g.derive({
      name: "PolicyEnforcement",
      input: t.authorizationPolicies,
      output: t.enforcement,
      build: (ctx, ap) => [policyEnforcement(ctx, ap, t, opts)],
      keyOf: (e) => e.key,
      equals: (a, b) => a.fingerprint === b.fingerprint,
    });
    const workloadEquals = (a: WorkloadInfo, b: WorkloadInfo) =>
      a.resource.version === b.resource.version;
    g.derive({
      name: "PodWorkloads",
      input: t.pods,
      output: t.workloads,
      build: (ctx, pod) => podWorkload(ctx, pod, t, opts),
      keyOf: (w) => w.key,
      equals: workloadEquals,
    });
    g.derive({
      name: "WorkloadEntryWorkloads",
      input: t.workloadEntries,
      output: t.workloads,
      build: (ctx, we) => workloadEntryWorkload(ctx, we, t, opts),
      keyOf: (w) => w.key,
      equals: workloadEquals,
    });
    g.derive({
      name: "ServiceEntryWorkloads",
      input: t.serviceEntries,
      output: t.workloads,
      build: (ctx, se) => serviceEntryWorkloads(ctx, se, t, opts),
      keyOf: (w) => w.key,
      equals: workloadEquals,
    });
    g.derive({
      name: "EndpointSliceWorkloads",
      input: t.endpointSlices,
      output: t.workloads,
      build: (ctx, slice) => endpointSliceWorkloads(ctx, slice, t, opts),
      keyOf: (w) => w.key,
      equals: workloadEquals,
    });
    t.unit.write("mesh", "mesh");
  }

  /** Applies config changes and returns the resources that changed as a result. */
  apply(changes: Iterable<ConfigChange>): AmbientDelta {
    for (const change of changes) {
      if (change.op === "delete") {
        this.inputs.get(change.kind)?.write(change.key, undefined);
        continue;
      }
      const kind = resourceKindOf(change.object);
      if (kind === undefined) continue;
      const table = this.inputs.get(kind);
      if (table === undefined) continue;
      const key = objectKey(kind, change.object.metadata);
      const prev = table.get(key);
      if (prev !== undefined && sameContent(prev, change.object)) continue;
      table.write(key, change.object);
    }
    const builds = Object.fromEntries(this.graph.flush());
    return { ...this.collectDelta(), builds };
  }

  /** Applies a config store batch (see `lib/config`). */
  applyBatch(batch: ConfigBatch): AmbientDelta {
    return this.apply(changesFromBatch(batch));
  }

  /** Makes the index hold exactly `snapshot`, returning what changed. */
  replace(snapshot: Snapshot): AmbientDelta {
    return this.apply(diffSnapshots(this.currentSnapshot(), snapshot));
  }

  /** All current Address resources, sorted by name. */
  addresses(): AddressResource[] {
    const out: AddressResource[] = [];
    for (const w of this.t.workloads.values()) out.push(w.resource);
    for (const s of this.t.workloadServices.values()) out.push(s.resource);
    return out.sort(byName);
  }

  /**
   * The Address resources for one on-demand key (INTEROP §3.3): a workload uid, a
   * `<namespace>/<hostname>`, or an alias `<network>/<ip>` (every workload and service with
   * that address). Sorted by name; empty when nothing matches.
   */
  lookupAddresses(key: string): AddressResource[] {
    const direct =
      this.t.workloads.get(key)?.resource ?? this.t.workloadServices.get(key)?.resource;
    if (direct !== undefined) return [direct];
    const out: AddressResource[] = [];
    for (const name of this.aliases.get(key) ?? []) {
      const r = this.t.workloads.get(name)?.resource ?? this.t.workloadServices.get(name)?.resource;
      if (r !== undefined) out.push(r);
    }
    return out.sort(byName);
  }

  /** All current Authorization resources, sorted by name. */
  authorizations(): AuthorizationResource[] {
    const out: AuthorizationResource[] = [];
    for (const p of this.t.policies.values()) if (p.resource !== undefined) out.push(p.resource);
    for (const p of this.t.generatedPolicies.values()) out.push(p.resource);
    return out.sort(byName);
  }

  /** Who enforces each AuthorizationPolicy, sorted by `<namespace>/<name>`. */
  enforcement(): PolicyEnforcement[] {
    return [...this.t.enforcement.values()]
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map(publicEnforcement);
  }

  policyEnforcement(namespace: string, name: string): PolicyEnforcement | undefined {
    const e = this.t.enforcement.get(`${namespace}/${name}`);
    return e === undefined ? undefined : publicEnforcement(e);
  }

  /** Conversion warnings and errors per object, sorted by object then message. */
  reports(): Report[] {
    return this.graph
      .reports()
      .sort((a, b) =>
        a.object < b.object
          ? -1
          : a.object > b.object
            ? 1
            : a.message < b.message
              ? -1
              : a.message > b.message
                ? 1
                : 0,
      );
  }

  /** Whether the node agent should capture this pod (see `ambientEnrollment`). */
  enrollment(namespace: string, name: string): Enrollment | undefined {
    const pod = this.t.pods.get(`${namespace}/${name}`);
    if (pod === undefined) return undefined;
    return ambientEnrollment(pod, this.t.namespaces.get(namespace), this.options.systemNamespace);
  }

  /** The current input objects. */
  currentSnapshot(): Snapshot {
    const out = new Map<ResourceKind, Map<string, KubeObject>>();
    for (const [kind, table] of this.inputs) out.set(kind, new Map(table.entries()));
    return out;
  }

  /** Table sizes and dependency edges (for measurements). */
  stats(): Record<string, { items: number; watchers: number }> {
    const out: Record<string, { items: number; watchers: number }> = {};
    for (const [name, table] of Object.entries(this.t) as [string, Table<unknown>][]) {
      out[name] = { items: table.size, watchers: table.watcherCount() };
    }
    return out;
  }

  private indexAliases(name: string, resource: AddressResource | undefined): void {
    for (const a of this.aliasesOf.get(name) ?? []) {
      const names = this.aliases.get(a);
      names?.delete(name);
      if (names?.size === 0) this.aliases.delete(a);
    }
    if (resource === undefined || resource.aliases.length === 0) {
      this.aliasesOf.delete(name);
      return;
    }
    this.aliasesOf.set(name, resource.aliases);
    for (const a of resource.aliases) {
      let names = this.aliases.get(a);
      if (names === undefined) {
        names = new Set();
        this.aliases.set(a, names);
      }
      names.add(name);
    }
  }

  private collectDelta(): Omit<AmbientDelta, "builds"> {
    const addresses: ResourceDelta<AddressResource> = { updated: [], removed: [] };
    const authorizations: ResourceDelta<AuthorizationResource> = { updated: [], removed: [] };
    const publish = <R extends { name: string; version: string }>(
      published: Map<string, string>,
      delta: ResourceDelta<R>,
      name: string,
      resource: R | undefined,
    ) => {
      if (resource === undefined) {
        if (published.delete(name)) delta.removed.push(name);
        return;
      }
      if (published.get(name) === resource.version) return;
      published.set(name, resource.version);
      delta.updated.push(resource);
    };
    for (const k of this.t.workloads.drainChanges()) {
      const r = this.t.workloads.get(k)?.resource;
      publish(this.publishedAddresses, addresses, k, r);
      this.indexAliases(k, r);
    }
    for (const k of this.t.workloadServices.drainChanges()) {
      const r = this.t.workloadServices.get(k)?.resource;
      publish(this.publishedAddresses, addresses, k, r);
      this.indexAliases(k, r);
    }
    for (const k of this.t.policies.drainChanges()) {
      publish(this.publishedAuthorizations, authorizations, k, this.t.policies.get(k)?.resource);
    }
    for (const k of this.t.generatedPolicies.drainChanges()) {
      publish(
        this.publishedAuthorizations,
        authorizations,
        k,
        this.t.generatedPolicies.get(k)?.resource,
      );
    }
    addresses.updated.sort(byName);
    addresses.removed.sort();
    authorizations.updated.sort(byName);
    authorizations.removed.sort();
    return { addresses, authorizations };
  }
}

/** What a Service or ServiceEntry conversion needs from its surroundings. */
function serviceContext(
  ctx: Ctx,
  t: AmbientTables,
  opts: AmbientOptions,
  where: string,
  meta: KubeObject["metadata"],
): ServiceContext {
  const namespace = meta.namespace ?? "";
  const nsObj = ctx.get(t.namespaces, namespace);
  const network = ctx.get(t.network, "local")?.network ?? opts.network;
  const binding = waypointForService(ctx, t, meta);
  if (binding.error !== undefined) ctx.report("warning", where, binding.error);
  if (binding.waypoint !== undefined && binding.waypoint.address === undefined) {
    ctx.report(
      "warning",
      where,
      `waypoint ${binding.waypoint.key} has no usable address; ztunnel sends this service's traffic directly`,
    );
  }
  return {
    domainSuffix: opts.domainSuffix,
    network,
    namespaceLabels: nsObj?.metadata.labels ?? {},
    namespaceAnnotations: nsObj?.metadata.annotations ?? {},
    waypoint: {
      key: binding.waypoint?.key,
      address: binding.waypoint?.address,
      error: binding.error,
    },
    warn: (m: string) => ctx.report("warning", where, m),
  };
}

function publicEnforcement(e: EnforcementInfo): PolicyEnforcement {
  return {
    key: e.key,
    enforcedBy: e.enforcedBy,
    waypoints: e.waypoints,
    gatewayClasses: e.gatewayClasses,
    notes: e.notes,
  };
}

function sameContent(a: KubeObject, b: KubeObject): boolean {
  if (a === b) return true;
  const ra = a.metadata.resourceVersion;
  if (ra !== undefined && ra !== "" && ra === b.metadata.resourceVersion) return true;
  return JSON.stringify(a) === JSON.stringify(b);
}

function createTables(): AmbientTables {
  const t: AmbientTables = {
    namespaces: new Table("Namespaces"),
    nodes: new Table("Nodes"),
    pods: new Table<Pod>("Pods").addIndex(podsByGatewayIndex, (p) => {
      const gw = p.metadata.labels?.[label.gatewayName];
      return gw === undefined || gw === "" ? [] : [`${p.metadata.namespace ?? ""}/${gw}`];
    }),
    services: new Table("Services"),
    endpointSlices: new Table<EndpointSlice>("EndpointSlices").addIndex(
      "podTarget",
      slicePodTargets,
    ),
    serviceEntries: new Table("ServiceEntries"),
    workloadEntries: new Table("WorkloadEntries"),
    gateways: new Table("Gateways"),
    gatewayClasses: new Table("GatewayClasses"),
    authorizationPolicies: new Table("AuthorizationPolicies"),
    peerAuthentications: new Table<PeerAuthentication>("PeerAuthentications").addIndex(
      "namespace",
      (p) => [p.metadata.namespace ?? ""],
    ),
    unit: new Table("Unit"),
    network: new Table("Network"),
    localities: new Table("NodeLocalities"),
    waypoints: new Table("Waypoints"),
    typedServices: new Table<ServiceInfo>("TypedServiceInfos").addIndex("hostname", (s) => [
      s.service.hostname,
    ]),
    hostnames: new Table("Hostnames"),
    workloadServices: new Table<ServiceInfo>("WorkloadServices")
      .addIndex("namespace", (s) => [s.service.namespace])
      .trackChanges(),
    policies: new Table<PolicyInfo>("Policies")
      .addIndex("namespace", (p) => [p.namespace])
      .trackChanges(),
    generatedPolicies: new Table<GeneratedPolicy>("GeneratedPolicies").trackChanges(),
    enforcement: new Table("PolicyEnforcement"),
    workloads: new Table<WorkloadInfo>("Workloads").trackChanges(),
  };
  t.hostnames = t.typedServices.indexKeys("hostname");
  return t;
}

/** Pure conversion of a whole snapshot (what `AmbientIndex` holds after applying it). */
export function computeAmbient(
  objects: Snapshot | Iterable<KubeObject>,
  options: Partial<AmbientOptions> = {},
): AmbientState {
  const snapshot =
    objects instanceof Map
      ? (objects as Snapshot)
      : snapshotOf(objects as Iterable<KubeObject>).snapshot;
  const index = new AmbientIndex(options);
  index.replace(snapshot);
  return {
    addresses: index.addresses(),
    authorizations: index.authorizations(),
    enforcement: index.enforcement(),
    reports: index.reports(),
  };
}
