/**
 * Generated metadata for the sources that are their own API server (files, memory): uid,
 * resourceVersion, generation, creationTimestamp. The uid is a name-based UUID of the object's key
 * and incarnation, so it is stable across restarts and new when an object is deleted and created
 * again; resourceVersion is one counter for the whole store, as in etcd; generation counts spec
 * changes.
 */
import { mergePatch } from "./merge-patch.ts";
import { deepFreeze, jsonEqual, type ConfigObject, type ObjectKey } from "./object.ts";
import { uuidV5 } from "./uid.ts";
import type { Draft } from "./validate.ts";

/** What status writes have put on an object, kept across edits of its source. */
export interface StatusOverlay {
  /** The whole status as written (replaces whatever the source says). */
  readonly status?: unknown;
  /** Annotation patches (null removes), applied over the source's annotations. */
  readonly annotations?: Readonly<Record<string, string | null>>;
}

export class Stamper {
  #rv = 0;
  readonly #incarnation = new Map<ObjectKey, number>();
  readonly #now: () => Date;

  constructor(opts: { now?: () => Date } = {}) {
    this.#now = opts.now ?? (() => new Date());
  }

  nextResourceVersion(): string {
    return String(++this.#rv);
  }

  /**
   * The stored object for `draft`, or `prev` itself when nothing changed. `prev` must be the
   * current stored version of the same key (undefined when the object is new).
   */
  stamp(prev: ConfigObject | undefined, draft: Draft, overlay?: StatusOverlay): ConfigObject {
    let annotations = draft.annotations;
    if (overlay?.annotations !== undefined) {
      annotations = mergePatch(annotations, overlay.annotations) as Record<string, string>;
    }
    // Once written, status belongs to the writer: a later edit of the source leaves it alone.
    const status = overlay?.status !== undefined ? overlay.status : draft.status;
    if (
      prev !== undefined &&
      prev.apiVersion === draft.apiVersion &&
      jsonEqual(prev.spec, draft.spec) &&
      jsonEqual(prev.status, status) &&
      jsonEqual(prev.metadata.labels, draft.labels) &&
      jsonEqual(prev.metadata.annotations, annotations) &&
      jsonEqual(prev.metadata.ownerReferences, draft.ownerReferences)
    ) {
      return prev;
    }
    const incarnation = this.#incarnation.get(draft.key) ?? 0;
    const generation =
      prev === undefined
        ? 1
        : prev.metadata.generation + (jsonEqual(prev.spec, draft.spec) ? 0 : 1);
    const obj = {
      kind: draft.kind,
      apiVersion: draft.apiVersion,
      metadata: {
        name: draft.name,
        namespace: draft.namespace,
        labels: structuredClone(draft.labels),
        annotations: structuredClone(annotations),
        uid: prev?.metadata.uid ?? uuidV5(`${draft.key}#${incarnation}`),
        resourceVersion: this.nextResourceVersion(),
        generation,
        creationTimestamp: prev?.metadata.creationTimestamp ?? this.#now().toISOString(),
        ownerReferences: structuredClone(draft.ownerReferences),
      },
      spec: structuredClone(draft.spec),
      ...(status !== undefined ? { status: structuredClone(status) } : {}),
    };
    return deepFreeze(obj) as ConfigObject;
  }

  /** Records a deletion: the next object with this key is a new incarnation with a new uid. */
  deleted(key: ObjectKey): void {
    this.#incarnation.set(key, (this.#incarnation.get(key) ?? 0) + 1);
  }
}
