/**
 * The Address resources as the xDS server reads them. Like lib/xds's ResourceStore (by name, by
 * alias, by related name), plus one thing that matters at 100k resources: a stream's first
 * request walks every name and then looks each up (`names()` then `get(name)`), and with
 * 1,000 on-demand proxies that is 10^8 lookups in a large Map — memory-latency bound, measured
 * at ~15% of the control plane's CPU in bench/control-plane. `names()` remembers the entry it
 * just yielded, so the `get` that follows is a pointer comparison.
 */
import type { ResourceProvider, StoredResource } from "../../lib/xds/index.ts";

function addTo(index: Map<string, Set<string>>, key: string, name: string): void {
  let set = index.get(key);
  if (set === undefined) {
    set = new Set();
    index.set(key, set);
  }
  set.add(name);
}

function removeFrom(index: Map<string, Set<string>>, key: string, name: string): void {
  const set = index.get(key);
  if (set === undefined) return;
  set.delete(name);
  if (set.size === 0) index.delete(key);
}

const NONE: Iterable<string> = Object.freeze([]);

export class AddressProvider<M> implements ResourceProvider<M> {
  readonly #byName = new Map<string, StoredResource<M>>();
  readonly #byAlias = new Map<string, Set<string>>();
  readonly #byRelated = new Map<string, Set<string>>();
  #cursorName: string | undefined;
  #cursor: StoredResource<M> | undefined;

  get size(): number {
    return this.#byName.size;
  }

  get(name: string): StoredResource<M> | undefined {
    if (name === this.#cursorName) return this.#cursor;
    return this.#byName.get(name);
  }

  withAlias(alias: string): Iterable<string> {
    return this.#byAlias.get(alias) ?? NONE;
  }

  dependents(name: string): Iterable<string> {
    return this.#byRelated.get(name) ?? NONE;
  }

  *names(): Generator<string> {
    try {
      for (const [name, r] of this.#byName) {
        this.#cursorName = name;
        this.#cursor = r;
        yield name;
      }
    } finally {
      this.#cursorName = undefined;
      this.#cursor = undefined;
    }
  }

  /** Stores resources; returns the names whose version changed. */
  upsert(resources: Iterable<StoredResource<M>>): string[] {
    this.#cursorName = undefined;
    const changed: string[] = [];
    for (const r of resources) {
      const old = this.#byName.get(r.name);
      if (old !== undefined && old.version === r.version) continue;
      if (old !== undefined) this.#unindex(old);
      this.#byName.set(r.name, r);
      for (const a of r.aliases) addTo(this.#byAlias, a, r.name);
      for (const n of r.related) addTo(this.#byRelated, n, r.name);
      changed.push(r.name);
    }
    return changed;
  }

  /** Removes resources; returns the names that existed. */
  remove(names: Iterable<string>): string[] {
    this.#cursorName = undefined;
    const removed: string[] = [];
    for (const name of names) {
      const old = this.#byName.get(name);
      if (old === undefined) continue;
      this.#unindex(old);
      this.#byName.delete(name);
      removed.push(name);
    }
    return removed;
  }

  #unindex(r: StoredResource<M>): void {
    for (const a of r.aliases) removeFrom(this.#byAlias, a, r.name);
    for (const n of r.related) removeFrom(this.#byRelated, n, r.name);
  }
}
