/**
 * Pods, WorkloadEntries, ServiceEntry endpoints and manual EndpointSlice endpoints →
 * `istio.workload.Workload` (istiod `workloads.go`). Every running pod with an IP is a workload,
 * enrolled or not: enrollment only shows as `tunnel_protocol` (HBONE once the node agent has
 * annotated the pod `ambient.istio.io/redirection: enabled`).
 */
import { create } from "@bufbuild/protobuf";
import {
  ApplicationTunnelSchema,
  LocalitySchema,
  NetworkMode,
  PortListSchema,
  PortSchema,
  TunnelProtocol,
  WorkloadSchema,
  WorkloadStatus,
  WorkloadType,
} from "../../lib/gen/istio/workload/workload_pb.ts";
import type {
  ApplicationTunnel,
  Locality,
  Port,
  PortList,
  Service,
  Workload,
} from "../../lib/gen/istio/workload/workload_pb.ts";
import {
  annotation,
  canonicalService,
  endpointSliceFields,
  formatRef,
  label,
  parseIp,
  podServiceAccount,
  value,
  workloadNameOfWorkloadEntry,
  workloadOwnerOfPod,
} from "../model/index.ts";
import type {
  EndpointSlice,
  ObjectMeta,
  ObjectRef,
  Pod,
  ServiceEntry,
  WorkloadEntry,
  WorkloadEntrySpec,
} from "../model/index.ts";
import type { Ctx } from "./krt/index.ts";
import type { AmbientOptions } from "./options.ts";
import { workloadResource } from "./resources.ts";
import type { PortName, ServiceInfo } from "./services.ts";
import { serviceEntryServices, serviceSelects } from "./services.ts";
import type { AmbientTables, WorkloadInfo } from "./tables.ts";
import { waypointForWorkload, waypointInstanceOf } from "./waypoints.ts";
import type { Waypoint } from "./waypoints.ts";
import { implicitWaypointPolicies, workloadPolicies } from "./workload-policies.ts";

type Labels = Readonly<Record<string, string>>;

/** Endpoint slices index: `<namespace>/<name>/<uid>` of the pods their endpoints target. */
export const slicesByPodIndex = "podTarget";

export function slicePodTargets(slice: EndpointSlice): string[] {
  const fields = endpointSliceFields(slice);
  if (fields.addressType === "FQDN") return [];
  if (slice.metadata.labels?.[label.serviceName] === undefined) return [];
  const out: string[] = [];
  for (const ep of fields.endpoints ?? []) {
    const ref = ep.targetRef;
    if (ref?.kind !== "Pod") continue;
    out.push(
      `${ref.namespace ?? slice.metadata.namespace ?? ""}/${ref.name ?? ""}/${ref.uid ?? ""}`,
    );
  }
  return out;
}

function networkOf(ctx: Ctx, t: AmbientTables, opts: AmbientOptions): string {
  return ctx.get(t.network, "local")?.network ?? opts.network;
}

function trustDomainOf(opts: AmbientOptions): string {
  // ztunnel reads an empty trust domain as cluster.local.
  return opts.trustDomain === "cluster.local" ? "" : opts.trustDomain;
}

/** `setTunnelProtocol`: HBONE when captured by the node agent, or when the workload speaks it natively. */
function setTunnelProtocol(labels: Labels, annotations: Labels, w: Workload): void {
  if (annotations[annotation.redirection] === value.redirectionEnabled)
    w.tunnelProtocol = TunnelProtocol.HBONE;
  const tunnel = labels[label.tunnel];
  if (tunnel !== undefined && tunnel.split(",").includes(value.tunnelHttp)) {
    w.tunnelProtocol = TunnelProtocol.HBONE;
    w.nativeTunnel = true;
  }
}

interface WaypointChoice {
  appTunnel: ApplicationTunnel | undefined;
  waypoint: Waypoint | undefined;
}

/** `computeWaypoint`: a waypoint's own instances get its inbound binding and no waypoint. */
function computeWaypoint(
  ctx: Ctx,
  t: AmbientTables,
  meta: Pick<ObjectMeta, "labels" | "namespace">,
  where: string,
): WaypointChoice {
  const instanceOf = waypointInstanceOf(ctx, t.waypoints, meta);
  if (instanceOf !== undefined) {
    const b = instanceOf.defaultBinding;
    return {
      appTunnel:
        b === undefined
          ? undefined
          : create(ApplicationTunnelSchema, { protocol: b.protocol, port: b.port }),
      waypoint: undefined,
    };
  }
  const binding = waypointForWorkload(ctx, t, meta);
  if (binding.error !== undefined) ctx.report("warning", where, binding.error);
  if (binding.waypoint !== undefined && binding.waypoint.address === undefined) {
    ctx.report(
      "warning",
      where,
      `waypoint ${binding.waypoint.key} has no usable address; ztunnel sends this workload's traffic directly`,
    );
  }
  return { appTunnel: undefined, waypoint: binding.waypoint };
}

function finishWorkload(w: Workload, choice: WaypointChoice, source: ObjectRef): WorkloadInfo {
  if (choice.waypoint?.address !== undefined) w.waypoint = choice.waypoint.address;
  if (choice.appTunnel !== undefined) w.applicationTunnel = choice.appTunnel;
  return { key: w.uid, resource: workloadResource(w), source };
}

function sortedServices(services: ServiceInfo[]): ServiceInfo[] {
  return services.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The TCP container port named `name`. */
function findPortName(pod: Pod, name: string): number | undefined {
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (p.name === name && (p.protocol ?? "TCP") === "TCP") return p.containerPort;
    }
  }
  return undefined;
}

function portList(ports: Port[]): PortList {
  return create(PortListSchema, { ports });
}

/** Map entries inserted in key order, so equal content always encodes to equal bytes. */
function sortedRecord<V>(entries: [string, V][]): Record<string, V> {
  const out: Record<string, V> = {};
  if (entries.length > 1) entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (const [k, v] of entries) out[k] = v;
  return out;
}

/** `constructServices`: per selecting service, its ports with named target ports resolved on this pod. */
function podServices(pod: Pod, services: readonly ServiceInfo[]): Record<string, PortList> {
  const out: [string, PortList][] = [];
  for (const svc of services) {
    const ports: Port[] = [];
    for (const p of svc.service.ports) {
      let target = p.targetPort;
      const named = svc.portNames[p.servicePort];
      if (named !== undefined && named.targetPortName !== "") {
        const found = findPortName(pod, named.targetPortName);
        // The pod does not expose this named port: leave the port out for this workload.
        if (found === undefined) continue;
        target = found;
      }
      ports.push(create(PortSchema, { servicePort: p.servicePort, targetPort: target }));
    }
    out.push([`${svc.service.namespace}/${svc.service.hostname}`, portList(ports)]);
  }
  return sortedRecord(out);
}

interface EntryService {
  service: Service;
  portNames: Readonly<Record<number, PortName>>;
  kind: "Service" | "ServiceEntry";
}

/** `constructServicesFromWorkloadEntry`: WorkloadEntry `ports` override target ports by name. */
function entryServices(
  entry: WorkloadEntrySpec,
  services: readonly EntryService[],
): Record<string, PortList> {
  const out: [string, PortList][] = [];
  for (const svc of services) {
    const ports: Port[] = [];
    for (const p of svc.service.ports) {
      let target = p.targetPort;
      const named = svc.portNames[p.servicePort];
      if (svc.kind === "Service") {
        // A Service's named targetPort must be in the entry's ports, else the port is left out.
        if (named !== undefined && named.targetPortName !== "") {
          const v = entry.ports?.[named.targetPortName];
          if (v === undefined) continue;
          target = v;
        }
      } else if (named !== undefined) {
        // ServiceEntry ports match entry ports by port name.
        const v = entry.ports?.[named.portName];
        if (v !== undefined) target = v;
        else if (target === 0) target = p.servicePort;
      }
      ports.push(create(PortSchema, { servicePort: p.servicePort, targetPort: target }));
    }
    out.push([`${svc.service.namespace}/${svc.service.hostname}`, portList(ports)]);
  }
  return sortedRecord(out);
}

function entryLocality(locality: string | undefined): Locality | undefined {
  if (locality === undefined || locality === "") return undefined;
  const [region = "", zone = "", ...rest] = locality.split("/");
  const subzone = rest.join("/");
  if (region === "" && zone === "" && subzone === "") return undefined;
  return create(LocalitySchema, { region, zone, subzone });
}

function ownerWorkloadType(kind: string): WorkloadType {
  switch (kind) {
    case "Deployment":
      return WorkloadType.DEPLOYMENT;
    case "CronJob":
      return WorkloadType.CRONJOB;
    case "Job":
      return WorkloadType.JOB;
    default:
      return WorkloadType.POD;
  }
}

function podIps(pod: Pod): string[] {
  const ips = pod.status?.podIPs ?? [];
  if (ips.length > 0) return ips.map((p) => p.ip);
  const ip = pod.status?.podIP ?? "";
  return ip === "" ? [] : [ip];
}

export function podWorkload(
  ctx: Ctx,
  pod: Pod,
  t: AmbientTables,
  opts: AmbientOptions,
): WorkloadInfo[] {
  const phase = pod.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") return [];
  const meta = pod.metadata;
  const namespace = meta.namespace ?? "";
  const ref: ObjectRef = { kind: "Pod", namespace, name: meta.name };
  const where = formatRef(ref);
  const ipTexts = podIps(pod);
  if (ipTexts.length === 0) return [];
  const addresses: Uint8Array[] = [];
  for (const text of ipTexts) {
    const ip = parseIp(text);
    if (ip === undefined) {
      ctx.report(
        "warning",
        where,
        `pod IP ${JSON.stringify(text)} is not an IP address; the pod is not sent to ztunnel`,
      );
      return [];
    }
    addresses.push(ip);
  }
  const labels = meta.labels ?? {};
  const annotations = meta.annotations ?? {};
  let policies = workloadPolicies(ctx, t, opts, labels, namespace);
  const services = ctx.index(
    t.workloadServices,
    "namespace",
    namespace,
    (s) =>
      serviceSelects(s, labels) &&
      (opts.enableServiceEntrySelectPods || s.source.kind === "Service"),
  );
  services.push(...servicesWithoutSelectors(ctx, t, pod, services, opts));
  sortedServices(services);
  const ready = (pod.status?.conditions ?? []).some(
    (c) => c.type === "Ready" && c.status === "True",
  );
  const status =
    ready && meta.deletionTimestamp === undefined
      ? WorkloadStatus.HEALTHY
      : WorkloadStatus.UNHEALTHY;
  const network = networkOf(ctx, t, opts);
  const choice = computeWaypoint(ctx, t, meta, where);
  policies = [...policies, ...implicitWaypointPolicies(ctx, t, opts, choice.waypoint, services)];
  const nodeName = pod.spec?.nodeName ?? "";
  let locality: Locality | undefined;
  if (nodeName !== "") {
    const node = ctx.get(t.localities, nodeName);
    if (node === undefined)
      ctx.report("info", where, `node ${nodeName} not found; the workload has no locality`);
    locality = node?.locality;
  }
  const owner = workloadOwnerOfPod(meta);
  const canonical = canonicalService(labels, owner.name);
  const w = create(WorkloadSchema, {
    uid: `${opts.clusterId}//Pod/${namespace}/${meta.name}`,
    name: meta.name,
    namespace,
    network,
    clusterId: opts.clusterId,
    addresses,
    serviceAccount: podServiceAccount(pod),
    node: nodeName,
    services: podServices(pod, services),
    authorizationPolicies: policies,
    status,
    trustDomain: trustDomainOf(opts),
    networkMode: pod.spec?.hostNetwork === true ? NetworkMode.HOST_NETWORK : NetworkMode.STANDARD,
    workloadName: owner.name,
    // istiod sends POD for every pod ("backwards compatibility"); the owner is in workload_name.
    workloadType: opts.workloadTypeFromOwner ? ownerWorkloadType(owner.kind) : WorkloadType.POD,
    canonicalName: canonical.name,
    canonicalRevision: canonical.revision,
  });
  if (locality !== undefined) w.locality = locality;
  setTunnelProtocol(labels, annotations, w);
  return [finishWorkload(w, choice, ref)];
}

/**
 * `matchingServicesWithoutSelectors`: Services that list this pod in their EndpointSlices
 * (by targetRef) but did not select it by label — selector-less Services managed by hand.
 */
function servicesWithoutSelectors(
  ctx: Ctx,
  t: AmbientTables,
  pod: Pod,
  already: readonly ServiceInfo[],
  opts: AmbientOptions,
): ServiceInfo[] {
  const namespace = pod.metadata.namespace ?? "";
  const seen = new Set(already.map((s) => s.service.hostname));
  const out: ServiceInfo[] = [];
  const slices = ctx.index(
    t.endpointSlices,
    slicesByPodIndex,
    `${namespace}/${pod.metadata.name}/${pod.metadata.uid ?? ""}`,
  );
  for (const slice of slices) {
    const serviceName = slice.metadata.labels?.[label.serviceName];
    if (serviceName === undefined) continue;
    const sliceNs = slice.metadata.namespace ?? "";
    const hostname = `${serviceName}.${sliceNs}.svc.${opts.domainSuffix}`;
    if (seen.has(hostname)) continue;
    const svc = ctx.get(t.workloadServices, `${sliceNs}/${hostname}`);
    if (svc === undefined || svc.source.kind !== "Service") continue;
    seen.add(hostname);
    out.push(svc);
  }
  return out;
}

/** WorkloadEntry labels: `spec.labels` merged under `metadata.labels` (metadata wins). */
function entryLabels(we: WorkloadEntry): Labels {
  const specLabels = we.spec?.labels;
  if (specLabels === undefined) return we.metadata.labels ?? {};
  return { ...specLabels, ...(we.metadata.labels ?? {}) };
}

export function workloadEntryWorkload(
  ctx: Ctx,
  we: WorkloadEntry,
  t: AmbientTables,
  opts: AmbientOptions,
): WorkloadInfo[] {
  const spec = we.spec ?? {};
  const namespace = we.metadata.namespace ?? "";
  const ref: ObjectRef = { kind: "WorkloadEntry", namespace, name: we.metadata.name };
  const where = formatRef(ref);
  const labels = entryLabels(we);
  let policies = workloadPolicies(ctx, t, opts, labels, namespace);
  const choice = computeWaypoint(ctx, t, { labels: { ...labels }, namespace }, where);
  const services = sortedServices(
    ctx.index(
      t.workloadServices,
      "namespace",
      namespace,
      (s) =>
        serviceSelects(s, labels) &&
        (opts.enableK8sServiceSelectWorkloadEntries || s.source.kind === "ServiceEntry"),
    ),
  );
  const network =
    spec.network !== undefined && spec.network !== "" ? spec.network : networkOf(ctx, t, opts);
  policies = [...policies, ...implicitWaypointPolicies(ctx, t, opts, choice.waypoint, services)];
  const workloadName = workloadNameOfWorkloadEntry(we.metadata, labels);
  const canonical = canonicalService(labels, workloadName);
  const w = create(WorkloadSchema, {
    uid: `${opts.clusterId}/networking.istio.io/WorkloadEntry/${namespace}/${we.metadata.name}`,
    name: we.metadata.name,
    namespace,
    network,
    clusterId: opts.clusterId,
    serviceAccount: spec.serviceAccount ?? "",
    services: entryServices(
      spec,
      services.map((s) => ({ service: s.service, portNames: s.portNames, kind: s.source.kind })),
    ),
    authorizationPolicies: policies,
    // istiod: "TODO: WE can be unhealthy".
    status: WorkloadStatus.HEALTHY,
    trustDomain: trustDomainOf(opts),
    workloadName,
    workloadType: WorkloadType.POD,
    canonicalName: canonical.name,
    canonicalRevision: canonical.revision,
  });
  const locality = entryLocality(spec.locality);
  if (locality !== undefined) w.locality = locality;
  if ((spec.weight ?? 0) > 0) w.capacity = spec.weight;
  setAddress(w, spec.address ?? "");
  setTunnelProtocol(labels, we.metadata.annotations ?? {}, w);
  return [finishWorkload(w, choice, ref)];
}

function setAddress(w: Workload, address: string): void {
  const ip = parseIp(address);
  if (ip !== undefined) w.addresses = [ip];
  else w.hostname = address;
}

export function serviceEntryWorkloads(
  ctx: Ctx,
  se: ServiceEntry,
  t: AmbientTables,
  opts: AmbientOptions,
): WorkloadInfo[] {
  const spec = se.spec ?? {};
  const namespace = se.metadata.namespace ?? "";
  const ref: ObjectRef = { kind: "ServiceEntry", namespace, name: se.metadata.name };
  const where = formatRef(ref);
  let endpoints: readonly WorkloadEntrySpec[] = spec.endpoints ?? [];
  const resolution = spec.resolution ?? "NONE";
  // A DNS entry without endpoints or selector: each host is its own endpoint, resolved by ztunnel.
  const implicit =
    endpoints.length === 0 &&
    (resolution === "DNS" || resolution === "DNS_ROUND_ROBIN") &&
    spec.workloadSelector === undefined;
  if (endpoints.length === 0 && !implicit) return [];
  const baseNetwork = networkOf(ctx, t, opts);
  let network = baseNetwork;
  const portNames: Record<number, PortName> = {};
  for (const p of spec.ports ?? [])
    portNames[p.number] = { portName: p.name ?? "", targetPortName: "" };
  const all: EntryService[] = serviceEntryServices(se, {
    domainSuffix: opts.domainSuffix,
    network,
    // Only hosts and ports matter here; load balancing is the Service's business.
    namespaceAnnotations: {},
    waypoint: undefined,
    warn: () => undefined,
  }).map((service) => ({ service, portNames, kind: "ServiceEntry" }));
  if (implicit) endpoints = all.map((s) => ({ address: s.service.hostname }));
  const labels = se.metadata.labels ?? {};
  const out: WorkloadInfo[] = [];
  endpoints.forEach((ep, i) => {
    const services = implicit ? all.slice(i, i + 1) : all;
    let policies = workloadPolicies(ctx, t, opts, labels, namespace);
    const choice: WaypointChoice = implicit
      ? { appTunnel: undefined, waypoint: undefined }
      : computeWaypoint(ctx, t, { labels: { ...(ep.labels ?? {}) }, namespace }, where);
    // istiod builds these services without their waypoint, so only the endpoint's own counts.
    policies = [...policies, ...implicitWaypointPolicies(ctx, t, opts, choice.waypoint, [])];
    // istiod assigns an endpoint's network to the loop variable, so later endpoints without a
    // network inherit it; kept for identical output.
    if (ep.network !== undefined && ep.network !== "") network = ep.network;
    else if (network !== baseNetwork) {
      ctx.report(
        "warning",
        where,
        `endpoint ${i} (${ep.address ?? ""}) has no network and inherits ${JSON.stringify(network)} from an earlier endpoint, as istiod does; set spec.endpoints[${i}].network`,
      );
    }
    const canonical = canonicalService(labels, se.metadata.name);
    const w = create(WorkloadSchema, {
      uid: `${opts.clusterId}/networking.istio.io/ServiceEntry/${namespace}/${se.metadata.name}/${ep.address ?? ""}`,
      name: se.metadata.name,
      namespace,
      network,
      clusterId: opts.clusterId,
      serviceAccount: ep.serviceAccount ?? "",
      services: entryServices(ep, services),
      authorizationPolicies: policies,
      status: WorkloadStatus.HEALTHY,
      trustDomain: trustDomainOf(opts),
      workloadName: se.metadata.name,
      workloadType: WorkloadType.POD,
      canonicalName: canonical.name,
      canonicalRevision: canonical.revision,
    });
    const locality = entryLocality(ep.locality);
    if (locality !== undefined) w.locality = locality;
    if ((ep.weight ?? 0) > 0) w.capacity = ep.weight;
    setAddress(w, ep.address ?? "");
    setTunnelProtocol(labels, se.metadata.annotations ?? {}, w);
    out.push(finishWorkload(w, choice, ref));
  });
  return out;
}

/**
 * Endpoints of a Service's EndpointSlice that are not pods (added by hand or by another
 * controller). Opaque: no identity, so `HOST_NETWORK` mode (addresses may be shared).
 */
export function endpointSliceWorkloads(
  ctx: Ctx,
  slice: EndpointSlice,
  t: AmbientTables,
  opts: AmbientOptions,
): WorkloadInfo[] {
  const serviceName = slice.metadata.labels?.[label.serviceName];
  const fields = endpointSliceFields(slice);
  if (serviceName === undefined || fields.addressType === "FQDN") return [];
  const namespace = slice.metadata.namespace ?? "";
  const ref: ObjectRef = { kind: "EndpointSlice", namespace, name: slice.metadata.name };
  const where = formatRef(ref);
  const serviceKey = `${namespace}/${serviceName}.${namespace}.svc.${opts.domainSuffix}`;
  const svc = ctx.get(t.workloadServices, serviceKey);
  if (svc === undefined || svc.source.kind !== "Service") return [];
  const ports: Port[] = [];
  for (const p of fields.ports ?? []) {
    // Only named TCP ports can be joined with the Service's ports (the API server defaults TCP).
    if (p.name === undefined || p.port === undefined || (p.protocol ?? "TCP") !== "TCP") continue;
    const match = svc.service.ports.find(
      (sp) => svc.portNames[sp.servicePort]?.portName === p.name,
    );
    if (match !== undefined)
      ports.push(create(PortSchema, { servicePort: match.servicePort, targetPort: p.port }));
  }
  const network = networkOf(ctx, t, opts);
  const seen = new Set<string>();
  const out: WorkloadInfo[] = [];
  for (const ep of fields.endpoints ?? []) {
    if (ep.targetRef?.kind === "Pod") continue;
    const key = ep.addresses[0];
    if (key === undefined) continue;
    if (seen.has(key)) {
      ctx.report("warning", where, `address ${key} appears twice; using the first endpoint`);
      continue;
    }
    seen.add(key);
    const addresses: Uint8Array[] = [];
    let valid = true;
    for (const a of ep.addresses) {
      const ip = parseIp(a);
      if (ip === undefined) valid = false;
      else addresses.push(ip);
    }
    if (!valid) {
      ctx.report(
        "warning",
        where,
        `endpoint addresses ${JSON.stringify(ep.addresses)} include a non-IP; endpoint skipped`,
      );
      continue;
    }
    const w = create(WorkloadSchema, {
      uid: `${opts.clusterId}/discovery.k8s.io/EndpointSlice/${namespace}/${slice.metadata.name}/${key}`,
      name: slice.metadata.name,
      namespace,
      addresses,
      network,
      trustDomain: trustDomainOf(opts),
      services: {
        [serviceKey]: portList(
          ports.map((p) =>
            create(PortSchema, { servicePort: p.servicePort, targetPort: p.targetPort }),
          ),
        ),
      },
      status: ep.conditions?.ready === false ? WorkloadStatus.UNHEALTHY : WorkloadStatus.HEALTHY,
      clusterId: opts.clusterId,
      networkMode: NetworkMode.HOST_NETWORK,
    });
    out.push({ key: w.uid, resource: workloadResource(w), source: ref });
  }
  return out;
}
