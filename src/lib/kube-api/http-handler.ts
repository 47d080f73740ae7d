/**
 * The Kubernetes REST protocol over a Registry: the real API paths for core and grouped,
 * namespaced and cluster-scoped resources; list (with label/field selectors and limit/continue
 * pages at one resourceVersion); watch (replay from a resourceVersion, bookmarks,
 * `timeoutSeconds`, `410 Gone` as an ERROR event or an HTTP 410, selector transitions as
 * ADDED/DELETED); get, create, PUT, PATCH (merge, strategic-as-merge, JSON patch) and DELETE;
 * the status and binding subresources; discovery (`/api`, `/apis`, resource lists), `/version`
 * and the health endpoints. List items of built-in resources carry no apiVersion/kind, as on a
 * real server; custom resources' items do.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { StoreEvent } from "./object-store.ts";
import { patchTypeOf } from "./patch.ts";
import type { DeleteOptions, Registry, WriteContext } from "./registry.ts";
import { apiVersionOf, type ApiResource } from "./resources.ts";
import { selectorOf, type Selector } from "./selectors.ts";
import { isObject, metaOf, statusBody, str, type ApiOutcome, type Json } from "./status.ts";

export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** The Authorization header, if any. */
  readonly authorization: string | undefined;
}

export interface KubeApiHandlerOptions {
  readonly registry: Registry;
  /** The user a request acts as, or undefined to refuse it with 401 (health and version are open). */
  readonly authenticate?: (req: IncomingMessage) => string | undefined;
  /** How a watch from a compacted resourceVersion fails: an ERROR event (the real server) or HTTP 410. */
  readonly expiredWatch?: "event" | "http";
  /** Period of automatic bookmarks on watches that allow them; 0 sends them only on sendBookmarks(). */
  readonly bookmarkIntervalMs?: number;
  /** Called for every request before it is served (tests record them). */
  readonly onRequest?: (r: RequestRecord) => void;
  /** Largest request body accepted. */
  readonly maxBodyBytes?: number;
  /** A watch whose client reads slower than events come is cut once this much is queued. */
  readonly maxWatchBacklogBytes?: number;
  /** Answer to /readyz (the server may have pieces still syncing). */
  readonly ready?: () => boolean;
  readonly gitVersion?: string;
  /**
   * Answers `authentication.k8s.io/v1` TokenReviews: the review's `status` for a token and the
   * audiences asked for. Without it, POSTs to tokenreviews get 404 like any unserved resource.
   */
  readonly tokenReview?: (token: string, audiences: readonly string[]) => Json;
}

interface Watcher {
  readonly resource: ApiResource;
  readonly apiVersion: string;
  readonly namespace: string | undefined;
  readonly selector: Selector | undefined;
  readonly res: ServerResponse;
  readonly bookmarks: boolean;
  timer: NodeJS.Timeout | undefined;
}

interface Route {
  readonly res: ApiResource;
  readonly version: string;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly sub: string | undefined;
}

const OPEN_PATHS = new Set(["/healthz", "/readyz", "/livez", "/version"]);
const MAX_PAGES = 256;

export class KubeApiHandler {
  readonly #registry: Registry;
  readonly #opts: KubeApiHandlerOptions;
  readonly #watchers = new Set<Watcher>();
  readonly #pages = new Map<string, { items: Json[]; rv: number }>();
  readonly #unsubscribe: () => void;

  constructor(opts: KubeApiHandlerOptions) {
    this.#registry = opts.registry;
    this.#opts = opts;
    this.#unsubscribe = this.#registry.store.subscribe((ev) => this.#dispatch(ev));
  }

  get watchCount(): number {
    return this.#watchers.size;
  }

  /** Ends every watch and stops listening to the store. */
  close(): void {
    this.dropWatches();
    this.#unsubscribe();
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

  /** Forgets list continuation tokens (their lists would now be inconsistent). */
  expirePages(): void {
    this.#pages.clear();
  }

  /** The request listener: `createServer((req, res) => handler.handle(req, res))`. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://apiserver");
    const query = Object.fromEntries(url.searchParams);
    this.#opts.onRequest?.({
      method: req.method ?? "GET",
      path: url.pathname,
      query,
      authorization: req.headers.authorization,
    });
    let user = "anonymous";
    if (this.#opts.authenticate && !OPEN_PATHS.has(url.pathname)) {
      const who = this.#opts.authenticate(req);
      if (who === undefined) {
        req.resume();
        this.#reply(res, 401, statusBody(401, "Unauthorized", "Unauthorized"));
        return;
      }
      user = who;
    }
    const limit = this.#opts.maxBodyBytes ?? 3 * 1024 * 1024;
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) tooBig = true;
      else chunks.push(c);
    });
    req.on("end", () => {
      if (tooBig) {
        this.#reply(
          res,
          413,
          statusBody(413, "RequestEntityTooLarge", `request body over ${limit} bytes`),
        );
        return;
      }
      const body = Buffer.concat(chunks).toString("utf8");
      try {
        this.#serve(req, res, url, query, body, { user });
      } catch (err) {
        this.#reply(
          res,
          500,
          statusBody(500, "InternalError", err instanceof Error ? err.message : String(err)),
        );
      }
    });
  }

  #reply(res: ServerResponse, code: number, body: unknown, type = "application/json"): void {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    res.writeHead(code, { "content-type": type, "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  #answer(res: ServerResponse, r: ApiOutcome, resource: ApiResource, apiVersion: string): void {
    if (!r.ok) return this.#reply(res, r.code, r.status);
    const body =
      r.object["kind"] === "Status" ? r.object : { ...r.object, apiVersion, kind: resource.kind };
    this.#reply(res, r.code, body);
  }

  #route(path: string): Route | undefined {
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
    const [plural, name, sub, ...extra] = rest;
    if (extra.length > 0) return undefined;
    const table = this.#registry.store.resources;
    const res = plural === undefined ? undefined : table.forPlural(group, plural);
    if (res === undefined || !res.versions.includes(version)) {
      // `/api/v1/namespaces/foo` is the Namespace object itself.
      if (group === "" && namespace !== undefined && plural === undefined) {
        const nsRes = table.forPlural("", "namespaces");
        if (nsRes)
          return { res: nsRes, version, namespace: undefined, name: namespace, sub: undefined };
      }
      return undefined;
    }
    if (namespace !== undefined && !res.namespaced) return undefined;
    return { res, version, namespace, name, sub };
  }

  #discovery(res: ServerResponse, path: string): boolean {
    const all = this.#registry.store.resources.all;
    const resourceList = (groupVersion: string, list: readonly ApiResource[]) => ({
      kind: "APIResourceList",
      apiVersion: "v1",
      groupVersion,
      resources: list.flatMap((r) => {
        const verbs = ["create", "delete", "get", "list", "patch", "update", "watch"];
        const main = {
          name: r.plural,
          singularName: r.kind.toLowerCase(),
          namespaced: r.namespaced,
          kind: r.kind,
          verbs,
          ...(r.shortNames ? { shortNames: r.shortNames } : {}),
        };
        const subs = [];
        if (r.status) {
          subs.push({
            name: `${r.plural}/status`,
            singularName: "",
            namespaced: r.namespaced,
            kind: r.kind,
            verbs: ["get", "patch", "update"],
          });
        }
        if (r.plural === "pods" && r.group === "") {
          subs.push({
            name: "pods/binding",
            singularName: "",
            namespaced: true,
            kind: "Binding",
            verbs: ["create"],
          });
        }
        return [main, ...subs];
      }),
    });
    if (path === "/api") {
      this.#reply(res, 200, {
        kind: "APIVersions",
        versions: ["v1"],
        serverAddressByClientCIDRs: [],
      });
      return true;
    }
    if (path === "/api/v1") {
      this.#reply(
        res,
        200,
        resourceList(
          "v1",
          all.filter((r) => r.group === ""),
        ),
      );
      return true;
    }
    const groups = new Map<string, string[]>();
    for (const r of all) {
      if (r.group === "") continue;
      const vs = groups.get(r.group) ?? [];
      for (const v of r.versions) if (!vs.includes(v)) vs.push(v);
      groups.set(r.group, vs);
    }
    const groupBody = (name: string, versions: string[]) => ({
      name,
      versions: versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v })),
      preferredVersion: { groupVersion: `${name}/${versions[0]}`, version: versions[0] },
    });
    if (path === "/apis") {
      this.#reply(res, 200, {
        kind: "APIGroupList",
        apiVersion: "v1",
        groups: [...groups].map(([g, vs]) => groupBody(g, vs)),
      });
      return true;
    }
    const m = /^\/apis\/([^/]+)(?:\/([^/]+))?$/.exec(path);
    if (m && groups.has(m[1]!)) {
      const g = m[1]!;
      if (m[2] === undefined) {
        this.#reply(res, 200, {
          kind: "APIGroup",
          apiVersion: "v1",
          ...groupBody(g, groups.get(g)!),
        });
        return true;
      }
      const list = all.filter((r) => r.group === g && r.versions.includes(m[2]!));
      if (list.length === 0) return false;
      this.#reply(res, 200, resourceList(`${g}/${m[2]}`, list));
      return true;
    }
    return false;
  }

  /**
   * TokenReview as the API server answers it: 201 with the review's status (authenticated or not,
   * with an error); only a malformed review is an HTTP error.
   */
  #tokenReview(
    res: ServerResponse,
    method: string,
    body: string,
    review: (token: string, audiences: readonly string[]) => Json,
  ): void {
    if (method !== "POST") {
      return this.#reply(
        res,
        405,
        statusBody(405, "MethodNotAllowed", `${method} is not allowed on tokenreviews`),
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return this.#reply(res, 400, statusBody(400, "BadRequest", "body is not JSON"));
    }
    const spec = isObject(parsed) && isObject(parsed["spec"]) ? parsed["spec"] : {};
    const token = spec["token"];
    if (typeof token !== "string" || token === "") {
      return this.#reply(res, 400, statusBody(400, "BadRequest", "spec.token is required"));
    }
    const audiences = Array.isArray(spec["audiences"])
      ? spec["audiences"].filter((a): a is string => typeof a === "string")
      : [];
    this.#reply(res, 201, {
      kind: "TokenReview",
      apiVersion: "authentication.k8s.io/v1",
      metadata: { creationTimestamp: null },
      spec: { token, ...(audiences.length > 0 ? { audiences } : {}) },
      status: review(token, audiences),
    });
  }

  #serve(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    query: Record<string, string>,
    body: string,
    ctx: WriteContext,
  ): void {
    const method = req.method ?? "GET";
    const path = url.pathname.replace(/\/+$/, "") || "/";
    if (path === "/healthz" || path === "/livez") return this.#reply(res, 200, "ok", "text/plain");
    if (path === "/readyz") {
      const ready = this.#opts.ready?.() ?? true;
      return this.#reply(res, ready ? 200 : 503, ready ? "ok" : "not ready", "text/plain");
    }
    if (path === "/version") {
      return this.#reply(res, 200, {
        major: "1",
        minor: "33",
        gitVersion: this.#opts.gitVersion ?? "v1.33.0-ambient",
        platform: `${process.platform}/${process.arch}`,
      });
    }
    if (path === "/apis/authentication.k8s.io/v1/tokenreviews" && this.#opts.tokenReview) {
      return this.#tokenReview(res, method, body, this.#opts.tokenReview);
    }
    if (method === "GET" && this.#discovery(res, path)) return;
    const route = this.#route(path);
    if (route === undefined) {
      return this.#reply(
        res,
        404,
        statusBody(404, "NotFound", "the server could not find the requested resource"),
      );
    }
    const { res: resource, version, namespace, name, sub } = route;
    const apiVersion = apiVersionOf(resource, version);
    const registry = this.#registry;
    const parse = (): Json | undefined => {
      try {
        const v: unknown = JSON.parse(body);
        return isObject(v) ? v : undefined;
      } catch {
        return undefined;
      }
    };
    const badBody = () =>
      this.#reply(res, 400, statusBody(400, "BadRequest", "the request body is not a JSON object"));

    if (name === undefined) {
      if (method === "GET") {
        const sel = selectorOf(query);
        if (!sel.ok) return this.#reply(res, 400, statusBody(400, "BadRequest", sel.reason));
        if (query["watch"] === "1" || query["watch"] === "true") {
          return this.#watch(res, resource, apiVersion, namespace, sel.value, query);
        }
        return this.#list(res, resource, apiVersion, namespace, sel.value, query);
      }
      if (method === "POST") {
        const obj = parse();
        if (obj === undefined) return badBody();
        return this.#answer(
          res,
          registry.create(ctx, resource, namespace, obj),
          resource,
          apiVersion,
        );
      }
      return this.#reply(
        res,
        405,
        statusBody(405, "MethodNotAllowed", `${method} is not allowed on a collection`),
      );
    }

    const ns = namespace ?? "";
    if (sub === "binding" && resource.plural === "pods" && resource.group === "") {
      if (method !== "POST")
        return this.#reply(res, 405, statusBody(405, "MethodNotAllowed", "binding takes POST"));
      const obj = parse();
      if (obj === undefined) return badBody();
      const r = registry.bind(ctx, ns, name, obj);
      return r.ok ? this.#reply(res, r.code, r.object) : this.#reply(res, r.code, r.status);
    }
    if (sub !== undefined && !(sub === "status" && resource.status)) {
      return this.#reply(
        res,
        404,
        statusBody(404, "NotFound", `the server could not find the requested resource (${sub})`),
      );
    }
    const part = sub === "status" ? "status" : "";
    switch (method) {
      case "GET": {
        const cur = registry.store.get(resource, ns, name);
        if (cur === undefined) {
          return this.#reply(
            res,
            404,
            statusBody(404, "NotFound", `${resource.plural} "${name}" not found`),
          );
        }
        return this.#reply(res, 200, { ...cur, apiVersion, kind: resource.kind });
      }
      case "PUT": {
        const obj = parse();
        if (obj === undefined) return badBody();
        return this.#answer(
          res,
          registry.update(ctx, resource, ns, name, obj, part),
          resource,
          apiVersion,
        );
      }
      case "PATCH": {
        const type = patchTypeOf(req.headers["content-type"] ?? "");
        if (type === undefined) {
          return this.#reply(
            res,
            415,
            statusBody(
              415,
              "UnsupportedMediaType",
              `unsupported patch type "${req.headers["content-type"] ?? ""}"; use application/merge-patch+json, application/strategic-merge-patch+json or application/json-patch+json`,
            ),
          );
        }
        let patch: unknown;
        try {
          patch = JSON.parse(body);
        } catch {
          return this.#reply(res, 400, statusBody(400, "BadRequest", "the patch is not JSON"));
        }
        return this.#answer(
          res,
          registry.patch(ctx, resource, ns, name, type, patch, part),
          resource,
          apiVersion,
        );
      }
      case "DELETE": {
        const opts = deleteOptions(body, query);
        if (opts === undefined) return badBody();
        return this.#answer(
          res,
          registry.delete(ctx, resource, ns, name, opts),
          resource,
          apiVersion,
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

  #items(
    resource: ApiResource,
    apiVersion: string,
    namespace: string | undefined,
    sel: Selector | undefined,
  ): Json[] {
    const out: Json[] = [];
    for (const o of this.#registry.store.list(resource, namespace)) {
      if (sel !== undefined && !sel(o)) continue;
      out.push(resource.builtIn ? o : { ...o, apiVersion, kind: resource.kind });
    }
    return out;
  }

  #list(
    res: ServerResponse,
    resource: ApiResource,
    apiVersion: string,
    namespace: string | undefined,
    sel: Selector | undefined,
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
      items = this.#items(resource, apiVersion, namespace, sel);
      rv = this.#registry.store.resourceVersion;
    }
    const metadata: Json = { resourceVersion: String(rv) };
    let pageItems = items.slice(offset);
    if (limit > 0 && pageItems.length > limit) {
      pageItems = pageItems.slice(0, limit);
      const token = q["continue"]?.split(":")[0] || randomUUID();
      if (!this.#pages.has(token) && this.#pages.size >= MAX_PAGES) {
        // The oldest continuation goes; its client relists (410), as after a real compaction.
        this.#pages.delete(this.#pages.keys().next().value!);
      }
      this.#pages.set(token, { items, rv });
      metadata["continue"] = `${token}:${offset + limit}`;
      metadata["remainingItemCount"] = items.length - offset - limit;
    } else if (q["continue"] !== undefined && q["continue"] !== "") {
      this.#pages.delete(q["continue"].split(":")[0] ?? "");
    }
    this.#reply(res, 200, { kind: `${resource.kind}List`, apiVersion, metadata, items: pageItems });
  }

  #send(w: Watcher, event: Json): void {
    w.res.write(JSON.stringify(event) + "\n");
    if (w.res.writableLength > (this.#opts.maxWatchBacklogBytes ?? 16 * 1024 * 1024)) {
      // A client this far behind is cut; it resumes from its last resourceVersion.
      this.#watchers.delete(w);
      clearInterval(w.timer);
      w.res.destroy();
    }
  }

  #bookmark(w: Watcher): void {
    this.#send(w, {
      type: "BOOKMARK",
      object: {
        kind: w.resource.kind,
        apiVersion: w.apiVersion,
        metadata: { resourceVersion: String(this.#registry.store.resourceVersion) },
      },
    });
  }

  /** The event a watcher gets for a store event, if any (selectors turn changes into ADDED/DELETED). */
  #eventFor(w: Watcher, ev: StoreEvent): Json | undefined {
    const inNs = (o: Json | undefined) =>
      o !== undefined && (w.namespace === undefined || metaOf(o)["namespace"] === w.namespace);
    if (!inNs(ev.object)) return undefined;
    const typed = (o: Json) => ({ ...o, apiVersion: w.apiVersion, kind: w.resource.kind });
    if (w.selector === undefined) return { type: ev.type, object: typed(ev.object) };
    const now = ev.type !== "DELETED" && w.selector(ev.object);
    const before = ev.old !== undefined && w.selector(ev.old);
    if (ev.type === "DELETED")
      return before ? { type: "DELETED", object: typed(ev.object) } : undefined;
    if (now && before) return { type: "MODIFIED", object: typed(ev.object) };
    if (now) return { type: "ADDED", object: typed(ev.object) };
    if (before) return { type: "DELETED", object: typed(ev.object) };
    return undefined;
  }

  #dispatch(ev: StoreEvent): void {
    for (const w of this.#watchers) {
      if (w.resource !== ev.resource) continue;
      const out = this.#eventFor(w, ev);
      if (out !== undefined) this.#send(w, out);
    }
  }

  #watch(
    res: ServerResponse,
    resource: ApiResource,
    apiVersion: string,
    namespace: string | undefined,
    selector: Selector | undefined,
    q: Record<string, string>,
  ): void {
    const store = this.#registry.store;
    const from = q["resourceVersion"];
    const fresh = from === undefined || from === "" || from === "0";
    const replay = fresh ? [] : store.eventsSince(resource, namespace, Number(from));
    if (replay === "expired" && this.#opts.expiredWatch === "http") {
      return this.#reply(
        res,
        410,
        statusBody(
          410,
          "Expired",
          `too old resource version: ${from} (${store.compactedResourceVersion})`,
        ),
      );
    }
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders();
    const w: Watcher = {
      resource,
      apiVersion,
      namespace,
      selector,
      res,
      bookmarks: q["allowWatchBookmarks"] === "true" || q["allowWatchBookmarks"] === "1",
      timer: undefined,
    };
    if (replay === "expired") {
      this.#send(w, {
        type: "ERROR",
        object: statusBody(
          410,
          "Expired",
          `too old resource version: ${from} (${store.compactedResourceVersion})`,
        ),
      });
      res.end();
      return;
    }
    if (fresh) {
      // "Start at most recent": the current state as ADDED events, then changes.
      for (const o of store.list(resource, namespace)) {
        if (selector === undefined || selector(o)) {
          this.#send(w, { type: "ADDED", object: { ...o, apiVersion, kind: resource.kind } });
        }
      }
    } else {
      for (const ev of replay) {
        const out = this.#eventFor(w, ev);
        if (out !== undefined) this.#send(w, out);
      }
    }
    if (res.destroyed) return;
    this.#watchers.add(w);
    const interval = this.#opts.bookmarkIntervalMs ?? 0;
    if (w.bookmarks && interval > 0) w.timer = setInterval(() => this.#bookmark(w), interval);
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
}

/** DeleteOptions from the body (kubectl sends them there) or the query. */
function deleteOptions(body: string, q: Record<string, string>): DeleteOptions | undefined {
  let b: Json = {};
  if (body.trim() !== "") {
    try {
      const v: unknown = JSON.parse(body);
      if (!isObject(v)) return undefined;
      b = v;
    } catch {
      return undefined;
    }
  }
  const grace =
    typeof b["gracePeriodSeconds"] === "number"
      ? b["gracePeriodSeconds"]
      : q["gracePeriodSeconds"] !== undefined
        ? Number(q["gracePeriodSeconds"])
        : undefined;
  const pre = isObject(b["preconditions"]) ? b["preconditions"] : {};
  const preconditions = {
    ...(str(pre["uid"]) !== "" ? { uid: str(pre["uid"]) } : {}),
    ...(str(pre["resourceVersion"]) !== "" ? { resourceVersion: str(pre["resourceVersion"]) } : {}),
  };
  return {
    ...(grace !== undefined && Number.isFinite(grace) ? { gracePeriodSeconds: grace } : {}),
    preconditions,
  };
}
