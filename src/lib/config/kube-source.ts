/**
 * The Kubernetes config source: one reflector (list, then watch) per kind, in the manner of
 * client-go's informers. A watch resumes from the last resourceVersion it saw — events, or
 * bookmarks, which it asks for — so a dropped stream loses and repeats nothing; `410 Gone`
 * (an ERROR event or an HTTP 410) means the history is compacted, and the reflector lists again,
 * which also removes objects deleted while it was away. Objects are validated like files (unknown
 * fields allowed: the server may be newer than us); an invalid one is reported and its last good
 * version kept. Status goes back through the status subresource.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "../log/index.ts";
import { fail, ok } from "../errors.ts";
import { coalesceEvents, deleteObjects, replaceKind, upsertObjects, type Cache } from "./cache.ts";
import type { ConfigEvent } from "./events.ts";
import { formatFieldPath } from "./field-path.ts";
import { ALL_KINDS, KINDS, apiPath, apiVersionOf, type Kind } from "./kinds.ts";
import { KubeHttp, statusOf } from "./kube-http.ts";
import { deepFreeze, objectKey, type ConfigObject, type ObjectKey } from "./object.ts";
import type { ConfigProblem } from "./problem.ts";
import { StoreBase, type StatusUpdate, type StatusWriteResult } from "./store.ts";
import { validateObject } from "./validate.ts";

export interface KubeSourceOptions {
  readonly kubeConfig: KubeConfig;
  readonly log: Logger;
  /** Kinds to read; all by default. */
  readonly kinds?: readonly Kind[];
  /** Read namespaced kinds in this namespace only. */
  readonly namespace?: string;
  /** Page size of lists. */
  readonly pageSize?: number;
  /** Server-side watch timeout; by default 5–10 minutes, random per watch (as client-go). */
  readonly watchTimeoutSeconds?: number;
  /** Retry delays after failures: doubling from `initialMs` up to `maxMs`, with jitter. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** How often to look again for a kind the server does not serve (CRD not installed). */
  readonly unservedRetryMs?: number;
}

type Json = Record<string, unknown>;
type QueueItem = { readonly set: ConfigObject } | { readonly remove: ObjectKey };

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function isObj(v: unknown): v is Json {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

export class KubeConfigStore extends StoreBase {
  readonly source = "kubernetes";
  readonly #http: KubeHttp;
  readonly #kinds: readonly Kind[];
  readonly #opts: KubeSourceOptions;
  readonly #abort = new AbortController();
  readonly #version = new Map<Kind, string>();
  readonly #listed = new Set<Kind>();
  readonly #rv = new Map<Kind, string>();
  #queue: QueueItem[] = [];
  #flushScheduled = false;
  #loops: Promise<void>[] = [];

  constructor(opts: KubeSourceOptions) {
    super(opts.log);
    this.#opts = opts;
    this.#http = new KubeHttp(opts.kubeConfig);
    this.#kinds = opts.kinds ?? ALL_KINDS;
  }

  start(): Promise<void> {
    if (this.#loops.length === 0) {
      this.#loops = this.#kinds.map((k) =>
        this.#reflect(k).catch((err: unknown) => {
          this.log.error("config reflector stopped", { kind: k, error: String(err) });
        }),
      );
      if (this.#kinds.length === 0) this.markSynced();
    }
    return this.synced;
  }

  async close(): Promise<void> {
    this.#abort.abort();
    await Promise.all(this.#loops);
  }

  /**
   * The resourceVersion a kind's reflector has reached (from its list, events and bookmarks): where
   * its next watch resumes. For debugging and tests.
   */
  resourceVersion(kind: Kind): string | undefined {
    return this.#rv.get(kind);
  }

  /** The apiVersion a kind is read with (the first version the server serves). */
  servedVersion(kind: Kind): string | undefined {
    const v = this.#version.get(kind);
    return v === undefined ? undefined : apiVersionOf(KINDS[kind].group, v);
  }

  async writeStatus(update: StatusUpdate): Promise<StatusWriteResult> {
    const kind: Kind = update.type === "status" ? update.kind : "Pod";
    const version = this.#version.get(kind) ?? KINDS[kind].versions[0]!;
    const path = apiPath(kind, version, {
      namespace: update.namespace,
      name: update.name,
      subresource: "status",
    });
    const body =
      update.type === "status"
        ? { status: update.status }
        : { metadata: { annotations: update.annotations } };
    let res;
    try {
      res = await this.#http.call("PATCH", path, {
        body,
        contentType: "application/merge-patch+json",
        signal: this.#abort.signal,
      });
    } catch (err) {
      return fail({
        code: "unavailable",
        message: `PATCH ${path}: ${err instanceof Error ? err.message : String(err)}`,
      });
    }
    const key = objectKey(kind, KINDS[kind].namespaced ? update.namespace : "", update.name);
    if (res.status !== 200) {
      const s = statusOf(res.body);
      const message = `PATCH ${path}: ${res.status} ${s.reason ?? ""} ${s.message ?? ""}`.trim();
      const code =
        res.status === 404
          ? "not-found"
          : res.status === 409
            ? "conflict"
            : res.status === 400 || res.status === 422
              ? "invalid"
              : "unavailable";
      return fail({ code, message });
    }
    const obj = this.#convert(kind, apiVersionOf(KINDS[kind].group, version), res.body);
    if (obj === undefined)
      return fail({
        code: "invalid",
        message: `${key}: the server returned an object that fails validation`,
      });
    // Visible to get() at once; the watch event with the same resourceVersion is then silent.
    this.#flush();
    this.commit(upsertObjects(this.cache, [obj]));
    return ok(obj);
  }

  // ---- reflector ------------------------------------------------------------------------------

  #backoff(attempt: number): number {
    const b = this.#opts.backoff ?? { initialMs: 250, maxMs: 30_000 };
    const base = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(attempt, 20));
    return base / 2 + Math.random() * (base / 2);
  }

  #collection(kind: Kind, version: string): string {
    const k = KINDS[kind];
    return apiPath(
      kind,
      version,
      k.namespaced && this.#opts.namespace !== undefined ? { namespace: this.#opts.namespace } : {},
    );
  }

  async #reflect(kind: Kind): Promise<void> {
    const signal = this.#abort.signal;
    let rv = "";
    let failures = 0;
    while (!signal.aborted) {
      if (rv === "") {
        const listed = await this.#list(kind);
        if (signal.aborted) return;
        if (listed.type === "retry") {
          await sleep(
            listed.unserved ? (this.#opts.unservedRetryMs ?? 60_000) : this.#backoff(failures++),
            signal,
          );
          continue;
        }
        rv = listed.rv;
        this.#rv.set(kind, rv);
        failures = 0;
      }
      const version = this.#version.get(kind)!;
      const apiVersion = apiVersionOf(KINDS[kind].group, version);
      const timeout = this.#opts.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300);
      let sawEvent = false;
      let expired = false;
      const from = rv;
      try {
        const res = await this.#http.watch(
          this.#collection(kind, version),
          { resourceVersion: rv, allowWatchBookmarks: "true", timeoutSeconds: String(timeout) },
          (ev) => {
            const r = this.#onEvent(kind, apiVersion, ev);
            if (r === "expired") expired = true;
            else if (r !== undefined) {
              rv = r.rv;
              this.#rv.set(kind, rv);
              sawEvent = true;
            }
          },
          { idleMs: (timeout + 30) * 1000, signal },
        );
        if (res.status === 410) expired = true;
        else if (res.status !== 200) {
          const s = statusOf(res.body);
          this.log.warn("watch refused; listing again", {
            kind,
            status: res.status,
            reason: s.message ?? "",
          });
          expired = true;
          await sleep(this.#backoff(failures++), signal);
        } else {
          failures = 0;
        }
      } catch (err) {
        if (signal.aborted) return;
        this.log.debug("watch stream ended; resuming", {
          kind,
          resourceVersion: rv,
          error: err instanceof Error ? err.message : String(err),
        });
        if (!sawEvent) await sleep(this.#backoff(failures++), signal);
        else failures = 0;
      }
      if (expired) {
        this.log.info("watch history expired (410 Gone); listing again", {
          kind,
          resourceVersion: from,
        });
        rv = "";
      }
    }
  }

  /** Handles one watch event; returns the resourceVersion it moves to, "expired", or nothing. */
  #onEvent(kind: Kind, apiVersion: string, ev: unknown): { rv: string } | "expired" | undefined {
    if (!isObj(ev) || !isObj(ev["object"])) return undefined;
    const type = ev["type"];
    const obj = ev["object"];
    if (type === "ERROR") {
      const s = statusOf(obj);
      if (s.code === 410) return "expired";
      this.log.warn("watch error event; listing again", { kind, reason: s.message ?? "" });
      return "expired";
    }
    const rv = isObj(obj["metadata"]) ? obj["metadata"]["resourceVersion"] : undefined;
    if (typeof rv !== "string") return undefined;
    if (type === "BOOKMARK") return { rv };
    if (type === "ADDED" || type === "MODIFIED") {
      const converted = this.#convert(kind, apiVersion, obj);
      if (converted !== undefined) this.#enqueue({ set: converted });
    } else if (type === "DELETED") {
      const m = obj["metadata"] as Json;
      const key = objectKey(
        kind,
        KINDS[kind].namespaced ? str(m["namespace"]) : "",
        str(m["name"]),
      );
      this.setProblems(key, []);
      this.#enqueue({ remove: key });
    }
    return { rv };
  }

  async #list(
    kind: Kind,
  ): Promise<{ type: "ok"; rv: string } | { type: "retry"; unserved: boolean }> {
    const k = KINDS[kind];
    const scope = `kind:${kind}`;
    const versions = this.#version.has(kind)
      ? [this.#version.get(kind)!, ...k.versions.filter((v) => v !== this.#version.get(kind))]
      : k.versions;
    for (const version of versions) {
      const items: unknown[] = [];
      let cont = "";
      let rv = "";
      let status: number;
      let body: unknown;
      try {
        do {
          const query: Record<string, string> = { limit: String(this.#opts.pageSize ?? 500) };
          if (cont !== "") query["continue"] = cont;
          const res = await this.#http.call("GET", this.#collection(kind, version), {
            query,
            signal: this.#abort.signal,
          });
          status = res.status;
          body = res.body;
          if (status !== 200 || !isObj(body)) break;
          const meta = isObj(body["metadata"]) ? body["metadata"] : {};
          if (Array.isArray(body["items"])) items.push(...(body["items"] as unknown[]));
          cont = typeof meta["continue"] === "string" ? meta["continue"] : "";
          if (rv === "")
            rv = typeof meta["resourceVersion"] === "string" ? meta["resourceVersion"] : "";
        } while (cont !== "");
      } catch (err) {
        if (this.#abort.signal.aborted) return { type: "retry", unserved: false };
        this.log.warn("cannot list config from the API server; retrying", {
          kind,
          error: err instanceof Error ? err.message : String(err),
        });
        return { type: "retry", unserved: false };
      }
      if (status === 404) continue; // this version (or the CRD) is not served: try the next
      if (status !== 200) {
        const s = statusOf(body);
        const reason =
          status === 403
            ? `not allowed to list ${k.plural} (${s.message ?? "forbidden"}); check the control plane's RBAC`
            : status === 410
              ? "list continuation expired; listing again"
              : `listing ${k.plural} failed: ${status} ${s.message ?? ""}`.trim();
        this.setProblems(scope, [{ path: "", reason }]);
        return { type: "retry", unserved: false };
      }
      this.#version.set(kind, version);
      this.setProblems(scope, []);
      this.#replace(kind, apiVersionOf(k.group, version), items);
      return { type: "ok", rv };
    }
    this.setProblems(scope, [
      {
        path: "",
        reason: `${kind} is not served by the API server (tried ${k.versions.map((v) => apiVersionOf(k.group, v)).join(", ")}); is its CRD installed? Looking again periodically`,
      },
    ]);
    this.#replace(kind, "", []);
    return { type: "retry", unserved: true };
  }

  /** A relist: the kind's objects become exactly the list (invalid ones keep their last good). */
  #replace(kind: Kind, apiVersion: string, items: readonly unknown[]): void {
    this.#flush();
    const objects: ConfigObject[] = [];
    for (const item of items) {
      if (!isObj(item)) continue;
      const obj = this.#convert(kind, apiVersion, item);
      if (obj !== undefined) {
        objects.push(obj);
        continue;
      }
      const m = isObj(item["metadata"]) ? item["metadata"] : {};
      const prev = this.get(
        kind,
        KINDS[kind].namespaced ? str(m["namespace"]) : "",
        str(m["name"]),
      );
      if (prev !== undefined) objects.push(prev);
    }
    this.commit(replaceKind(this.cache, kind, objects));
    if (!this.#listed.has(kind)) {
      this.#listed.add(kind);
      if (this.#kinds.every((k) => this.#listed.has(k))) {
        this.markSynced();
        this.log.info("config synced from the Kubernetes API", { kinds: this.#kinds.length });
      }
    }
  }

  /** Validates and converts a server object; undefined (with a problem recorded) when invalid. */
  #convert(kind: Kind, apiVersion: string, raw: unknown): ConfigObject | undefined {
    if (!isObj(raw)) return undefined;
    // List items of built-in resources carry no apiVersion/kind.
    const full = {
      ...raw,
      apiVersion: typeof raw["apiVersion"] === "string" ? raw["apiVersion"] : apiVersion,
      kind,
    };
    const r = validateObject(full, { unknownFields: "ignore" });
    if (r.key !== undefined) {
      const problems = r.issues.map((i): ConfigProblem => ({
        path: formatFieldPath(i.path),
        reason: i.reason,
        key: r.key!,
      }));
      this.setProblems(r.key, problems);
    }
    if (r.draft === undefined) return undefined;
    const m = r.draft.rawMetadata;
    return deepFreeze({
      kind: r.draft.kind,
      apiVersion: r.draft.apiVersion,
      metadata: {
        name: r.draft.name,
        namespace: r.draft.namespace,
        labels: r.draft.labels,
        annotations: r.draft.annotations,
        uid: str(m["uid"]),
        resourceVersion: str(m["resourceVersion"]),
        generation: typeof m["generation"] === "number" ? m["generation"] : 0,
        creationTimestamp: str(m["creationTimestamp"]),
        ownerReferences: r.draft.ownerReferences,
        ...(typeof m["deletionTimestamp"] === "string"
          ? { deletionTimestamp: m["deletionTimestamp"] }
          : {}),
      },
      spec: r.draft.spec,
      ...(r.draft.status !== undefined ? { status: r.draft.status } : {}),
    } as ConfigObject);
  }

  #enqueue(item: QueueItem): void {
    this.#queue.push(item);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // Events that arrive together (one read of the stream, several kinds) go out as one batch.
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#queue.length === 0) return;
    const items = this.#queue;
    this.#queue = [];
    let cache: Cache = this.cache;
    const events: ConfigEvent[] = [];
    for (const item of items) {
      const change =
        "set" in item ? upsertObjects(cache, [item.set]) : deleteObjects(cache, [item.remove]);
      cache = change.cache;
      events.push(...change.events);
    }
    this.commit({ cache, events: coalesceEvents(events) });
  }
}
