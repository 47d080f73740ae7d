/**
 * The object cache as pure functions, in the manner of kubernetes-client's informer cache: each
 * takes a cache and changes and returns the next cache with the events that describe the
 * difference. Inputs are never mutated, so a source can compute, inspect and then commit.
 * Objects whose resourceVersion did not change produce no event (a relist, or a watch resumed
 * over events already seen, stays silent).
 */
import type { ConfigEvent } from "./events.ts";
import type { Kind } from "./kinds.ts";
import { parseKey, type ConfigObject, type ObjectKey } from "./object.ts";

export type KindCache = ReadonlyMap<ObjectKey, ConfigObject>;
export type Cache = ReadonlyMap<Kind, KindCache>;

export interface CacheChange {
  readonly cache: Cache;
  readonly events: readonly ConfigEvent[];
}

export const emptyCache: Cache = new Map();

export function cacheGet(cache: Cache, kind: Kind, key: ObjectKey): ConfigObject | undefined {
  return cache.get(kind)?.get(key);
}

const sortedLists = new WeakMap<KindCache, readonly ConfigObject[]>();

/** Objects of a kind in key order (memoised per cache generation). */
export function cacheList(cache: Cache, kind: Kind): readonly ConfigObject[] {
  const m = cache.get(kind);
  if (m === undefined) return [];
  let list = sortedLists.get(m);
  if (list === undefined) {
    list = Object.freeze(
      [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((e) => e[1]),
    );
    sortedLists.set(m, list);
  }
  return list;
}

export function cacheSize(cache: Cache): number {
  let n = 0;
  for (const m of cache.values()) n += m.size;
  return n;
}

function keyFor(o: ConfigObject): ObjectKey {
  const ns = o.metadata.namespace;
  return ns === "" ? `${o.kind}/${o.metadata.name}` : `${o.kind}/${ns}/${o.metadata.name}`;
}

function sameVersion(a: ConfigObject, b: ConfigObject): boolean {
  return (
    a.metadata.resourceVersion !== "" && a.metadata.resourceVersion === b.metadata.resourceVersion
  );
}

/** Copy-on-write per kind: each kind touched by a batch is copied once. */
class Draft {
  readonly #base: Cache;
  readonly #copies = new Map<Kind, Map<ObjectKey, ConfigObject>>();
  readonly events: ConfigEvent[] = [];
  constructor(base: Cache) {
    this.#base = base;
  }
  get(kind: Kind, key: ObjectKey): ConfigObject | undefined {
    return (this.#copies.get(kind) ?? this.#base.get(kind))?.get(key);
  }
  keys(kind: Kind): Iterable<ObjectKey> {
    return (this.#copies.get(kind) ?? this.#base.get(kind) ?? new Map()).keys();
  }
  #mutable(kind: Kind): Map<ObjectKey, ConfigObject> {
    let m = this.#copies.get(kind);
    if (m === undefined) {
      m = new Map(this.#base.get(kind));
      this.#copies.set(kind, m);
    }
    return m;
  }
  set(o: ConfigObject): void {
    this.#mutable(o.kind).set(keyFor(o), o);
  }
  delete(kind: Kind, key: ObjectKey): void {
    this.#mutable(kind).delete(key);
  }
  finish(): CacheChange {
    if (this.#copies.size === 0) return { cache: this.#base, events: this.events };
    const next = new Map(this.#base);
    for (const [kind, m] of this.#copies) {
      if (m.size === 0) next.delete(kind);
      else next.set(kind, m);
    }
    return { cache: next, events: this.events };
  }
}

function upsertInto(d: Draft, o: ConfigObject): void {
  const key = keyFor(o);
  const old = d.get(o.kind, key);
  if (old === undefined) {
    d.set(o);
    d.events.push({ type: "added", kind: o.kind, key, new: o } as ConfigEvent);
  } else if (!sameVersion(old, o)) {
    d.set(o);
    d.events.push({ type: "updated", kind: o.kind, key, old, new: o } as ConfigEvent);
  }
}

function deleteFrom(d: Draft, kind: Kind, key: ObjectKey): void {
  const old = d.get(kind, key);
  if (old === undefined) return;
  d.delete(kind, key);
  d.events.push({ type: "deleted", kind, key, old } as ConfigEvent);
}

/** Adds new objects and updates changed ones (a changed resourceVersion means changed). */
export function upsertObjects(cache: Cache, objects: readonly ConfigObject[]): CacheChange {
  const d = new Draft(cache);
  for (const o of objects) upsertInto(d, o);
  return d.finish();
}

/** Deletes objects by key; keys not present are ignored. */
export function deleteObjects(cache: Cache, keys: readonly ObjectKey[]): CacheChange {
  const d = new Draft(cache);
  for (const key of keys) {
    const kind = parseKey(key)?.kind as Kind | undefined;
    if (kind !== undefined) deleteFrom(d, kind, key);
  }
  return d.finish();
}

/**
 * Makes the cache's objects of `kind` exactly `objects` (a relist): adds, updates, and deletes
 * whatever the list no longer holds — objects deleted while no watch was running.
 */
export function replaceKind(
  cache: Cache,
  kind: Kind,
  objects: readonly ConfigObject[],
): CacheChange {
  const d = new Draft(cache);
  const keep = new Set<ObjectKey>();
  for (const o of objects) {
    if (o.kind !== kind) continue;
    keep.add(keyFor(o));
    upsertInto(d, o);
  }
  for (const key of [...d.keys(kind)]) if (!keep.has(key)) deleteFrom(d, kind, key);
  return d.finish();
}

/**
 * Applies a mixed batch: `set` objects are upserted, `remove` keys deleted, in that order.
 * An object both set and removed in one batch ends deleted.
 */
export function applyChanges(
  cache: Cache,
  changes: { readonly set?: readonly ConfigObject[]; readonly remove?: readonly ObjectKey[] },
): CacheChange {
  const d = new Draft(cache);
  for (const o of changes.set ?? []) upsertInto(d, o);
  for (const key of changes.remove ?? []) {
    const kind = parseKey(key)?.kind as Kind | undefined;
    if (kind !== undefined) deleteFrom(d, kind, key);
  }
  return d.finish();
}

/**
 * Collapses a sequence of events so each object appears once, with the first `old` and the last
 * `new`: added+updated → added, added+deleted → nothing, updated+deleted → deleted,
 * deleted+added → updated.
 */
export function coalesceEvents(events: readonly ConfigEvent[]): ConfigEvent[] {
  const byKey = new Map<
    ObjectKey,
    { old: ConfigObject | undefined; new: ConfigObject | undefined }
  >();
  const order: ObjectKey[] = [];
  for (const e of events) {
    const cur = byKey.get(e.key);
    if (cur === undefined) {
      byKey.set(e.key, { old: e.old, new: e.new });
      order.push(e.key);
    } else {
      cur.new = e.new;
    }
  }
  const out: ConfigEvent[] = [];
  for (const key of order) {
    const c = byKey.get(key)!;
    if (c.old === undefined && c.new !== undefined) {
      out.push({ type: "added", kind: c.new.kind, key, new: c.new } as ConfigEvent);
    } else if (c.old !== undefined && c.new !== undefined) {
      if (c.old !== c.new) {
        out.push({ type: "updated", kind: c.new.kind, key, old: c.old, new: c.new } as ConfigEvent);
      }
    } else if (c.old !== undefined) {
      out.push({ type: "deleted", kind: c.old.kind, key, old: c.old } as ConfigEvent);
    }
  }
  return out;
}
