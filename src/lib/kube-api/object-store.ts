/**
 * The storage behind an API server, as etcd plus the watch cache: objects per resource, one
 * resourceVersion counter for everything, a bounded history of change events for watches that
 * resume from a resourceVersion, and compaction (a watch from before the kept history gets
 * `410 Gone`). Writes stamp uid, resourceVersion, generation (bumped on spec changes) and
 * creationTimestamp, check optimistic concurrency, and notify listeners synchronously.
 *
 * Stored objects are frozen and carry no apiVersion/kind (the resource says which); readers get
 * them as they are and copy before changing anything.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { deepFreeze, jsonEqual } from "./json.ts";
import { ResourceTable, DEFAULT_RESOURCES, type ApiResource } from "./resources.ts";
import {
  failure,
  isObject,
  meta,
  metaOf,
  str,
  success,
  type ApiOutcome,
  type Json,
} from "./status.ts";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

export interface StoreEvent {
  readonly rv: number;
  readonly resource: ApiResource;
  readonly type: WatchEventType;
  /** The object after the change (for DELETED: as last stored, with the deletion's resourceVersion). */
  readonly object: Json;
  /** The object before the change (MODIFIED and DELETED). */
  readonly old?: Json;
}

/**
 * What a replace may change. `main`: spec and the rest of the object, and the user-settable
 * metadata (labels, annotations, ownerReferences, finalizers); status stays. `status`: the status
 * (and, for pods, that metadata too, as `pods/status` allows); spec stays. `system`: everything
 * but the object's identity (the API server's own bookkeeping: deletion, binding, mirroring).
 */
export type WriteMode = "main" | "status" | "system";

export interface WriteOptions {
  /** Refuse with 409 Conflict unless the stored resourceVersion is this one. */
  readonly expectedResourceVersion?: string;
  /** Keep the uid, creationTimestamp and generation the object carries (mirrors and restores). */
  readonly preserve?: boolean;
}

export interface ObjectStoreOptions {
  readonly resources?: readonly ApiResource[];
  /** Change events kept for watches resuming from a resourceVersion. */
  readonly historyLimit?: number;
  /** The counter's start. A restarted server starts above everything it handed out before. */
  readonly initialResourceVersion?: number;
  readonly now?: () => Date;
}

const USER_META = ["labels", "annotations", "ownerReferences", "finalizers"] as const;
/** Kubernetes' alphabet for generated name suffixes: no vowels, no confusable digits. */
const SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";

/** `n` random characters from the name-suffix alphabet (generateName, pod names). */
export function randomSuffix(n: number): string {
  const bytes = randomBytes(n);
  let s = "";
  for (let i = 0; i < n; i++) s += SUFFIX_ALPHABET[bytes[i]! % SUFFIX_ALPHABET.length];
  return s;
}

function timestamp(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, "Z");
}

export class ObjectStore {
  readonly resources: ResourceTable;
  readonly #historyLimit: number;
  readonly #now: () => Date;
  #rv: number;
  /** Events at or below this resourceVersion are gone: watches from before it get 410. */
  #compactedRv: number;
  readonly #objects = new Map<ApiResource, Map<string, Json>>();
  #history: StoreEvent[] = [];
  readonly #listeners = new Set<(ev: StoreEvent) => void>();

  constructor(opts: ObjectStoreOptions = {}) {
    this.resources = new ResourceTable(opts.resources ?? DEFAULT_RESOURCES);
    this.#historyLimit = opts.historyLimit ?? 20_000;
    this.#now = opts.now ?? (() => new Date());
    this.#rv = opts.initialResourceVersion ?? 1;
    // Nothing before the start is known: a client resuming from an earlier incarnation relists.
    this.#compactedRv = this.#rv;
    for (const res of this.resources.all) this.#objects.set(res, new Map());
  }

  /** The resourceVersion of the last write. */
  get resourceVersion(): number {
    return this.#rv;
  }

  get compactedResourceVersion(): number {
    return this.#compactedRv;
  }

  id(res: ApiResource, namespace: string, name: string): string {
    return res.namespaced ? `${namespace}/${name}` : name;
  }

  get(res: ApiResource, namespace: string, name: string): Json | undefined {
    return this.#objects.get(res)?.get(this.id(res, namespace, name));
  }

  /** Objects of a resource (in one namespace when given), in namespace/name order. */
  list(res: ApiResource, namespace?: string): Json[] {
    const out: [string, Json][] = [];
    for (const [id, o] of this.#objects.get(res) ?? []) {
      if (namespace !== undefined && metaOf(o)["namespace"] !== namespace) continue;
      out.push([id, o]);
    }
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((e) => e[1]);
  }

  count(res: ApiResource): number {
    return this.#objects.get(res)?.size ?? 0;
  }

  /** Calls `fn` after every write, synchronously. Returns the unsubscribe function. */
  subscribe(fn: (ev: StoreEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * The kept events of `res` (in `namespace` when given) after `rv`, or "expired" when the
   * history no longer reaches back that far (or `rv` is from the future: another incarnation).
   */
  eventsSince(
    res: ApiResource,
    namespace: string | undefined,
    rv: number,
  ): StoreEvent[] | "expired" {
    if (!Number.isFinite(rv) || rv < this.#compactedRv || rv > this.#rv) return "expired";
    const out: StoreEvent[] = [];
    // Binary search for the first event after rv: history is in resourceVersion order.
    let lo = 0;
    let hi = this.#history.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#history[mid]!.rv <= rv) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.#history.length; i++) {
      const ev = this.#history[i]!;
      if (ev.resource !== res) continue;
      if (namespace !== undefined && metaOf(ev.object)["namespace"] !== namespace) continue;
      out.push(ev);
    }
    return out;
  }

  /** Forgets the event history: a watch from any earlier resourceVersion now gets 410 Gone. */
  compact(): void {
    this.#compactedRv = this.#rv;
    this.#history = [];
  }

  #record(res: ApiResource, type: WatchEventType, object: Json, old?: Json): void {
    const ev: StoreEvent = {
      rv: this.#rv,
      resource: res,
      type,
      object,
      ...(old !== undefined ? { old } : {}),
    };
    this.#history.push(ev);
    if (this.#history.length > this.#historyLimit) {
      // Drop the oldest quarter at once, so trimming is rare.
      const drop = Math.ceil(this.#historyLimit / 4);
      this.#compactedRv = this.#history[drop - 1]!.rv;
      this.#history = this.#history.slice(drop);
    }
    for (const fn of [...this.#listeners]) fn(ev);
  }

  /** Creates an object; `obj` is copied. Fails with 409 if it exists, 422 without a name. */
  create(res: ApiResource, obj: Json, opts: WriteOptions = {}): ApiOutcome {
    const stored: Json = structuredClone(obj);
    delete stored["apiVersion"];
    delete stored["kind"];
    const m = meta(stored);
    let name = str(m["name"]);
    if (name === "" && str(m["generateName"]) !== "")
      name = str(m["generateName"]) + randomSuffix(5);
    if (name === "") return failure(422, "Invalid", `${res.kind}: metadata.name: Required value`);
    m["name"] = name;
    if (res.namespaced) {
      if (str(m["namespace"]) === "") m["namespace"] = "default";
    } else {
      delete m["namespace"];
    }
    const store = this.#objects.get(res)!;
    const id = this.id(res, str(m["namespace"]), name);
    if (store.has(id)) {
      return failure(409, "AlreadyExists", `${res.plural} "${name}" already exists`);
    }
    this.#rv++;
    if (!opts.preserve || str(m["uid"]) === "") m["uid"] = randomUUID();
    if (!opts.preserve || typeof m["generation"] !== "number") m["generation"] = 1;
    if (!opts.preserve || str(m["creationTimestamp"]) === "") {
      m["creationTimestamp"] = timestamp(this.#now());
    }
    m["resourceVersion"] = String(this.#rv);
    deepFreeze(stored);
    store.set(id, stored);
    this.#record(res, "ADDED", stored);
    return success(201, stored);
  }

  /** Writes a new version of an existing object (see WriteMode); `next` is copied. */
  replace(
    res: ApiResource,
    namespace: string,
    name: string,
    next: Json,
    mode: WriteMode,
    opts: WriteOptions = {},
  ): ApiOutcome {
    const store = this.#objects.get(res)!;
    const id = this.id(res, namespace, name);
    const cur = store.get(id);
    if (cur === undefined) return failure(404, "NotFound", `${res.plural} "${name}" not found`);
    const curMeta = metaOf(cur);
    if (
      opts.expectedResourceVersion !== undefined &&
      opts.expectedResourceVersion !== "" &&
      opts.expectedResourceVersion !== curMeta["resourceVersion"]
    ) {
      return failure(
        409,
        "Conflict",
        `Operation cannot be fulfilled on ${res.plural} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    }
    const nextMeta = metaOf(next);
    const stored = structuredClone<Json>(cur);
    const m = stored["metadata"] as Json;
    if (mode === "system") {
      for (const k of Object.keys(stored)) if (k !== "metadata") delete stored[k];
      for (const [k, v] of Object.entries(next)) {
        if (k !== "apiVersion" && k !== "kind" && k !== "metadata") stored[k] = structuredClone(v);
      }
      for (const k of Object.keys(m)) {
        if (!["name", "namespace", "uid", "creationTimestamp", "generation"].includes(k))
          delete m[k];
      }
      for (const [k, v] of Object.entries(nextMeta)) {
        if (!["name", "namespace", "uid", "creationTimestamp", "resourceVersion"].includes(k)) {
          m[k] = structuredClone(v);
        }
      }
      if (opts.preserve && str(nextMeta["uid"]) !== "") m["uid"] = nextMeta["uid"];
      if (opts.preserve && str(nextMeta["creationTimestamp"]) !== "") {
        m["creationTimestamp"] = nextMeta["creationTimestamp"];
      }
      if (!opts.preserve || typeof nextMeta["generation"] !== "number") {
        m["generation"] = curMeta["generation"];
      }
    } else if (mode === "main" || !res.status) {
      for (const [k, v] of Object.entries(next)) {
        if (k === "apiVersion" || k === "kind" || k === "metadata") continue;
        if (k === "status" && res.status) continue;
        stored[k] = structuredClone(v);
      }
      for (const k of Object.keys(stored)) {
        if (k !== "metadata" && !(k === "status" && res.status) && !(k in next)) delete stored[k];
      }
    } else {
      if (next["status"] === undefined) delete stored["status"];
      else stored["status"] = structuredClone(next["status"]);
    }
    if (mode === "main" || (mode === "status" && res.plural === "pods")) {
      for (const k of USER_META) {
        if (nextMeta[k] === undefined) delete m[k];
        else m[k] = structuredClone(nextMeta[k]);
      }
    }
    if (jsonEqual(stored, cur)) return success(200, cur);
    this.#rv++;
    if (
      !(mode === "system" && opts.preserve && typeof nextMeta["generation"] === "number") &&
      !jsonEqual(stored["spec"], cur["spec"])
    ) {
      m["generation"] = (typeof curMeta["generation"] === "number" ? curMeta["generation"] : 0) + 1;
    }
    m["resourceVersion"] = String(this.#rv);
    deepFreeze(stored);
    store.set(id, stored);
    this.#record(res, "MODIFIED", stored, cur);
    return success(200, stored);
  }

  /** Removes an object; the preconditions (uid, resourceVersion) must hold when given. */
  remove(
    res: ApiResource,
    namespace: string,
    name: string,
    preconditions: { readonly uid?: string; readonly resourceVersion?: string } = {},
  ): ApiOutcome {
    const store = this.#objects.get(res)!;
    const id = this.id(res, namespace, name);
    const cur = store.get(id);
    if (cur === undefined) return failure(404, "NotFound", `${res.plural} "${name}" not found`);
    const m = metaOf(cur);
    if (
      (preconditions.uid !== undefined && preconditions.uid !== m["uid"]) ||
      (preconditions.resourceVersion !== undefined &&
        preconditions.resourceVersion !== m["resourceVersion"])
    ) {
      return failure(
        409,
        "Conflict",
        `Precondition failed for ${res.plural} "${name}": the object was replaced or modified`,
      );
    }
    store.delete(id);
    this.#rv++;
    const gone = structuredClone<Json>(cur);
    (gone["metadata"] as Json)["resourceVersion"] = String(this.#rv);
    deepFreeze(gone);
    this.#record(res, "DELETED", gone, cur);
    return success(200, gone);
  }
}

/** Whether a value is a non-empty JSON object (for request bodies). */
export function isJsonObject(v: unknown): v is Json {
  return isObject(v);
}
