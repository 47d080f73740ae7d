/**
 * The one interface every configuration source implements (files, Kubernetes, memory), and the
 * shared machinery behind it: the cache, subscriptions with batched events, the initial sync, and
 * the list of current problems.
 */
import type { Logger } from "../log/index.ts";
import type { Result } from "../errors.ts";
import { cacheGet, cacheList, emptyCache, type Cache, type CacheChange } from "./cache.ts";
import type { ConfigBatch, ConfigHandler } from "./events.ts";
import type { Kind } from "./kinds.ts";
import type { KindTypes } from "./object.ts";
import { objectKey, type ConfigObject } from "./object.ts";
import { formatProblem, type ConfigProblem } from "./problem.ts";

/**
 * A status write. `status` is merged into the object's status as a JSON merge patch on the
 * status subresource (keys given replace, lists are replaced whole, null removes a key).
 * `podAnnotations` merges annotations into a Pod's metadata (null removes one) through the
 * `pods/status` subresource, as istio-cni does for `ambient.istio.io/redirection`.
 */
export type StatusUpdate =
  | {
      [K in Kind]: {
        readonly type: "status";
        readonly kind: K;
        readonly namespace: string;
        readonly name: string;
        readonly status: KindTypes[K]["status"];
      };
    }[Kind]
  | {
      readonly type: "podAnnotations";
      readonly namespace: string;
      readonly name: string;
      readonly annotations: Readonly<Record<string, string | null>>;
    };

export interface StatusWriteFailure {
  readonly code: "not-found" | "conflict" | "invalid" | "unavailable";
  readonly message: string;
}

/** The object after the write, or why it was not written. */
export type StatusWriteResult = Result<ConfigObject, StatusWriteFailure>;

export interface SubscribeOptions {
  /** Only events of these kinds (and only these kinds in the initial batch). */
  readonly kinds?: readonly Kind[];
}

export type SourceType = "files" | "kubernetes" | "memory";

export interface ConfigStore {
  readonly source: SourceType;
  /** Objects of a kind, in key order. Empty until synced. */
  list<K extends Kind>(kind: K): readonly ConfigObject<K>[];
  /** One object; namespace "" for cluster-scoped kinds. */
  get<K extends Kind>(kind: K, namespace: string, name: string): ConfigObject<K> | undefined;
  /**
   * Calls `handler` with batches of changes. Its first batch (`initial: true`) arrives once the
   * store has synced and lists every object then present as `added`; later batches hold changes
   * only. Delivery is synchronous with the change, never before subscribe() returns. A handler
   * that throws is logged and keeps its subscription. Returns the unsubscribe function.
   */
  subscribe(handler: ConfigHandler, options?: SubscribeOptions): () => void;
  /** Resolves once the first full read (directory scan, list of every kind) is in the cache. */
  readonly synced: Promise<void>;
  readonly hasSynced: boolean;
  /** The configuration problems in force now, every one (file, line, path, reason, key). */
  errors(): readonly ConfigProblem[];
  /** Writes status (or a Pod's redirection annotation); the change comes back as an `updated` event. */
  writeStatus(update: StatusUpdate): Promise<StatusWriteResult>;
  /** Starts reading; resolves when synced. */
  start(): Promise<void>;
  /** Stops watching and releases sockets, watchers and timers. */
  close(): Promise<void>;
}

interface Subscription {
  readonly handler: ConfigHandler;
  readonly kinds: ReadonlySet<Kind> | undefined;
  /** Waiting for its initial batch; live batches before it would arrive out of order. */
  pending: boolean;
  active: boolean;
}

/** What every source shares; sources feed it through `commit` and `setProblems`. */
export abstract class StoreBase implements ConfigStore {
  abstract readonly source: SourceType;
  protected readonly log: Logger;
  #cache: Cache = emptyCache;
  readonly #subs = new Set<Subscription>();
  #hasSynced = false;
  #resolveSynced!: () => void;
  readonly synced: Promise<void>;
  readonly #problems = new Map<string, readonly ConfigProblem[]>();

  constructor(log: Logger) {
    this.log = log;
    this.synced = new Promise((resolve) => {
      this.#resolveSynced = resolve;
    });
  }

  abstract start(): Promise<void>;
  abstract close(): Promise<void>;
  abstract writeStatus(update: StatusUpdate): Promise<StatusWriteResult>;

  get hasSynced(): boolean {
    return this.#hasSynced;
  }

  protected get cache(): Cache {
    return this.#cache;
  }

  list<K extends Kind>(kind: K): readonly ConfigObject<K>[] {
    return cacheList(this.#cache, kind) as readonly ConfigObject<K>[];
  }

  get<K extends Kind>(kind: K, namespace: string, name: string): ConfigObject<K> | undefined {
    return cacheGet(this.#cache, kind, objectKey(kind, namespace, name)) as
      ConfigObject<K> | undefined;
  }

  subscribe(handler: ConfigHandler, options: SubscribeOptions = {}): () => void {
    const sub: Subscription = {
      handler,
      kinds: options.kinds ? new Set(options.kinds) : undefined,
      pending: true,
      active: true,
    };
    this.#subs.add(sub);
    if (this.#hasSynced) queueMicrotask(() => this.#sendInitial(sub));
    return () => {
      sub.active = false;
      this.#subs.delete(sub);
    };
  }

  errors(): readonly ConfigProblem[] {
    const all: ConfigProblem[] = [];
    for (const ps of this.#problems.values()) all.push(...ps);
    return all.sort(
      (a, b) =>
        (a.file ?? "").localeCompare(b.file ?? "") ||
        (a.line ?? 0) - (b.line ?? 0) ||
        (a.column ?? 0) - (b.column ?? 0),
    );
  }

  /** Installs the next cache and delivers its events as one batch (once synced). */
  protected commit(change: CacheChange): void {
    this.#cache = change.cache;
    if (!this.#hasSynced || change.events.length === 0) return;
    for (const sub of [...this.#subs]) {
      if (sub.pending || !sub.active) continue;
      const events = sub.kinds
        ? change.events.filter((e) => sub.kinds!.has(e.kind))
        : change.events;
      if (events.length > 0) this.#deliver(sub, { events, initial: false });
    }
  }

  /** Marks the first full read done: initial batches go out, then `synced` resolves. */
  protected markSynced(): void {
    if (this.#hasSynced) return;
    this.#hasSynced = true;
    for (const sub of [...this.#subs]) this.#sendInitial(sub);
    this.#resolveSynced();
  }

  /** Replaces the problems of one scope (a file, a kind, an object) and logs what changed. */
  protected setProblems(scope: string, problems: readonly ConfigProblem[]): void {
    const before = new Set((this.#problems.get(scope) ?? []).map(formatProblem));
    for (const p of problems) {
      const line = formatProblem(p);
      if (!before.has(line)) this.log.warn("config rejected", { problem: line });
    }
    if (problems.length === 0) {
      if (before.size > 0) this.log.info("config problems cleared", { scope });
      this.#problems.delete(scope);
    } else {
      this.#problems.set(scope, problems);
    }
  }

  #sendInitial(sub: Subscription): void {
    if (!sub.active || !sub.pending) return;
    sub.pending = false;
    const events = [];
    for (const kind of [...this.#cache.keys()].sort()) {
      if (sub.kinds && !sub.kinds.has(kind)) continue;
      for (const o of cacheList(this.#cache, kind)) {
        const key = objectKey(kind, o.metadata.namespace, o.metadata.name);
        events.push({ type: "added", kind, key, new: o });
      }
    }
    this.#deliver(sub, { events: events as ConfigBatch["events"], initial: true });
  }

  #deliver(sub: Subscription, batch: ConfigBatch): void {
    try {
      sub.handler(batch);
    } catch (err) {
      this.log.error("config subscriber failed", {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
}
