/**
 * ProxyState: everything ztunnel knows from xDS, with the indexes the data path needs (all
 * lookups used per connection are map probes, never scans over all workloads or services).
 *
 * Pure and synchronous: the xDS client applies a response's resources one by one (each may be
 * rejected on its own), then calls `commit()`, which hands the batch's net changes (uids, service
 * keys, policy keys, node-local identities) to subscribers, for certificate prefetch and for
 * re-checking open connections against changed policies.
 */
import type { Identity } from "../../lib/identity/index.ts";
import { identityKey } from "../../lib/identity/index.ts";
import { ok, type Result } from "../../lib/errors.ts";
import type { Address as XdsAddress } from "../../lib/gen/istio/workload/workload_pb.ts";
import type { Authorization as XdsAuthorization } from "../../lib/gen/istio/security/authorization_pb.ts";
import { authorizationFromXds } from "../../lib/rbac/index.ts";
import type { Authorization, PolicyLookup } from "../../lib/rbac/index.ts";
import { addressFromXds, parseNamespacedHostname } from "./convert.ts";
import { ServiceVipIndex } from "./service-index.ts";
import type {
  Address,
  Endpoint,
  GatewayDestination,
  NamespacedHostname,
  NetworkAddress,
  PortMap,
  Service,
  Workload,
} from "./types.ts";
import { networkAddressKey, serviceKey } from "./types.ts";

export interface ProxyStateOptions {
  /**
   * This ztunnel's node (`NODE_NAME`). Workloads whose `node` equals it are "local". Undefined
   * treats every workload as local (ztunnel does the same when no node is configured).
   */
  readonly localNode?: string | undefined;
}

/** Net changes of one kind of resource since the last commit. */
export interface ChangeSet {
  readonly added: readonly string[];
  readonly updated: readonly string[];
  readonly removed: readonly string[];
}

export interface StateChanges {
  /** Workload uids. */
  readonly workloads: ChangeSet;
  /** Service keys `<namespace>/<hostname>`. */
  readonly services: ChangeSet;
  /** Policy keys `<namespace>/<name>`. */
  readonly policies: ChangeSet;
  /**
   * Identities of node-local workloads that need a certificate (HBONE or native tunnel):
   * `added` = first such workload appeared (prefetch), `removed` = last one left (drop the cert).
   */
  readonly localIdentities: {
    readonly added: readonly Identity[];
    readonly removed: readonly Identity[];
  };
}

/** What ZDS tells ztunnel about a pod; matched against node-local workloads. */
export interface WorkloadInfo {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

export type StateListener = (changes: StateChanges) => void;

/** Tracks what existed at the start of a batch for each touched key. */
class Touched {
  readonly #before = new Map<string, boolean>();
  touch(key: string, existed: boolean): void {
    if (!this.#before.has(key)) this.#before.set(key, existed);
  }
  take(exists: (k: string) => boolean): ChangeSet {
    const added: string[] = [];
    const updated: string[] = [];
    const removed: string[] = [];
    for (const [k, before] of this.#before) {
      const now = exists(k);
      if (now && !before) added.push(k);
      else if (now && before) updated.push(k);
      else if (!now && before) removed.push(k);
    }
    this.#before.clear();
    return { added, updated, removed };
  }
}

/** Prefer pods (not spoofable) and HBONE workloads when several share an IP, like ztunnel. */
function addressRank(w: Workload): number {
  return (w.uid.includes("//Pod/") ? 2 : 0) + (w.protocol === "HBONE" ? 1 : 0);
}

function needsCertificate(w: Workload): boolean {
  return w.protocol === "HBONE" || w.nativeTunnel;
}

export class ProxyState implements PolicyLookup {
  readonly localNode: string | undefined;

  // Workloads.
  readonly #workloads = new Map<string, Workload>();
  readonly #workloadsByAddr = new Map<string, Workload[]>();
  /** `<namespace>/<hostname>` of workloads that have a hostname. */
  readonly #workloadsByHostname = new Map<string, Workload[]>();
  /** Node-local workloads by `<namespace>/<serviceAccount>` (ZDS matching). */
  readonly #localByAccount = new Map<string, Set<string>>();
  /** Node-local identities needing certificates -> how many workloads hold them. */
  readonly #localIdentityRefs = new Map<string, { id: Identity; count: number }>();

  // Services.
  readonly #services = new Map<string, Service>();
  readonly #servicesByHost = new Map<string, Service[]>();
  readonly #vips = new ServiceVipIndex();
  /** Service key -> workload uid -> endpoint; kept even while the service is unknown (staged). */
  readonly #endpoints = new Map<string, Map<string, Endpoint>>();

  // Policies.
  readonly #policies = new Map<string, Authorization>();
  readonly #policiesByNamespace = new Map<string, Set<string>>();
  readonly #globalPolicies = new Set<string>();

  // Change feed.
  readonly #touchedWorkloads = new Touched();
  readonly #touchedServices = new Touched();
  readonly #touchedPolicies = new Touched();
  readonly #touchedIdentities = new Map<string, { id: Identity; before: number }>();
  readonly #listeners = new Set<StateListener>();

  constructor(options: ProxyStateOptions = {}) {
    this.localNode = options.localNode;
  }

  // ---------------------------------------------------------------- xDS application

  /**
   * Applies one `istio.workload.Address` resource. A rejected resource leaves the state as it
   * was; the reason names the field (for the NACK).
   */
  applyAddress(address: XdsAddress): Result<void> {
    const r = addressFromXds(address);
    if (!r.ok) return r;
    const c = r.value;
    if (c.kind === "workload") this.insertWorkload(c.workload, c.services);
    else this.insertService(c.service);
    return ok(undefined);
  }

  /** Applies one `istio.security.Authorization` resource under its xDS name. */
  applyAuthorization(name: string, auth: XdsAuthorization): Result<void> {
    const r = authorizationFromXds(auth);
    if (!r.ok) return r;
    this.insertPolicy(name, r.value);
    return ok(undefined);
  }

  /**
   * Removes an Address resource by its xDS name: a workload uid first; otherwise the name is read
   * as `<namespace>/<hostname>` of a service (names whose hostname part contains `/` are
   * workload uids, never services). Returns what was removed.
   */
  removeAddress(name: string): "workload" | "service" | undefined {
    if (this.removeWorkload(name)) return "workload";
    const nh = parseNamespacedHostname(name);
    if (nh === undefined || nh.hostname.includes("/")) return undefined;
    return this.removeService(nh) ? "service" : undefined;
  }

  removeAuthorization(name: string): boolean {
    return this.removePolicy(name);
  }

  // ---------------------------------------------------------------- workloads

  /** Inserts or replaces a workload and its service memberships (port lists by service key). */
  insertWorkload(w: Workload, services: ReadonlyMap<string, PortMap>): void {
    const existed = this.#workloads.has(w.uid);
    this.#touchedWorkloads.touch(w.uid, existed);
    if (existed) this.#dropWorkload(w.uid);
    this.#workloads.set(w.uid, w);
    if (w.networkMode !== "HOST_NETWORK") {
      for (const ip of w.workloadIps) {
        const k = networkAddressKey(w.network, ip);
        const list = this.#workloadsByAddr.get(k);
        if (list === undefined) this.#workloadsByAddr.set(k, [w]);
        else list.push(w);
      }
    }
    if (w.hostname !== "") {
      const k = `${w.namespace}/${w.hostname}`;
      const list = this.#workloadsByHostname.get(k);
      if (list === undefined) this.#workloadsByHostname.set(k, [w]);
      else list.push(w);
    }
    if (this.isLocal(w)) {
      const ak = `${w.namespace}/${w.serviceAccount}`;
      let set = this.#localByAccount.get(ak);
      if (set === undefined) this.#localByAccount.set(ak, (set = new Set()));
      set.add(w.uid);
      if (needsCertificate(w)) this.#refIdentity(w.identity, +1);
    }
    for (const [key, ports] of services) {
      let eps = this.#endpoints.get(key);
      if (eps === undefined) this.#endpoints.set(key, (eps = new Map<string, Endpoint>()));
      eps.set(w.uid, { workloadUid: w.uid, ports, status: w.status });
      if (this.#services.has(key)) this.#touchedServices.touch(key, true);
    }
  }

  removeWorkload(uid: string): boolean {
    if (!this.#workloads.has(uid)) return false;
    this.#touchedWorkloads.touch(uid, true);
    this.#dropWorkload(uid);
    return true;
  }

  #dropWorkload(uid: string): void {
    const w = this.#workloads.get(uid);
    if (w === undefined) return;
    this.#workloads.delete(uid);
    if (w.networkMode !== "HOST_NETWORK") {
      for (const ip of w.workloadIps) {
        const k = networkAddressKey(w.network, ip);
        const list = this.#workloadsByAddr.get(k);
        if (list === undefined) continue;
        const rest = list.filter((x) => x.uid !== uid);
        if (rest.length === 0) this.#workloadsByAddr.delete(k);
        else this.#workloadsByAddr.set(k, rest);
      }
    }
    if (w.hostname !== "") {
      const k = `${w.namespace}/${w.hostname}`;
      const rest = (this.#workloadsByHostname.get(k) ?? []).filter((x) => x.uid !== uid);
      if (rest.length === 0) this.#workloadsByHostname.delete(k);
      else this.#workloadsByHostname.set(k, rest);
    }
    if (this.isLocal(w)) {
      const ak = `${w.namespace}/${w.serviceAccount}`;
      const set = this.#localByAccount.get(ak);
      set?.delete(uid);
      if (set?.size === 0) this.#localByAccount.delete(ak);
      if (needsCertificate(w)) this.#refIdentity(w.identity, -1);
    }
    for (const nh of w.services) {
      const key = serviceKey(nh);
      const eps = this.#endpoints.get(key);
      if (eps === undefined) continue;
      eps.delete(uid);
      if (eps.size === 0) this.#endpoints.delete(key);
      if (this.#services.has(key)) this.#touchedServices.touch(key, true);
    }
  }

  #refIdentity(id: Identity, delta: number): void {
    const k = identityKey(id);
    const cur = this.#localIdentityRefs.get(k);
    const before = cur?.count ?? 0;
    if (!this.#touchedIdentities.has(k)) this.#touchedIdentities.set(k, { id, before });
    const after = before + delta;
    if (after <= 0) this.#localIdentityRefs.delete(k);
    else this.#localIdentityRefs.set(k, { id, count: after });
  }

  /** Whether `w` runs on this ztunnel's node. */
  isLocal(w: Workload): boolean {
    return this.localNode === undefined || w.node === this.localNode;
  }

  workloadByUid(uid: string): Workload | undefined {
    return this.#workloads.get(uid);
  }

  /**
   * The workload owning `ip` on `network` (host-network workloads are never found by IP). When
   * several claim the IP, a pod wins over other kinds, then HBONE over TCP.
   */
  workloadByAddress(network: string, ip: string): Workload | undefined {
    const list = this.#workloadsByAddr.get(networkAddressKey(network, ip));
    if (list === undefined) return undefined;
    let best = list[0];
    for (const w of list) if (best === undefined || addressRank(w) > addressRank(best)) best = w;
    return best;
  }

  /** A workload by `namespace` + its DNS `hostname` (workloads without IPs). */
  workloadByHostname(nh: NamespacedHostname): Workload | undefined {
    return this.#workloadsByHostname.get(`${nh.namespace}/${nh.hostname}`)?.[0];
  }

  /** The node-local workload ZDS describes (name, namespace, service account). */
  findLocalWorkload(info: WorkloadInfo): Workload | undefined {
    const uids = this.#localByAccount.get(`${info.namespace}/${info.serviceAccount}`);
    if (uids === undefined) return undefined;
    for (const uid of uids) {
      const w = this.#workloads.get(uid);
      if (w !== undefined && w.name === info.name) return w;
    }
    return undefined;
  }

  /** All workloads on this node. */
  *localWorkloads(): IterableIterator<Workload> {
    for (const uids of this.#localByAccount.values()) {
      for (const uid of uids) {
        const w = this.#workloads.get(uid);
        if (w !== undefined) yield w;
      }
    }
  }

  /** Identities of node-local workloads that need a certificate right now. */
  localIdentities(): Identity[] {
    return [...this.#localIdentityRefs.values()].map((r) => r.id);
  }

  workloads(): IterableIterator<Workload> {
    return this.#workloads.values();
  }

  // ---------------------------------------------------------------- services

  /** Inserts or replaces a service; endpoints staged for it (or kept from before) attach. */
  insertService(s: Service): void {
    const key = serviceKey(s);
    const prev = this.#services.get(key);
    this.#touchedServices.touch(key, prev !== undefined);
    if (prev !== undefined) this.#unindexService(prev);
    this.#services.set(key, s);
    const list = this.#servicesByHost.get(s.hostname);
    if (list === undefined) this.#servicesByHost.set(s.hostname, [s]);
    else list.push(s);
    this.#vips.add(s);
  }

  /**
   * Removes a service. Its endpoints stay staged under its key, so a service that is removed and
   * re-added keeps its workloads (ztunnel drops them until the workloads are re-sent).
   */
  removeService(nh: NamespacedHostname): boolean {
    const key = serviceKey(nh);
    const prev = this.#services.get(key);
    if (prev === undefined) return false;
    this.#touchedServices.touch(key, true);
    this.#unindexService(prev);
    this.#services.delete(key);
    return true;
  }

  #unindexService(s: Service): void {
    const list = this.#servicesByHost.get(s.hostname);
    if (list !== undefined) {
      const rest = list.filter((x) => x !== s);
      if (rest.length === 0) this.#servicesByHost.delete(s.hostname);
      else this.#servicesByHost.set(s.hostname, rest);
    }
    this.#vips.remove(s);
  }

  serviceByKey(key: string): Service | undefined {
    return this.#services.get(key);
  }

  serviceByNamespacedHost(nh: NamespacedHostname): Service | undefined {
    return this.#services.get(serviceKey(nh));
  }

  /** Every service with this hostname, across namespaces. */
  servicesByHostname(hostname: string): readonly Service[] {
    return this.#servicesByHost.get(hostname) ?? [];
  }

  /**
   * The service for a VIP as seen by a client in `clientNamespace` (exact VIPs, then CIDR VIPs;
   * see ServiceVipIndex.find for the tie rules). Undefined namespace ignores visibility.
   */
  serviceByVip(network: string, ip: string, clientNamespace?: string): Service | undefined {
    return this.#vips.find(network, ip, clientNamespace);
  }

  /** Endpoints of a service key (uid -> endpoint), including all health states. */
  endpoints(key: string): ReadonlyMap<string, Endpoint> {
    return this.#endpoints.get(key) ?? emptyEndpoints;
  }

  /** The services `w` belongs to that are known. */
  servicesOf(w: Workload): Service[] {
    const out: Service[] = [];
    for (const nh of w.services) {
      const s = this.#services.get(serviceKey(nh));
      if (s !== undefined) out.push(s);
    }
    return out;
  }

  services(): IterableIterator<Service> {
    return this.#services.values();
  }

  /** Endpoints waiting for a service that is not known (yet): key -> uid -> endpoint. */
  stagedServices(): Map<string, ReadonlyMap<string, Endpoint>> {
    const out = new Map<string, ReadonlyMap<string, Endpoint>>();
    for (const [k, eps] of this.#endpoints) if (!this.#services.has(k)) out.set(k, eps);
    return out;
  }

  // ---------------------------------------------------------------- address lookups

  /**
   * INTEROP §2.2 step 3, "is this service-addressed?": the workload owning the IP first, else a
   * service VIP (exact, then CIDR) visible to `clientNamespace`.
   */
  findAddress(network: string, ip: string, clientNamespace?: string): Address | undefined {
    const w = this.workloadByAddress(network, ip);
    if (w !== undefined) return { kind: "workload", workload: w };
    const s = this.#vips.find(network, ip, clientNamespace);
    return s === undefined ? undefined : { kind: "service", service: s };
  }

  /** A service by `namespace/hostname`, else a workload with that namespace and hostname. */
  findHostname(nh: NamespacedHostname): Address | undefined {
    const s = this.serviceByNamespacedHost(nh);
    if (s !== undefined) return { kind: "service", service: s };
    const w = this.workloadByHostname(nh);
    return w === undefined ? undefined : { kind: "workload", workload: w };
  }

  /** Resolves a gateway/waypoint destination to a service or workload. */
  findDestination(d: GatewayDestination, clientNamespace?: string): Address | undefined {
    return d.kind === "address"
      ? this.findAddress(d.address.network, d.address.address, clientNamespace)
      : this.findHostname(d.hostname);
  }

  findNetworkAddress(a: NetworkAddress, clientNamespace?: string): Address | undefined {
    return this.findAddress(a.network, a.address, clientNamespace);
  }

  // ---------------------------------------------------------------- policies

  insertPolicy(key: string, p: Authorization): void {
    const existed = this.#policies.has(key);
    this.#touchedPolicies.touch(key, existed);
    if (existed) this.#unindexPolicy(key);
    this.#policies.set(key, p);
    if (p.scope === "GLOBAL") this.#globalPolicies.add(key);
    else if (p.scope === "NAMESPACE") {
      let set = this.#policiesByNamespace.get(p.namespace);
      if (set === undefined) this.#policiesByNamespace.set(p.namespace, (set = new Set()));
      set.add(key);
    }
  }

  removePolicy(key: string): boolean {
    if (!this.#policies.has(key)) return false;
    this.#touchedPolicies.touch(key, true);
    this.#unindexPolicy(key);
    this.#policies.delete(key);
    return true;
  }

  #unindexPolicy(key: string): void {
    const p = this.#policies.get(key);
    if (p === undefined) return;
    this.#globalPolicies.delete(key);
    const set = this.#policiesByNamespace.get(p.namespace);
    set?.delete(key);
    if (set?.size === 0) this.#policiesByNamespace.delete(p.namespace);
  }

  policy(key: string): Authorization | undefined {
    return this.#policies.get(key);
  }

  namespacePolicyKeys(namespace: string): Iterable<string> {
    return this.#policiesByNamespace.get(namespace) ?? emptyKeys;
  }

  globalPolicyKeys(): Iterable<string> {
    return this.#globalPolicies;
  }

  policies(): IterableIterator<[string, Authorization]> {
    return this.#policies.entries();
  }

  // ---------------------------------------------------------------- change feed

  /** Calls `listener` with each committed batch; returns the unsubscribe function. */
  subscribe(listener: StateListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Ends a batch: computes the net changes since the previous commit, hands them to subscribers
   * (synchronously, in subscription order) and returns them.
   */
  commit(): StateChanges {
    const identitiesAdded: Identity[] = [];
    const identitiesRemoved: Identity[] = [];
    for (const [k, t] of this.#touchedIdentities) {
      const now = this.#localIdentityRefs.get(k)?.count ?? 0;
      if (t.before === 0 && now > 0) identitiesAdded.push(t.id);
      else if (t.before > 0 && now === 0) identitiesRemoved.push(t.id);
    }
    this.#touchedIdentities.clear();
    const changes: StateChanges = {
      workloads: this.#touchedWorkloads.take((k) => this.#workloads.has(k)),
      services: this.#touchedServices.take((k) => this.#services.has(k)),
      policies: this.#touchedPolicies.take((k) => this.#policies.has(k)),
      localIdentities: { added: identitiesAdded, removed: identitiesRemoved },
    };
    for (const l of this.#listeners) l(changes);
    return changes;
  }
}

const emptyEndpoints: ReadonlyMap<string, Endpoint> = new Map();
const emptyKeys: ReadonlySet<string> = new Set();
