/**
 * A local stand-in for the Kubernetes API server, enough of it to test list/watch clients
 * faithfully: one resourceVersion counter for all objects (as etcd), lists at a resourceVersion
 * with limit/continue pages, watches that replay history from a resourceVersion, bookmarks
 * (`allowWatchBookmarks`), `timeoutSeconds`, compaction with `410 Gone` (as an ERROR event, as the
 * real server does, or as an HTTP 410), watch streams dropped mid-way, status subresources
 * (PUT/PATCH, merge-patch), and the real API paths for core and grouped, namespaced and
 * cluster-scoped resources. List items of built-in resources carry no apiVersion/kind, as on a
 * real server; custom resources' items do.
 *
 * Tests drive it over HTTP like a client would, or directly (create/update/remove/compact/
 * dropWatches/sendBookmarks), which produce the same events.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeResource {
  readonly group: string;
  readonly versions: readonly string[];
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
  /** Built into the API server (its list items have no apiVersion/kind), not a CRD. */
  readonly builtIn: boolean;
  /** Has a status subresource. */
  readonly status: boolean;
}

const r = (
  group: string,
  versions: string[],
  plural: string,
  kind: string,
  namespaced: boolean,
  builtIn: boolean,
  status = true,
): FakeResource => ({ group, versions, plural, kind, namespaced, builtIn, status });

/** The resources Ambient reads, as a cluster with Istio and Gateway API CRDs serves them. */
export const DEFAULT_RESOURCES: readonly FakeResource[] = [
  r("", ["v1"], "namespaces", "Namespace", false, true),
  r("", ["v1"], "pods", "Pod", true, true),
  r("", ["v1"], "services", "Service", true, true),
  r("", ["v1"], "serviceaccounts", "ServiceAccount", true, true, false),
  r("", ["v1"], "nodes", "Node", false, true),
  r("apps", ["v1"], "deployments", "Deployment", true, true),
  r("discovery.k8s.io", ["v1"], "endpointslices", "EndpointSlice", true, true, false),
  ...[
    "authorizationpolicies:AuthorizationPolicy",
    "peerauthentications:PeerAuthentication",
    "requestauthentications:RequestAuthentication",
  ].map((s) =>
    r("security.istio.io", ["v1", "v1beta1"], s.split(":")[0]!, s.split(":")[1]!, true, false),
  ),
  ...[
    "serviceentries:ServiceEntry",
    "workloadentries:WorkloadEntry",
    "virtualservices:VirtualService",
    "destinationrules:DestinationRule",
  ].map((s) =>
    r(
      "networking.istio.io",
      ["v1", "v1beta1", "v1alpha3"],
      s.split(":")[0]!,
      s.split(":")[1]!,
      true,
      false,
    ),
  ),
  r("telemetry.istio.io", ["v1", "v1alpha1"], "telemetries", "Telemetry", true, false),
  r("gateway.networking.k8s.io", ["v1", "v1beta1"], "gateways", "Gateway", true, false),
  r("gateway.networking.k8s.io", ["v1", "v1beta1"], "gatewayclasses", "GatewayClass", false, false),
  r("gateway.networking.k8s.io", ["v1", "v1beta1"], "httproutes", "HTTPRoute", true, false),
  r("gateway.networking.k8s.io", ["v1", "v1alpha2"], "grpcroutes", "GRPCRoute", true, false),
  r("gateway.networking.k8s.io", ["v1alpha2"], "tcproutes", "TCPRoute", true, false),
];

type Json = Record<string, unknown>;
type EventType = "ADDED" | "MODIFIED" | "DELETED";

interface HistoryEvent {
  readonly rv: number;
  readonly resource: FakeResource;
  readonly type: EventType;
  readonly object: Json;
}

interface Watcher {
  readonly resource: FakeResource;
  readonly apiVersion: string;
  readonly namespace: string | undefined;
  readonly res: ServerResponse;
  readonly bookmarks: boolean;
  timer: NodeJS.Timeout | undefined;
}

export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** The Authorization header, if any (the stand-in accepts any credentials). */
  readonly authorization: string | undefined;
}

/** Who a token belongs to, as a TokenReview answers (`authentication.k8s.io/v1`). */
export interface FakeTokenUser {
  readonly username: string;
  readonly uid?: string;
  readonly groups?: readonly string[];
  /** e.g. `authentication.kubernetes.io/pod-name`, `.../pod-uid`, `.../node-name`. */
  readonly extra?: Readonly<Record<string, readonly string[]>>;
  /** The token's audiences; a review asking for none of them is unauthenticated. Default `["https://kubernetes.default.svc"]`. */
  readonly audiences?: readonly string[];
}

export interface FakeKubeApiOptions {
  /** Tokens TokenReview accepts; any other token is unauthenticated. */
  readonly tokens?: Readonly<Record<string, FakeTokenUser>>;
  readonly resources?: readonly FakeResource[];
  /** How a watch from a compacted resourceVersion fails: an ERROR event (the real server) or HTTP 410. */
  readonly expiredWatch?: "event" | "http";
  /** Period of automatic bookmarks on watches that allow them; 0 sends them only on sendBookmarks(). */
  readonly bookmarkIntervalMs?: number;
}

const clone = <T>(v: T): T => structuredClone(v);

function meta(o: Json): Json {
  if (o["metadata"] === null || typeof o["metadata"] !== "object") o["metadata"] = {};
  return o["metadata"] as Json;
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const base: Json =
    target !== null && typeof target === "object" && !Array.isArray(target)
      ? { ...(target as Json) }
      : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete base[k];
    else base[k] = mergePatch(base[k], v);
  }
  return base;
}

function statusBody(code: number, reason: string, message: string): Json {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  };
}

export class FakeKubeApi {
  readonly #resources: readonly FakeResource[];
  readonly #expiredWatch: "event" | "http";
  readonly #bookmarkIntervalMs: number;
  #rv = 1;
  /** Events at or below this resourceVersion are gone: watches from before it get 410. */
  #compactedRv = 0;
  readonly #objects = new Map<FakeResource, Map<string, Json>>();
  #history: HistoryEvent[] = [];
  readonly #watchers = new Set<Watcher>();
  readonly #pages = new Map<string, { items: Json[]; rv: number }>();
  readonly #server: Server;
  readonly requests: RequestRecord[] = [];
  readonly #tokens = new Map<string, FakeTokenUser>();

  constructor(opts: FakeKubeApiOptions = {}) {
    for (const [t, u] of Object.entries(opts.tokens ?? {})) this.#tokens.set(t, u);
    this.#resources = opts.resources ?? DEFAULT_RESOURCES;
    this.#expiredWatch = opts.expiredWatch ?? "event";
    this.#bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 0;
    for (const res of this.#resources) this.#objects.set(res, new Map());
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    return this.url;
  }

  get url(): string {
    const a = this.#server.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}`;
  }

  /** The current resourceVersion (of the last write). */
  get resourceVersion(): string {
    return String(this.#rv);
  }

  get watchCount(): number {
    return this.#watchers.size;
  }

  async close(): Promise<void> {
    this.dropWatches();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // ---- direct control -------------------------------------------------------------------------

  /** Makes TokenReview accept `token` as `user` (undefined revokes it). */
  setToken(token: string, user: FakeTokenUser | undefined): void {
    if (user === undefined) this.#tokens.delete(token);
    else this.#tokens.set(token, user);
  }

  resourceFor(apiVersion: string, kind: string): FakeResource {
    const slash = apiVersion.lastIndexOf("/");
    const group = slash === -1 ? "" : apiVersion.slice(0, slash);
    const res = this.#resources.find((x) => x.group === group && x.kind === kind);
    if (res === undefined) throw new Error(`fake API server does not serve ${apiVersion} ${kind}`);
    return res;
  }

  /** Creates an object (as POST would). */
  create(obj: Json): Json {
    const res = this.resourceFor(String(obj["apiVersion"]), String(obj["kind"]));
    const r = this.#create(res, clone(obj));
    if (!r.ok) throw new Error(r.body["message"] as string);
    return clone(r.body);
  }

  /** Replaces an object's spec and metadata (as PUT would, without the concurrency check). */
  update(obj: Json): Json {
    const res = this.resourceFor(String(obj["apiVersion"]), String(obj["kind"]));
    const m = meta(obj);
    const r = this.#replace(
      res,
      (m["namespace"] as string | undefined) ?? "",
      String(m["name"]),
      clone(obj),
      "main",
      false,
    );
    if (!r.ok) throw new Error(r.body["message"] as string);
    return clone(r.body);
  }

  /** Deletes an object (as DELETE would). */
  remove(apiVersion: string, kind: string, namespace: string, name: string): void {
    const res = this.resourceFor(apiVersion, kind);
    if (!this.#delete(res, namespace, name).ok)
      throw new Error(`${kind} ${namespace}/${name} not found`);
  }

  get(apiVersion: string, kind: string, namespace: string, name: string): Json | undefined {
    const res = this.resourceFor(apiVersion, kind);
    const o = this.#objects.get(res)!.get(this.#id(res, namespace, name));
    return o === undefined ? undefined : clone(o);
  }

  list(apiVersion: string, kind: string): Json[] {
    return [...this.#objects.get(this.resourceFor(apiVersion, kind))!.values()].map(clone);
  }

  /** Forgets the event history: a watch from any earlier resourceVersion now gets 410 Gone. */
  compact(): void {
    this.#compactedRv = this.#rv;
    this.#history = [];
    this.#pages.clear();
  }

  /** Cuts every open watch stream mid-way (a network drop or an API server restart). */
  dropWatches(): void {
    for (const w of this.#watchers) {
      clearInterval(w.timer);
      w.res.socket?.destroy();
    }
    this.#watchers.clear();
  }

  /** Sends a BOOKMARK with the current resourceVersion on every watch that allows them. */
  sendBookmarks(): void {
    for (const w of this.#watchers) if (w.bookmarks) this.#bookmark(w);
  }

  // ---- storage --------------------------------------------------------------------------------

  #id(res: FakeResource, namespace: string, name: string): string {
    return res.namespaced ? `${namespace}/${name}` : name;
  }

  #record(res: FakeResource, type: EventType, object: Json): void {
    const ev: HistoryEvent = { rv: this.#rv, resource: res, type, object: clone(object) };
    this.#history.push(ev);
    for (const w of this.#watchers) {
      if (w.resource !== res) continue;
      if (w.namespace !== undefined && meta(object)["namespace"] !== w.namespace) continue;
      this.#send(w, { type, object: this.#withType(res, w.apiVersion, ev.object) });
    }
  }

  #withType(res: FakeResource, apiVersion: string, o: Json): Json {
    return { ...o, apiVersion, kind: res.kind };
  }

  #create(res: FakeResource, obj: Json): { ok: boolean; code: number; body: Json } {
    const m = meta(obj);
    const name = m["name"];
    if (typeof name !== "string" || name === "") {
      return {
        ok: false,
        code: 422,
        body: statusBody(422, "Invalid", "metadata.name: Required value"),
      };
    }
    const ns = res.namespaced ? ((m["namespace"] as string | undefined) ?? "default") : undefined;
    const id = this.#id(res, ns ?? "", name);
    const store = this.#objects.get(res)!;
    if (store.has(id)) {
      return {
        ok: false,
        code: 409,
        body: statusBody(409, "AlreadyExists", `${res.plural} "${name}" already exists`),
      };
    }
    this.#rv++;
    const stored: Json = { ...obj };
    delete stored["apiVersion"];
    delete stored["kind"];
    stored["metadata"] = {
      ...m,
      ...(ns !== undefined ? { namespace: ns } : {}),
      uid: randomUUID(),
      resourceVersion: String(this.#rv),
      generation: 1,
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    };
    if (!res.namespaced) delete (stored["metadata"] as Json)["namespace"];
    store.set(id, stored);
    this.#record(res, "ADDED", stored);
    return {
      ok: true,
      code: 201,
      body: this.#withType(res, apiVersionOf(res, res.versions[0]!), stored),
    };
  }

  /**
   * Writes a new version. `part` says what the request may change: the main resource (spec and
   * metadata; status kept) or the status subresource (status, plus metadata for pods as the real
   * pods/status allows; spec kept).
   */
  #replace(
    res: FakeResource,
    namespace: string,
    name: string,
    next: Json,
    part: "main" | "status",
    checkVersion: boolean,
  ): { ok: boolean; code: number; body: Json } {
    const store = this.#objects.get(res)!;
    const id = this.#id(res, namespace, name);
    const cur = store.get(id);
    if (cur === undefined) {
      return {
        ok: false,
        code: 404,
        body: statusBody(404, "NotFound", `${res.plural} "${name}" not found`),
      };
    }
    const curMeta = meta(cur);
    const nextMeta = meta(next);
    if (
      checkVersion &&
      nextMeta["resourceVersion"] !== undefined &&
      nextMeta["resourceVersion"] !== curMeta["resourceVersion"]
    ) {
      return {
        ok: false,
        code: 409,
        body: statusBody(
          409,
          "Conflict",
          `Operation cannot be fulfilled on ${res.plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        ),
      };
    }
    const stored: Json = clone(cur);
    if (part === "main" || !res.status) {
      for (const [k, v] of Object.entries(next)) {
        if (
          k === "apiVersion" ||
          k === "kind" ||
          k === "metadata" ||
          (k === "status" && res.status)
        )
          continue;
        stored[k] = v;
      }
      for (const k of Object.keys(stored)) {
        if (k !== "metadata" && k !== "status" && !(k in next)) delete stored[k];
      }
    } else {
      stored["status"] = next["status"];
    }
    if (part === "main" || res.plural === "pods") {
      const m = meta(stored);
      for (const k of ["labels", "annotations", "ownerReferences", "finalizers"]) {
        if (nextMeta[k] === undefined) delete m[k];
        else m[k] = nextMeta[k];
      }
    }
    if (JSON.stringify(stored) === JSON.stringify(cur)) {
      return {
        ok: true,
        code: 200,
        body: this.#withType(res, apiVersionOf(res, res.versions[0]!), cur),
      };
    }
    this.#rv++;
    const m = meta(stored);
    if (JSON.stringify(stored["spec"]) !== JSON.stringify(cur["spec"])) {
      m["generation"] = (curMeta["generation"] as number) + 1;
    }
    m["resourceVersion"] = String(this.#rv);
    store.set(id, stored);
    this.#record(res, "MODIFIED", stored);
    return {
      ok: true,
      code: 200,
      body: this.#withType(res, apiVersionOf(res, res.versions[0]!), stored),
    };
  }

  #delete(
    res: FakeResource,
    namespace: string,
    name: string,
  ): { ok: boolean; code: number; body: Json } {
    const store = this.#objects.get(res)!;
    const id = this.#id(res, namespace, name);
    const cur = store.get(id);
    if (cur === undefined) {
      return {
        ok: false,
        code: 404,
        body: statusBody(404, "NotFound", `${res.plural} "${name}" not found`),
      };
    }
    store.delete(id);
    this.#rv++;
    const gone = clone(cur);
    meta(gone)["resourceVersion"] = String(this.#rv);
    this.#record(res, "DELETED", gone);
    return {
      ok: true,
      code: 200,
      body: this.#withType(res, apiVersionOf(res, res.versions[0]!), gone),
    };
  }

  // ---- HTTP -----------------------------------------------------------------------------------

  #route(path: string):
    | {
        res: FakeResource;
        version: string;
        namespace: string | undefined;
        name: string | undefined;
        sub: string | undefined;
      }
    | undefined {
    const parts = path
      .split("/")
      .filter((p) => p !== "")
      .map(decodeURIComponent);
    let group: string;
    let rest: string[];
    if (parts[0] === "api") {
      group = "";
      rest = parts.slice(1);
    } else if (parts[0] === "apis" && parts.length >= 3) {
      group = parts[1]!;
      rest = parts.slice(2);
    } else return undefined;
    const version = rest[0];
    if (version === undefined) return undefined;
    rest = rest.slice(1);
    let namespace: string | undefined;
    if (rest[0] === "namespaces" && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, sub] = rest;
    const res = this.#resources.find((x) => x.group === group && x.plural === plural);
    if (res === undefined || !res.versions.includes(version)) {
      // `/api/v1/namespaces/foo` is the Namespace object itself.
      if (group === "" && namespace !== undefined && plural === undefined) {
        const nsRes = this.#resources.find((x) => x.group === "" && x.plural === "namespaces");
        if (nsRes)
          return { res: nsRes, version, namespace: undefined, name: namespace, sub: undefined };
      }
      return undefined;
    }
    if (namespace !== undefined && !res.namespaced) return undefined;
    return { res, version, namespace, name, sub };
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://fake");
    const query = Object.fromEntries(url.searchParams);
    this.requests.push({
      method: req.method ?? "GET",
      path: url.pathname,
      query,
      authorization: req.headers.authorization,
    });
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      try {
        this.#serve(req, res, url, query, body);
      } catch (err) {
        this.#reply(
          res,
          500,
          statusBody(500, "InternalError", err instanceof Error ? err.message : String(err)),
        );
      }
    });
  }

  #reply(res: ServerResponse, code: number, body: Json): void {
    const text = JSON.stringify(body);
    res.writeHead(code, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
    });
    res.end(text);
  }

  #serve(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    query: Record<string, string>,
    body: string,
  ): void {
    if (url.pathname === "/apis/authentication.k8s.io/v1/tokenreviews") {
      this.#tokenReview(req.method ?? "GET", body, res);
      return;
    }
    const route = this.#route(url.pathname);
    if (route === undefined) {
      this.#reply(
        res,
        404,
        statusBody(404, "NotFound", "the server could not find the requested resource"),
      );
      return;
    }
    const { res: resource, version, namespace, name, sub } = route;
    const apiVersion = apiVersionOf(resource, version);
    const method = req.method ?? "GET";
    const parse = (): Json | undefined => {
      try {
        const v: unknown = JSON.parse(body);
        return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Json) : undefined;
      } catch {
        return undefined;
      }
    };
    if (name === undefined) {
      if (method === "GET" && (query["watch"] === "1" || query["watch"] === "true")) {
        this.#watch(res, resource, apiVersion, namespace, query);
      } else if (method === "GET") {
        this.#list(res, resource, apiVersion, namespace, query);
      } else if (method === "POST") {
        const obj = parse();
        if (obj === undefined)
          return this.#reply(res, 400, statusBody(400, "BadRequest", "body is not a JSON object"));
        if (namespace !== undefined) meta(obj)["namespace"] = namespace;
        const r = this.#create(resource, obj);
        this.#reply(res, r.code, r.ok ? this.#withType(resource, apiVersion, r.body) : r.body);
      } else {
        this.#reply(
          res,
          405,
          statusBody(405, "MethodNotAllowed", `${method} is not allowed on a collection`),
        );
      }
      return;
    }
    if (
      sub !== undefined &&
      !(sub === "status" && (resource.status || resource.plural === "pods"))
    ) {
      return this.#reply(
        res,
        404,
        statusBody(404, "NotFound", `the server could not find the requested resource (${sub})`),
      );
    }
    const ns = namespace ?? "";
    const id = this.#id(resource, ns, name);
    const cur = this.#objects.get(resource)!.get(id);
    const part = sub === "status" ? "status" : "main";
    switch (method) {
      case "GET":
        if (cur === undefined)
          return this.#reply(
            res,
            404,
            statusBody(404, "NotFound", `${resource.plural} "${name}" not found`),
          );
        return this.#reply(res, 200, this.#withType(resource, apiVersion, cur));
      case "PUT": {
        const obj = parse();
        if (obj === undefined)
          return this.#reply(res, 400, statusBody(400, "BadRequest", "body is not a JSON object"));
        const r = this.#replace(resource, ns, name, obj, part, true);
        return this.#reply(
          res,
          r.code,
          r.ok ? this.#withType(resource, apiVersion, r.body) : r.body,
        );
      }
      case "PATCH": {
        const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim();
        if (
          type !== "application/merge-patch+json" &&
          type !== "application/strategic-merge-patch+json"
        ) {
          return this.#reply(
            res,
            415,
            statusBody(
              415,
              "UnsupportedMediaType",
              `the fake API server supports merge-patch only, not "${type}"`,
            ),
          );
        }
        if (cur === undefined)
          return this.#reply(
            res,
            404,
            statusBody(404, "NotFound", `${resource.plural} "${name}" not found`),
          );
        const patch = parse();
        if (patch === undefined)
          return this.#reply(res, 400, statusBody(400, "BadRequest", "patch is not a JSON object"));
        const next = mergePatch(cur, patch) as Json;
        const r = this.#replace(resource, ns, name, next, part, false);
        return this.#reply(
          res,
          r.code,
          r.ok ? this.#withType(resource, apiVersion, r.body) : r.body,
        );
      }
      case "DELETE": {
        const r = this.#delete(resource, ns, name);
        return this.#reply(
          res,
          r.code,
          r.ok ? this.#withType(resource, apiVersion, r.body) : r.body,
        );
      }
      default:
        return this.#reply(
          res,
          405,
          statusBody(405, "MethodNotAllowed", `${method} is not allowed`),
        );
    }
  }

  #items(resource: FakeResource, apiVersion: string, namespace: string | undefined): Json[] {
    const out: Json[] = [];
    const sorted = [...this.#objects.get(resource)!.entries()].sort((a, b) =>
      a[0] < b[0] ? -1 : 1,
    );
    for (const [, o] of sorted) {
      if (namespace !== undefined && meta(o)["namespace"] !== namespace) continue;
      out.push(resource.builtIn ? clone(o) : this.#withType(resource, apiVersion, clone(o)));
    }
    return out;
  }

  #list(
    res: ServerResponse,
    resource: FakeResource,
    apiVersion: string,
    namespace: string | undefined,
    q: Record<string, string>,
  ): void {
    const limit = q["limit"] !== undefined ? Number(q["limit"]) : 0;
    let items: Json[];
    let rv: number;
    let offset = 0;
    if (q["continue"] !== undefined && q["continue"] !== "") {
      const [token, off] = q["continue"].split(":");
      const page = this.#pages.get(token ?? "");
      if (page === undefined) {
        return this.#reply(
          res,
          410,
          statusBody(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
          ),
        );
      }
      ({ items, rv } = page);
      offset = Number(off);
    } else {
      items = this.#items(resource, apiVersion, namespace);
      rv = this.#rv;
    }
    const metadata: Json = { resourceVersion: String(rv) };
    let pageItems = items.slice(offset);
    if (limit > 0 && pageItems.length > limit) {
      pageItems = pageItems.slice(0, limit);
      const token = q["continue"]?.split(":")[0] || randomUUID();
      this.#pages.set(token, { items, rv });
      metadata["continue"] = `${token}:${offset + limit}`;
      metadata["remainingItemCount"] = items.length - offset - limit;
    }
    this.#reply(res, 200, { kind: `${resource.kind}List`, apiVersion, metadata, items: pageItems });
  }

  #send(w: Watcher, event: Json): void {
    // Tests move little data; a slow reader only buffers in this process.
    w.res.write(JSON.stringify(event) + "\n");
  }

  #bookmark(w: Watcher): void {
    this.#send(w, {
      type: "BOOKMARK",
      object: {
        kind: w.resource.kind,
        apiVersion: w.apiVersion,
        metadata: { resourceVersion: String(this.#rv) },
      },
    });
  }

  #watch(
    res: ServerResponse,
    resource: FakeResource,
    apiVersion: string,
    namespace: string | undefined,
    q: Record<string, string>,
  ): void {
    const from = q["resourceVersion"];
    const expired =
      from !== undefined && from !== "" && from !== "0" && Number(from) < this.#compactedRv;
    if (expired && this.#expiredWatch === "http") {
      return this.#reply(
        res,
        410,
        statusBody(410, "Expired", `too old resource version: ${from} (${this.#compactedRv})`),
      );
    }
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders();
    const w: Watcher = {
      resource,
      apiVersion,
      namespace,
      res,
      bookmarks: q["allowWatchBookmarks"] === "true" || q["allowWatchBookmarks"] === "1",
      timer: undefined,
    };
    if (expired) {
      this.#send(w, {
        type: "ERROR",
        object: statusBody(
          410,
          "Expired",
          `too old resource version: ${from} (${this.#compactedRv})`,
        ),
      });
      res.end();
      return;
    }
    const inNs = (o: Json) => namespace === undefined || meta(o)["namespace"] === namespace;
    if (from === undefined || from === "" || from === "0") {
      // "Start at most recent": the current state as ADDED events, then changes.
      for (const o of this.#objects.get(resource)!.values()) {
        if (inNs(o))
          this.#send(w, { type: "ADDED", object: this.#withType(resource, apiVersion, o) });
      }
    } else {
      for (const ev of this.#history) {
        if (ev.resource === resource && ev.rv > Number(from) && inNs(ev.object)) {
          this.#send(w, { type: ev.type, object: this.#withType(resource, apiVersion, ev.object) });
        }
      }
    }
    this.#watchers.add(w);
    if (w.bookmarks && this.#bookmarkIntervalMs > 0) {
      w.timer = setInterval(() => this.#bookmark(w), this.#bookmarkIntervalMs);
    }
    const timeout = Number(q["timeoutSeconds"] ?? 0);
    let ender: NodeJS.Timeout | undefined;
    if (timeout > 0) {
      ender = setTimeout(() => {
        // The real server ends a timed-out watch cleanly.
        this.#watchers.delete(w);
        clearInterval(w.timer);
        res.end();
      }, timeout * 1000);
    }
    res.on("close", () => {
      clearTimeout(ender);
      clearInterval(w.timer);
      this.#watchers.delete(w);
    });
  }

  /**
   * TokenReview as the API server answers it: 201 with `status.authenticated`, the user, and
   * the audiences the token was valid for (the intersection with the requested ones). A token
   * unknown, or valid for none of the requested audiences, is `authenticated: false` with an
   * error, never an HTTP error.
   */
  #tokenReview(method: string, body: string, res: ServerResponse): void {
    if (method !== "POST") {
      return this.#reply(
        res,
        405,
        statusBody(405, "MethodNotAllowed", `${method} is not allowed on tokenreviews`),
      );
    }
    let review: Json;
    try {
      review = JSON.parse(body) as Json;
    } catch {
      return this.#reply(res, 400, statusBody(400, "BadRequest", "body is not JSON"));
    }
    const spec = (review["spec"] ?? {}) as { token?: unknown; audiences?: unknown };
    if (typeof spec.token !== "string" || spec.token === "") {
      return this.#reply(res, 400, statusBody(400, "BadRequest", "spec.token is required"));
    }
    const wanted = Array.isArray(spec.audiences)
      ? spec.audiences.filter((a): a is string => typeof a === "string")
      : [];
    const user = this.#tokens.get(spec.token);
    const tokenAudiences = user?.audiences ?? ["https://kubernetes.default.svc"];
    const granted =
      wanted.length === 0 ? tokenAudiences : tokenAudiences.filter((a) => wanted.includes(a));
    let status: Json;
    if (user === undefined) {
      status = { authenticated: false, error: "invalid bearer token" };
    } else if (granted.length === 0) {
      status = { authenticated: false, error: "invalid bearer token, token audiences is invalid" };
    } else {
      status = {
        authenticated: true,
        audiences: [...granted],
        user: {
          username: user.username,
          ...(user.uid !== undefined ? { uid: user.uid } : {}),
          groups: [...(user.groups ?? [])],
          ...(user.extra !== undefined ? { extra: clone(user.extra) } : {}),
        },
      };
    }
    this.#reply(res, 201, {
      kind: "TokenReview",
      apiVersion: "authentication.k8s.io/v1",
      metadata: { creationTimestamp: null },
      spec: { token: spec.token, ...(wanted.length > 0 ? { audiences: wanted } : {}) },
      status,
    });
  }
}

function apiVersionOf(res: FakeResource, version: string): string {
  return res.group === "" ? version : `${res.group}/${version}`;
}
