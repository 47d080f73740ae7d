/**
 * A minimal ConfigStore for the benchmark: objects are handed in already in stored shape, and
 * `update` delivers one-object batches — the control plane's view of a watch event, without the
 * cost of a source's validation (measured by lib/config's own tests and benchmarks).
 */
import type {
  ConfigBatch,
  ConfigHandler,
  ConfigObject,
  ConfigProblem,
  ConfigStore,
  Kind,
  StatusWriteResult,
} from "../../src/lib/config/index.ts";
import { objectKey } from "../../src/lib/config/index.ts";

export class BenchStore implements ConfigStore {
  readonly source = "memory";
  readonly #objects = new Map<string, ConfigObject>();
  readonly #handlers = new Set<ConfigHandler>();
  hasSynced = false;
  readonly synced: Promise<void>;
  #resolve!: () => void;

  constructor(objects: readonly ConfigObject[]) {
    for (const o of objects) this.#objects.set(this.#key(o), o);
    this.synced = new Promise((r) => (this.#resolve = r));
  }

  #key(o: ConfigObject): string {
    return objectKey(o.kind, o.metadata.namespace, o.metadata.name);
  }

  list<K extends Kind>(kind: K): readonly ConfigObject<K>[] {
    return [...this.#objects.values()].filter((o) => o.kind === kind) as ConfigObject<K>[];
  }

  get<K extends Kind>(kind: K, namespace: string, name: string): ConfigObject<K> | undefined {
    return this.#objects.get(objectKey(kind, namespace, name)) as ConfigObject<K> | undefined;
  }

  subscribe(handler: ConfigHandler): () => void {
    this.#handlers.add(handler);
    if (this.hasSynced) queueMicrotask(() => handler(this.#initial()));
    return () => this.#handlers.delete(handler);
  }

  #initial(): ConfigBatch {
    const events = [...this.#objects].map(([key, o]) => ({
      type: "added" as const,
      kind: o.kind,
      key,
      new: o,
    }));
    return { events: events as ConfigBatch["events"], initial: true };
  }

  errors(): readonly ConfigProblem[] {
    return [];
  }

  writeStatus(): Promise<StatusWriteResult> {
    return Promise.resolve({ ok: false, reason: { code: "invalid", message: "read-only" } });
  }

  start(): Promise<void> {
    if (!this.hasSynced) {
      this.hasSynced = true;
      const batch = this.#initial();
      for (const h of this.#handlers) h(batch);
      this.#resolve();
    }
    return this.synced;
  }

  /** Replaces one object and delivers the change. */
  update(o: ConfigObject): void {
    const key = this.#key(o);
    const old = this.#objects.get(key);
    this.#objects.set(key, o);
    const event =
      old === undefined
        ? { type: "added" as const, kind: o.kind, key, new: o }
        : { type: "updated" as const, kind: o.kind, key, old, new: o };
    const batch = { events: [event] as unknown as ConfigBatch["events"], initial: false };
    for (const h of this.#handlers) h(batch);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
