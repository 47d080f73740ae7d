/**
 * A local stand-in for the Kubernetes API server, to test list/watch clients faithfully. The
 * protocol engine is the production one (src/lib/kube-api: one resourceVersion counter, lists
 * with limit/continue pages, watches replaying history from a resourceVersion, bookmarks,
 * `timeoutSeconds`, 410 Gone, status subresources, merge patches, the real API paths); this
 * wrapper serves it on 127.0.0.1 with no admission and adds the failure-injection knobs tests
 * need: compaction, dropped watch streams, bookmarks on demand, a record of every request.
 *
 * Tests drive it over HTTP like a client would, or directly (create/update/remove/compact/
 * dropWatches/sendBookmarks), which produce the same events.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  DEFAULT_RESOURCES as LIB_RESOURCES,
  KubeApiHandler,
  ObjectStore,
  Registry,
  SYSTEM,
  metaOf,
  str,
  type ApiResource,
  type Json,
  type RequestRecord,
} from "../lib/kube-api/index.ts";

export type FakeResource = ApiResource;
export type { RequestRecord };

/**
 * The resources Ambient's config sources read, as a cluster with Istio and Gateway API CRDs
 * serves them (the production table less ReplicaSets, which only controllers use).
 */
export const DEFAULT_RESOURCES: readonly FakeResource[] = LIB_RESOURCES.filter(
  (r) => r.kind !== "ReplicaSet",
);

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

export class FakeKubeApi {
  readonly #store: ObjectStore;
  readonly #registry: Registry;
  readonly #handler: KubeApiHandler;
  readonly #server: Server;
  readonly #tokens: Map<string, FakeTokenUser>;
  readonly requests: RequestRecord[] = [];

  constructor(opts: FakeKubeApiOptions = {}) {
    this.#tokens = new Map(Object.entries(opts.tokens ?? {}));
    this.#store = new ObjectStore({ resources: opts.resources ?? DEFAULT_RESOURCES });
    this.#registry = new Registry(this.#store);
    this.#handler = new KubeApiHandler({
      registry: this.#registry,
      expiredWatch: opts.expiredWatch ?? "event",
      bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 0,
      onRequest: (r) => this.requests.push(r),
      tokenReview: (token, audiences) => this.#review(token, audiences),
    });
    this.#server = createServer((req, res) => this.#handler.handle(req, res));
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
    return String(this.#store.resourceVersion);
  }

  get watchCount(): number {
    return this.#handler.watchCount;
  }

  async close(): Promise<void> {
    this.#handler.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // ---- direct control -------------------------------------------------------------------------

  /** Makes TokenReview accept `token` as `user` (undefined revokes it). */
  setToken(token: string, user: FakeTokenUser | undefined): void {
    if (user === undefined) this.#tokens.delete(token);
    else this.#tokens.set(token, user);
  }

  /**
   * A TokenReview's status: the user and the audiences the token is valid for (the intersection
   * with the requested ones); an unknown token, or one valid for none of them, is unauthenticated.
   */
  #review(token: string, wanted: readonly string[]): Json {
    const user = this.#tokens.get(token);
    if (user === undefined) return { authenticated: false, error: "invalid bearer token" };
    const tokenAudiences = user.audiences ?? ["https://kubernetes.default.svc"];
    const granted =
      wanted.length === 0 ? tokenAudiences : tokenAudiences.filter((a) => wanted.includes(a));
    if (granted.length === 0) {
      return { authenticated: false, error: "invalid bearer token, token audiences is invalid" };
    }
    return {
      authenticated: true,
      audiences: [...granted],
      user: {
        username: user.username,
        ...(user.uid !== undefined ? { uid: user.uid } : {}),
        groups: [...(user.groups ?? [])],
        ...(user.extra !== undefined ? { extra: structuredClone(user.extra) } : {}),
      },
    };
  }

  resourceFor(apiVersion: string, kind: string): FakeResource {
    const res = this.#store.resources.forObject(apiVersion, kind);
    if (res === undefined) throw new Error(`fake API server does not serve ${apiVersion} ${kind}`);
    return res;
  }

  /** Creates an object (as POST would). */
  create(obj: Json): Json {
    const res = this.resourceFor(String(obj["apiVersion"]), String(obj["kind"]));
    const r = this.#registry.create(SYSTEM, res, undefined, obj);
    if (!r.ok) throw new Error(String(r.status["message"]));
    return this.#registry.typed(res, res.versions[0]!, structuredClone(r.object));
  }

  /** Replaces an object's spec and metadata (as PUT would, without the concurrency check). */
  update(obj: Json): Json {
    const res = this.resourceFor(String(obj["apiVersion"]), String(obj["kind"]));
    const m = metaOf(obj);
    const body = structuredClone(obj);
    delete (body["metadata"] as Json)["resourceVersion"];
    const r = this.#registry.update(SYSTEM, res, str(m["namespace"]), str(m["name"]), body, "");
    if (!r.ok) throw new Error(String(r.status["message"]));
    return this.#registry.typed(res, res.versions[0]!, structuredClone(r.object));
  }

  /** Deletes an object (as DELETE would). */
  remove(apiVersion: string, kind: string, namespace: string, name: string): void {
    const res = this.resourceFor(apiVersion, kind);
    if (!this.#registry.delete(SYSTEM, res, namespace, name).ok) {
      throw new Error(`${kind} ${namespace}/${name} not found`);
    }
  }

  get(apiVersion: string, kind: string, namespace: string, name: string): Json | undefined {
    const o = this.#store.get(this.resourceFor(apiVersion, kind), namespace, name);
    return o === undefined ? undefined : structuredClone(o);
  }

  list(apiVersion: string, kind: string): Json[] {
    return this.#store.list(this.resourceFor(apiVersion, kind)).map((o) => structuredClone(o));
  }

  /** Forgets the event history: a watch from any earlier resourceVersion now gets 410 Gone. */
  compact(): void {
    this.#store.compact();
    this.#handler.expirePages();
  }

  /** Cuts every open watch stream mid-way (a network drop or an API server restart). */
  dropWatches(): void {
    this.#handler.dropWatches();
  }

  /** Sends a BOOKMARK with the current resourceVersion on every watch that allows them. */
  sendBookmarks(): void {
    this.#handler.sendBookmarks();
  }
}
