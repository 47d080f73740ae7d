/**
 * A keyed table of items with secondary indexes and dependency tracking: computations that read
 * a key, an index value or the whole table register here and are marked dirty when what they read
 * changes. This is the storage half of a tiny version of istiod's `krt`; `derived.ts` is the
 * computing half.
 */

export type Key = string;
export type Predicate<T> = (item: T) => boolean;

/** Something that recomputes when what it read changes. */
export interface Watcher {
  markDirty(): void;
}

/** The part of a table a recorded dependency needs to undo itself. */
export interface Watched {
  readonly name: string;
  readonly rank: number;
  unwatchKey(key: Key, w: Watcher): void;
  unwatchIndex(index: string, value: string, w: Watcher): void;
  unwatchAll(w: Watcher): void;
}

interface IndexState<T> {
  extract: (item: T) => readonly string[];
  members: Map<string, Map<Key, T>>;
  watchers: Map<string, Map<Watcher, Predicate<T> | null>>;
  keys: Table<string> | undefined;
}

const noValues: readonly string[] = [];

export class Table<T> implements Watched {
  readonly name: string;
  /** Order of the last computation writing this table (0 for inputs); readers must come later. */
  private rankValue = 0;
  /** Lowest order of the computations taking this table as input. */
  private firstReader = Number.POSITIVE_INFINITY;
  private readonly items = new Map<Key, T>();
  private readonly indexes = new Map<string, IndexState<T>>();
  private readonly keyWatchers = new Map<Key, Set<Watcher>>();
  private readonly allWatchers = new Map<Watcher, Predicate<T> | null>();
  private readonly subscribers: ((key: Key) => void)[] = [];
  private readonly owners = new Map<Key, object>();
  private readonly contenders = new Map<Key, Set<Watcher>>();
  private changed: Set<Key> | undefined;

  constructor(name: string) {
    this.name = name;
  }

  get rank(): number {
    return this.rankValue;
  }

  /** Raises the rank (a computation declared at `order` writes this table), index-key tables too. */
  raiseRank(order: number): void {
    if (order >= this.firstReader) {
      throw new Error(
        `table ${this.name} would be written after a computation that reads it as input`,
      );
    }
    this.rankValue = Math.max(this.rankValue, order);
    for (const idx of this.indexes.values()) idx.keys?.raiseRank(order);
  }

  /** Adds a secondary index: `extract` gives the index values of an item. */
  addIndex(name: string, extract: (item: T) => readonly string[]): this {
    if (this.items.size > 0)
      throw new Error(`table ${this.name}: add index ${name} before writing`);
    this.indexes.set(name, { extract, members: new Map(), watchers: new Map(), keys: undefined });
    return this;
  }

  /** A table whose keys are the index values that currently have at least one member. */
  indexKeys(name: string): Table<string> {
    const idx = this.index(name);
    if (idx.keys === undefined) {
      idx.keys = new Table<string>(`${this.name}#${name}`);
      idx.keys.raiseRank(this.rankValue);
    }
    return idx.keys;
  }

  /** Records every changed key from now on (see `drainChanges`). */
  trackChanges(): this {
    this.changed ??= new Set();
    return this;
  }

  drainChanges(): Key[] {
    if (this.changed === undefined) return [];
    const out = [...this.changed];
    this.changed.clear();
    return out;
  }

  get size(): number {
    return this.items.size;
  }

  get(key: Key): T | undefined {
    return this.items.get(key);
  }

  keys(): IterableIterator<Key> {
    return this.items.keys();
  }

  values(): IterableIterator<T> {
    return this.items.values();
  }

  entries(): IterableIterator<[Key, T]> {
    return this.items.entries();
  }

  /** Items with index value `value` (no dependency is recorded; use a `Ctx` for that). */
  lookup(index: string, value: string): IterableIterator<T> {
    const members = this.index(index).members.get(value);
    return members === undefined ? [].values() : members.values();
  }

  /** Calls `fn` with the key of every write; the computation at `order` takes this table as input. */
  subscribe(fn: (key: Key) => void, order = Number.POSITIVE_INFINITY): void {
    this.subscribers.push(fn);
    this.firstReader = Math.min(this.firstReader, order);
  }

  /** Sets (or, with `undefined`, removes) an item and wakes everything that read it. */
  write(key: Key, next: T | undefined): void {
    const prev = this.items.get(key);
    if (prev === undefined && next === undefined) return;
    if (next === undefined) this.items.delete(key);
    else this.items.set(key, next);
    for (const idx of this.indexes.values()) this.reindex(idx, key, prev, next);
    this.changed?.add(key);
    for (const fn of this.subscribers) fn(key);
    const byKey = this.keyWatchers.get(key);
    if (byKey !== undefined) for (const w of byKey) w.markDirty();
    for (const [w, pred] of this.allWatchers) wake(w, pred, prev, next);
  }

  private reindex(idx: IndexState<T>, key: Key, prev: T | undefined, next: T | undefined): void {
    const before = prev === undefined ? noValues : idx.extract(prev);
    const after = next === undefined ? noValues : idx.extract(next);
    for (const v of before) {
      if (after.includes(v)) continue;
      const members = idx.members.get(v);
      if (members === undefined) continue;
      members.delete(key);
      if (members.size === 0) {
        idx.members.delete(v);
        idx.keys?.write(v, undefined);
      }
    }
    for (const v of after) {
      let members = idx.members.get(v);
      if (members === undefined) {
        members = new Map();
        idx.members.set(v, members);
        idx.keys?.write(v, v);
      }
      members.set(key, next as T);
    }
    for (const v of before.length === 0
      ? after
      : after.length === 0
        ? before
        : union(before, after)) {
      const watchers = idx.watchers.get(v);
      if (watchers !== undefined) for (const [w, pred] of watchers) wake(w, pred, prev, next);
    }
  }

  watchKey(key: Key, w: Watcher): void {
    let set = this.keyWatchers.get(key);
    if (set === undefined) {
      set = new Set();
      this.keyWatchers.set(key, set);
    }
    set.add(w);
  }

  unwatchKey(key: Key, w: Watcher): void {
    const set = this.keyWatchers.get(key);
    if (set === undefined) return;
    set.delete(w);
    if (set.size === 0) this.keyWatchers.delete(key);
  }

  watchIndex(index: string, value: string, w: Watcher, pred: Predicate<T> | null): void {
    const watchers = this.index(index).watchers;
    let map = watchers.get(value);
    if (map === undefined) {
      map = new Map();
      watchers.set(value, map);
    }
    // Two reads of the same index value with different filters: wake on either.
    map.set(w, merge(map.get(w), pred));
  }

  unwatchIndex(index: string, value: string, w: Watcher): void {
    const watchers = this.index(index).watchers;
    const map = watchers.get(value);
    if (map === undefined) return;
    map.delete(w);
    if (map.size === 0) watchers.delete(value);
  }

  watchAll(w: Watcher, pred: Predicate<T> | null): void {
    this.allWatchers.set(w, merge(this.allWatchers.get(w), pred));
  }

  unwatchAll(w: Watcher): void {
    this.allWatchers.delete(w);
  }

  /** The computation that owns `key` (several computations may write one table). */
  ownerOf(key: Key): object | undefined {
    return this.owners.get(key);
  }

  setOwner(key: Key, owner: object | undefined): void {
    if (owner === undefined) {
      this.owners.delete(key);
      const waiting = this.contenders.get(key);
      if (waiting !== undefined) {
        this.contenders.delete(key);
        for (const w of waiting) w.markDirty();
      }
    } else {
      this.owners.set(key, owner);
    }
  }

  /** `w` wanted `key` but another computation owns it; wake `w` when the key is released. */
  contend(key: Key, w: Watcher): void {
    let set = this.contenders.get(key);
    if (set === undefined) {
      set = new Set();
      this.contenders.set(key, set);
    }
    set.add(w);
  }

  /** Number of registered dependency edges (for measurements). */
  watcherCount(): number {
    let n = this.allWatchers.size;
    for (const s of this.keyWatchers.values()) n += s.size;
    for (const idx of this.indexes.values()) for (const m of idx.watchers.values()) n += m.size;
    return n;
  }

  private index(name: string): IndexState<T> {
    const idx = this.indexes.get(name);
    if (idx === undefined) throw new Error(`table ${this.name} has no index ${name}`);
    return idx;
  }
}

function wake<T>(
  w: Watcher,
  pred: Predicate<T> | null,
  prev: T | undefined,
  next: T | undefined,
): void {
  if (pred === null || (prev !== undefined && pred(prev)) || (next !== undefined && pred(next))) {
    w.markDirty();
  }
}

function merge<T>(
  existing: Predicate<T> | null | undefined,
  pred: Predicate<T> | null,
): Predicate<T> | null {
  if (existing === undefined) return pred;
  if (existing === null || pred === null) return null;
  return (item) => existing(item) || pred(item);
}

function union(a: readonly string[], b: readonly string[]): string[] {
  const out = [...a];
  for (const v of b) if (!out.includes(v)) out.push(v);
  return out;
}
