/**
 * The Address resources as the xDS server reads them. Like lib/xds's ResourceStore (by name, by
 * alias, by related name), plus one thing that matters at 100k resources: a stream's first
 * request walks every name and then looks each up (`names()` then `get(name)`), and with
 * 1,000 on-demand proxies that is 10^8 lookups in a large Map — memory-latency bound, measured
 * at ~15% of the control plane's CPU in bench/control-plane. `names()` walks a cached array of
 * the resources (rebuilt after writes) with one reused iterator result, and remembers the entry
 * it just returned, so the `get` that follows is a pointer comparison and the walk allocates
 * nothing per name (the garbage collector was the other big cost of those walks).
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
  /** `istio.workload.Workload` is served from these resources too (changes go to both). */
  servesWorkloads = false;
  /** Every resource, for walks; dropped on writes and rebuilt by the next walk. */
  #list: StoredResource<M>[] | undefined;

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

  names(): Iterable<string> {
    const list = (this.#list ??= [...this.#byName.values()]);
    return {
      [Symbol.iterator]: () => {
        let i = 0;
        // One result object for the whole walk: for-of reads `value` before calling next().
        const result: IteratorResult<string, undefined> = { done: false, value: "" };
        const end = (): IteratorResult<string, undefined> => {
          this.#cursorName = undefined;
          this.#cursor = undefined;
          return { done: true, value: undefined };
        };
        return {
          next: (): IteratorResult<string, undefined> => {
            if (i >= list.length) return end();
            const r = list[i++]!;
            this.#cursorName = r.name;
            this.#cursor = r;
            result.value = r.name;
            return result;
          },
          return: end,
        };
      },
    };
  }

  /** Stores resources; returns the names whose version changed. */
  upsert(resources: Iterable<StoredResource<M>>): string[] {
    this.#cursorName = undefined;
    this.#list = undefined;
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
    this.#list = undefined;
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
