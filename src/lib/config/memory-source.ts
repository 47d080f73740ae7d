/**
 * A config source held in memory, for tests and for embedding: objects are set and deleted
 * programmatically, validated like files, and produce the same events as the other sources.
 */
import type { Logger } from "../log/index.ts";
import { fail, ok } from "../errors.ts";
import { applyChanges } from "./cache.ts";
import { formatFieldPath } from "./field-path.ts";
import type { Kind } from "./kinds.ts";
import { objectKey, type ConfigObject, type ObjectKey } from "./object.ts";
import type { ConfigProblem } from "./problem.ts";
import { Stamper, type StatusOverlay } from "./stamp.ts";
import { StoreBase, type StatusUpdate, type StatusWriteResult } from "./store.ts";
import { mergePatch } from "./merge-patch.ts";
import { validateObject, type Draft } from "./validate.ts";

/** A manifest as a user would write it. */
export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly [field: string]: unknown;
  };
  readonly [field: string]: unknown;
}

export interface MemorySourceOptions {
  readonly log: Logger;
  /** Objects present at start (validated like later ones). */
  readonly objects?: readonly Manifest[];
  /** Clock for creationTimestamp. */
  readonly now?: () => Date;
}

export interface SetResult {
  /** The stored objects (unchanged ones included), in input order. */
  readonly applied: readonly ConfigObject[];
  /** Problems of the manifests that were rejected; their last good versions stay. */
  readonly problems: readonly ConfigProblem[];
}

export class MemoryConfigStore extends StoreBase {
  readonly source = "memory";
  readonly #stamper: Stamper;
  readonly #drafts = new Map<ObjectKey, Draft>();
  readonly #overlays = new Map<ObjectKey, StatusOverlay>();
  readonly #initial: readonly Manifest[];

  constructor(opts: MemorySourceOptions) {
    super(opts.log);
    this.#stamper = new Stamper(opts.now ? { now: opts.now } : {});
    this.#initial = opts.objects ?? [];
  }

  start(): Promise<void> {
    if (!this.hasSynced) {
      this.set(...this.#initial);
      this.markSynced();
    }
    return this.synced;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Validates and stores objects as one batch; invalid ones are rejected individually. */
  set(...manifests: readonly unknown[]): SetResult {
    const applied: ConfigObject[] = [];
    const problems: ConfigProblem[] = [];
    const set: ConfigObject[] = [];
    for (const m of manifests) {
      const r = validateObject(m, { unknownFields: "reject" });
      const ps = r.issues.map((i): ConfigProblem => ({
        path: formatFieldPath(i.path),
        reason: i.reason,
        ...(r.key !== undefined ? { key: r.key } : {}),
      }));
      if (r.key !== undefined) this.setProblems(r.key, ps);
      if (r.draft === undefined) {
        problems.push(...ps);
        continue;
      }
      const d = r.draft;
      this.#drafts.set(d.key, d);
      const prev =
        set.find((o) => objectKey(o.kind, o.metadata.namespace, o.metadata.name) === d.key) ??
        this.get(d.kind, d.namespace, d.name);
      const obj = this.#stamper.stamp(prev, d, this.#overlays.get(d.key));
      set.push(obj);
      applied.push(obj);
    }
    this.commit(applyChanges(this.cache, { set }));
    return { applied, problems };
  }

  /** Deletes an object; false when there was none. */
  delete(kind: Kind, namespace: string, name: string): boolean {
    return this.deleteKeys([objectKey(kind, namespace, name)]) > 0;
  }

  /** Deletes objects by key in one batch; returns how many existed. */
  deleteKeys(keys: readonly ObjectKey[]): number {
    const change = applyChanges(this.cache, { remove: keys });
    for (const e of change.events) {
      this.#drafts.delete(e.key);
      this.#overlays.delete(e.key);
      this.#stamper.deleted(e.key);
    }
    for (const k of keys) this.setProblems(k, []);
    this.commit(change);
    return change.events.length;
  }

  writeStatus(update: StatusUpdate): Promise<StatusWriteResult> {
    return Promise.resolve(this.#writeStatus(update));
  }

  #writeStatus(update: StatusUpdate): StatusWriteResult {
    const kind: Kind = update.type === "status" ? update.kind : "Pod";
    const key = objectKey(kind, update.namespace, update.name);
    const draft = this.#drafts.get(key);
    const prev = this.get(kind, update.namespace, update.name);
    if (draft === undefined || prev === undefined) {
      return fail({ code: "not-found", message: `${key} does not exist` });
    }
    const overlay = this.#overlays.get(key) ?? {};
    const next: StatusOverlay =
      update.type === "status"
        ? { ...overlay, status: mergePatch(prev.status, update.status) }
        : { ...overlay, annotations: { ...overlay.annotations, ...update.annotations } };
    this.#overlays.set(key, next);
    const obj = this.#stamper.stamp(prev, draft, next);
    this.commit(applyChanges(this.cache, { set: [obj] }));
    return ok(obj);
  }
}
