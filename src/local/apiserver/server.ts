/**
 * The local cluster's API server: a Kubernetes-compatible REST API (plain HTTP, or HTTPS when
 * given a certificate) that the control plane, node agents and kubelets use with the ordinary
 * clients. Two kinds of objects:
 *
 * - **user config**, from the config directory through `FileConfigStore` (validated, with
 *   file/line problems, last-good semantics). Served read-only: status, pod annotations and pod
 *   bindings written through the API are kept beside the file's content (status and annotations
 *   in memory, bindings persisted) and survive edits of the file;
 * - **runtime objects**, created through the API (pods made by controllers, ReplicaSets, Nodes,
 *   anything else), persisted in the state directory (see persistence.ts).
 *
 * A manifest wins over a runtime object of the same name. Service VIPs are allocated from the
 * service range and persisted. Optional bearer tokens from a token file.
 */
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { FileConfigStore, KINDS, type ConfigBatch } from "../../lib/config/index.ts";
import type { Result } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log/index.ts";
import {
  KubeApiHandler,
  ObjectStore,
  Registry,
  diffMergePatch,
  isObject,
  jsonEqual,
  metaOf,
  str,
  type ApiResource,
  type Json,
  type StoreEvent,
} from "../../lib/kube-api/index.ts";
import { readOnlyFiles, pods, services, validation, type AdmissionContext } from "./admission.ts";
import { ClusterIpAllocator } from "./cluster-ip.ts";
import { Persistence, type PersistedState, type StoredRuntimeObject } from "./persistence.ts";
import { parseTokenFile, tokenAuthenticator } from "./tokens.ts";
import { toWire } from "./wire.ts";

export interface ApiServerOptions {
  /** The watched directory of manifests (user config). */
  readonly configDir: string;
  /** Where runtime objects and allocations are kept (`<stateDir>/snapshot.json`, `changes.jsonl`). */
  readonly stateDir: string;
  /** Address and port to listen on, e.g. 198.18.0.1 and 6443 (port 0: any free port). */
  readonly host: string;
  readonly port: number;
  /** Also listen on this unix socket (for tools in another network namespace). */
  readonly socketPath?: string;
  /** The service VIP range (inside 198.18.0.0/15). */
  readonly serviceCidr: string;
  /** kube-apiserver `--token-auth-file` format; without it every request is allowed. */
  readonly tokenFile?: string;
  /** PEM files for HTTPS; plain HTTP without them. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  readonly log: Logger;
  /** Bookmarks on watches that ask for them (default every 60 s). */
  readonly bookmarkIntervalMs?: number;
  readonly rescanIntervalMs?: number;
  readonly now?: () => Date;
}

interface Overlay {
  readonly status?: unknown;
  readonly annotations?: unknown;
  readonly nodeName?: string;
}

function podKey(ns: string, name: string): string {
  return `${ns}/${name}`;
}

export class LocalApiServer {
  readonly store: ObjectStore;
  readonly registry: Registry;
  readonly files: FileConfigStore;
  readonly #opts: ApiServerOptions;
  readonly #log: Logger;
  readonly #persistence: Persistence;
  readonly #allocator: ClusterIpAllocator;
  readonly #handler: KubeApiHandler;
  readonly #servers: Server[] = [];
  /** Ids (`resource id`) of objects a manifest defines, with the file's version in wire form. */
  readonly #fileObjects = new Map<string, Json>();
  readonly #overlays = new Map<string, Overlay>();
  readonly #bindings = new Map<string, string>();
  /** Ids of runtime objects in the persisted state. */
  readonly #persisted = new Set<string>();
  #mirroring = false;
  #ready = false;
  #closed = false;

  private constructor(opts: ApiServerOptions, persistence: Persistence, state: PersistedState) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#persistence = persistence;
    this.store = new ObjectStore({
      // Above anything an earlier run handed out, so clients resuming from one relist (410).
      initialResourceVersion: Math.max(state.resourceVersion + 1, Date.now() * 1000),
      ...(opts.now ? { now: opts.now } : {}),
    });
    this.#allocator = new ClusterIpAllocator(opts.serviceCidr, state.clusterIps);
    for (const [k, v] of Object.entries(state.bindings)) this.#bindings.set(k, v);
    const ctx: AdmissionContext = {
      configDir: opts.configDir,
      isFileBacked: (res, ns, name) => this.#fileObjects.has(this.#id(res, ns, name)),
      allocateClusterIp: (key, requested) => this.#allocateIp(key, requested),
      now: opts.now ?? (() => new Date()),
    };
    this.registry = new Registry(this.store, [
      readOnlyFiles(ctx),
      validation(),
      services(ctx),
      pods(ctx),
    ]);
    let authenticate: ((req: IncomingMessage) => string | undefined) | undefined;
    if (opts.tokenFile !== undefined) {
      const parsed = parseTokenFile(readFileSync(opts.tokenFile, "utf8"), opts.tokenFile);
      if (!parsed.ok) throw new Error(`cannot use the token file: ${parsed.reason.join("; ")}`);
      authenticate = tokenAuthenticator(parsed.value);
    }
    this.#handler = new KubeApiHandler({
      registry: this.registry,
      ...(authenticate ? { authenticate } : {}),
      bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 60_000,
      ready: () => this.#ready,
    });
    this.files = new FileConfigStore({
      dir: opts.configDir,
      log: opts.log.child("config"),
      ...(opts.rescanIntervalMs !== undefined ? { rescanIntervalMs: opts.rescanIntervalMs } : {}),
    });
    this.#restore(state);
    this.store.subscribe((ev) => this.#onStoreEvent(ev));
  }

  /** Opens the state, mirrors the config directory, then listens. Resolves once serving. */
  static async start(opts: ApiServerOptions): Promise<LocalApiServer> {
    const { persistence, state, problems } = Persistence.open(opts.stateDir);
    for (const p of problems) opts.log.warn("API server state partly unreadable", { problem: p });
    const server = new LocalApiServer(opts, persistence, state);
    try {
      await server.#startFiles();
      await server.#listen();
    } catch (err) {
      await server.close();
      throw err;
    }
    return server;
  }

  /** `http://host:port` (or https). */
  get url(): string {
    const a = this.#servers[0]!.address() as AddressInfo;
    return `${this.#opts.tls ? "https" : "http"}://${a.address}:${a.port}`;
  }

  get port(): number {
    return (this.#servers[0]!.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#handler.close();
    await this.files.close();
    for (const s of this.#servers) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    if (this.#opts.socketPath !== undefined) await rm(this.#opts.socketPath, { force: true });
    this.#persistence.close(this.#snapshot());
  }

  // ---- identity and persistence ---------------------------------------------------------------

  #id(res: ApiResource, namespace: string, name: string): string {
    return `${res.group}/${res.plural}/${res.namespaced ? namespace : ""}/${name}`;
  }

  #idOf(res: ApiResource, o: Json): string {
    const m = metaOf(o);
    return this.#id(res, str(m["namespace"]), str(m["name"]));
  }

  #restore(state: PersistedState): void {
    for (const o of state.objects) {
      const res = this.store.resources.forPlural(o.group, o.plural);
      if (res === undefined) {
        this.#log.warn("dropping a stored object of a resource no longer served", {
          resource: `${o.group}/${o.plural}`,
          name: str(metaOf(o.object)["name"]),
        });
        continue;
      }
      const r = this.store.create(res, o.object, { preserve: true });
      if (r.ok) this.#persisted.add(this.#idOf(res, r.object));
    }
  }

  #snapshot(): PersistedState {
    const objects: StoredRuntimeObject[] = [];
    for (const res of this.store.resources.all) {
      for (const o of this.store.list(res)) {
        if (!this.#fileObjects.has(this.#idOf(res, o)))
          objects.push({ group: res.group, plural: res.plural, object: o });
      }
    }
    return {
      version: 1,
      resourceVersion: this.store.resourceVersion,
      objects,
      clusterIps: this.#allocator.allocations,
      bindings: Object.fromEntries(this.#bindings),
    };
  }

  #append(rec: Parameters<Persistence["append"]>[0]): void {
    if (this.#persistence.append(rec)) this.#persistence.compact(this.#snapshot());
  }

  #allocateIp(key: string, requested: string | undefined): Result<string, string> {
    const before = this.#allocator.get(key);
    const r =
      requested === undefined
        ? this.#allocator.allocate(key)
        : this.#allocator.claim(key, requested);
    if (r.ok && r.value !== before) this.#append({ op: "ip", key, ip: r.value });
    return r;
  }

  #onStoreEvent(ev: StoreEvent): void {
    const id = this.#idOf(ev.resource, ev.object);
    const m = metaOf(ev.object);
    const ns = str(m["namespace"]);
    const name = str(m["name"]);
    if (ev.type === "DELETED" && ev.resource.group === "" && ev.resource.plural === "services") {
      if (this.#allocator.release(podKey(ns, name)))
        this.#append({ op: "ip", key: podKey(ns, name), ip: null });
    }
    if (this.#fileObjects.has(id)) {
      if (this.#persisted.delete(id)) {
        this.#append({
          op: "del",
          group: ev.resource.group,
          plural: ev.resource.plural,
          namespace: ns,
          name,
        });
      }
      if (!this.#mirroring && ev.type === "MODIFIED")
        this.#recordOverlay(ev.resource, id, ev.object);
      return;
    }
    if (this.#mirroring) return;
    if (ev.type === "DELETED") {
      if (this.#persisted.delete(id)) {
        this.#append({
          op: "del",
          group: ev.resource.group,
          plural: ev.resource.plural,
          namespace: ns,
          name,
        });
      }
    } else {
      this.#persisted.add(id);
      this.#append({
        op: "put",
        group: ev.resource.group,
        plural: ev.resource.plural,
        object: ev.object,
      });
    }
  }

  // ---- the config directory -------------------------------------------------------------------

  /** What API writes changed on a file's object: kept and laid over later versions of the file. */
  #recordOverlay(res: ApiResource, id: string, obj: Json): void {
    const file = this.#fileObjects.get(id)!;
    const fileAnn = metaOf(file)["annotations"] ?? {};
    const ann = metaOf(obj)["annotations"] ?? {};
    const annotations = jsonEqual(fileAnn, ann) ? undefined : diffMergePatch(fileAnn, ann);
    const status = jsonEqual(file["status"], obj["status"]) ? undefined : obj["status"];
    let nodeName: string | undefined;
    if (res.plural === "pods" && res.group === "") {
      const fileNode = isObject(file["spec"]) ? str(file["spec"]["nodeName"]) : "";
      const node = isObject(obj["spec"]) ? str(obj["spec"]["nodeName"]) : "";
      if (fileNode === "" && node !== "") nodeName = node;
      const key = podKey(str(metaOf(obj)["namespace"]), str(metaOf(obj)["name"]));
      if (nodeName !== undefined && this.#bindings.get(key) !== nodeName) {
        this.#bindings.set(key, nodeName);
        this.#append({ op: "bind", key, node: nodeName });
      }
    }
    this.#overlays.set(id, {
      ...(status !== undefined ? { status } : {}),
      ...(annotations !== undefined ? { annotations } : {}),
      ...(nodeName !== undefined ? { nodeName } : {}),
    });
  }

  /** The object the API serves for a file's object: the file, plus overlays and allocations. */
  #compose(res: ApiResource, file: Json, overlay: Overlay | undefined): Json {
    const o = structuredClone(file);
    const m = o["metadata"] as Json;
    const ns = str(m["namespace"]);
    const name = str(m["name"]);
    if (overlay?.status !== undefined) o["status"] = structuredClone(overlay.status);
    if (overlay?.annotations !== undefined) {
      const merged = { ...(isObject(m["annotations"]) ? m["annotations"] : {}) };
      for (const [k, v] of Object.entries(overlay.annotations as Json)) {
        if (v === null) delete merged[k];
        else merged[k] = v;
      }
      if (Object.keys(merged).length > 0) m["annotations"] = merged;
      else delete m["annotations"];
    }
    if (res.group === "" && res.plural === "pods") {
      const spec = isObject(o["spec"]) ? o["spec"] : (o["spec"] = {});
      const bound = overlay?.nodeName ?? this.#bindings.get(podKey(ns, name));
      if (str(spec["nodeName"]) === "" && bound !== undefined) spec["nodeName"] = bound;
      if (!isObject(o["status"])) o["status"] = { phase: "Pending" };
    }
    if (res.group === "" && res.plural === "services") {
      const spec = isObject(o["spec"]) ? o["spec"] : (o["spec"] = {});
      if (spec["type"] !== "ExternalName") {
        const asked = str(spec["clusterIP"]);
        if (asked === "None") spec["clusterIPs"] = ["None"];
        else {
          let r = this.#allocateIp(podKey(ns, name), asked === "" ? undefined : asked);
          if (!r.ok) {
            this.#log.warn("cannot give a Service the clusterIP it names; allocating another", {
              service: podKey(ns, name),
              reason: r.reason,
            });
            r = this.#allocateIp(podKey(ns, name), undefined);
          }
          if (r.ok) {
            spec["clusterIP"] = r.value;
            spec["clusterIPs"] = [r.value];
          }
        }
        spec["type"] ??= "ClusterIP";
      }
    }
    return o;
  }

  #mirror(batch: ConfigBatch): void {
    this.#mirroring = true;
    try {
      for (const ev of batch.events) {
        const info = KINDS[ev.kind];
        const res = this.store.resources.forKind(info.group, ev.kind);
        if (res === undefined) continue;
        if (ev.type === "deleted") {
          const o = ev.old;
          const id = this.#id(res, o.metadata.namespace, o.metadata.name);
          this.store.remove(res, o.metadata.namespace, o.metadata.name);
          this.#fileObjects.delete(id);
          this.#overlays.delete(id);
          const key = podKey(o.metadata.namespace, o.metadata.name);
          if (res.plural === "pods" && this.#bindings.delete(key))
            this.#append({ op: "bind", key, node: null });
          continue;
        }
        const o = ev.new;
        const wire = toWire(o);
        const id = this.#id(res, o.metadata.namespace, o.metadata.name);
        const was = this.#fileObjects.get(id);
        // A new incarnation of the file's object starts without the old one's overlays.
        if (was !== undefined && metaOf(was)["uid"] !== o.metadata.uid) this.#overlays.delete(id);
        this.#fileObjects.set(id, wire);
        const composed = this.#compose(res, wire, this.#overlays.get(id));
        const cur = this.store.get(res, o.metadata.namespace, o.metadata.name);
        if (cur === undefined) {
          this.store.create(res, composed, { preserve: true });
        } else {
          if (was === undefined) {
            this.#log.warn(
              "a manifest now defines an object created through the API; the manifest wins",
              {
                object: `${ev.kind} ${o.metadata.namespace}/${o.metadata.name}`,
              },
            );
          }
          this.store.replace(res, o.metadata.namespace, o.metadata.name, composed, "system", {
            preserve: true,
          });
        }
      }
    } finally {
      this.#mirroring = false;
    }
  }

  async #startFiles(): Promise<void> {
    this.files.subscribe((batch) => this.#mirror(batch));
    await this.files.start();
    // Let the initial batch (delivered in a microtask after sync) land before serving.
    await new Promise((resolve) => setImmediate(resolve));
    // Allocations and bindings whose objects went away while the server was down.
    const svc = this.store.resources.forKind("", "Service")!;
    const pod = this.store.resources.forKind("", "Pod")!;
    for (const key of Object.keys(this.#allocator.allocations)) {
      const [ns, name] = key.split("/") as [string, string];
      if (this.store.get(svc, ns, name) === undefined) {
        this.#allocator.release(key);
        this.#append({ op: "ip", key, ip: null });
      }
    }
    for (const key of [...this.#bindings.keys()]) {
      const [ns, name] = key.split("/") as [string, string];
      if (!this.#fileObjects.has(this.#id(pod, ns, name))) {
        this.#bindings.delete(key);
        this.#append({ op: "bind", key, node: null });
      }
    }
    const problems = this.files.errors();
    this.#log.info("API server state loaded", {
      fileObjects: this.#fileObjects.size,
      runtimeObjects: this.#persisted.size,
      configProblems: problems.length,
    });
  }

  async #listen(): Promise<void> {
    const handle = (req: IncomingMessage, res: ServerResponse) => this.#handler.handle(req, res);
    const make = (): Server =>
      this.#opts.tls
        ? createHttpsServer(
            {
              cert: readFileSync(this.#opts.tls.certFile),
              key: readFileSync(this.#opts.tls.keyFile),
            },
            handle,
          )
        : createHttpServer(handle);
    const tcp = make();
    // Watches are long-lived: no request timeout; idle keep-alive connections may go.
    tcp.requestTimeout = 0;
    tcp.headersTimeout = 60_000;
    this.#servers.push(tcp);
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen(this.#opts.port, this.#opts.host, () => {
        tcp.off("error", reject);
        resolve();
      });
    });
    if (this.#opts.socketPath !== undefined) {
      await rm(this.#opts.socketPath, { force: true });
      const unix = createHttpServer(handle);
      unix.requestTimeout = 0;
      this.#servers.push(unix);
      await new Promise<void>((resolve, reject) => {
        unix.once("error", reject);
        unix.listen(this.#opts.socketPath, () => resolve());
      });
    }
    this.#ready = true;
    this.#log.info("API server listening", {
      url: this.url,
      socket: this.#opts.socketPath ?? "",
      auth: this.#opts.tokenFile !== undefined ? "token" : "none",
    });
  }
}

/** `<stateDir>/apiserver`, where the API server keeps its objects. */
export function apiServerStateDir(stateDir: string): string {
  return join(stateDir, "apiserver");
}
