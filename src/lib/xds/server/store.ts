/**
 * Where the server reads a type's resources from. `ResourceStore` is the built-in provider the
 * application fills with upsert/remove; an application that already indexes its resources may
 * implement `ResourceProvider` itself and tell the server what changed (`XdsServer.changed`).
 */
import type { DescMessage } from "@bufbuild/protobuf";
import { storeResource } from "./resource.ts";
import type { ResourceInput, StoredResource } from "./resource.ts";

/** Read access to one type's current resources. Every method must be cheap (index lookups). */
export interface ResourceProvider<M = unknown> {
  get(name: string): StoredResource<M> | undefined;
  /** Names of the resources carrying `alias`. */
  withAlias(alias: string): Iterable<string>;
  /** Names of the resources that list `name` in their `related`. */
  dependents(name: string): Iterable<string>;
  /** Every resource name (wildcard subscribers receive those their view selects). */
  names(): Iterable<string>;
}

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

export class ResourceStore<M = unknown> implements ResourceProvider<M> {
  readonly typeUrl: string;
  readonly #schema: DescMessage | undefined;
  readonly #byName = new Map<string, StoredResource<M>>();
  readonly #byAlias = new Map<string, Set<string>>();
  readonly #byRelated = new Map<string, Set<string>>();

  constructor(typeUrl: string, schema?: DescMessage) {
    this.typeUrl = typeUrl;
    this.#schema = schema;
  }

  get size(): number {
    return this.#byName.size;
  }

  get(name: string): StoredResource<M> | undefined {
    return this.#byName.get(name);
  }

  withAlias(alias: string): Iterable<string> {
    return this.#byAlias.get(alias) ?? NONE;
  }

  dependents(name: string): Iterable<string> {
    return this.#byRelated.get(name) ?? NONE;
  }

  names(): Iterable<string> {
    return this.#byName.keys();
  }

  /**
   * Adds or replaces resources; returns the names whose version changed. The whole batch is
   * encoded before anything is stored, so a bad payload leaves the store untouched.
   */
  upsert(inputs: Iterable<ResourceInput<M>>): string[] {
    const encoded: StoredResource<M>[] = [];
    for (const input of inputs) encoded.push(storeResource(this.typeUrl, input, this.#schema));
    const changed: string[] = [];
    for (const r of encoded) {
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

  /** Removes resources by name; returns the names that existed. */
  remove(names: Iterable<string>): string[] {
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

  /** Makes the store hold exactly `inputs`; returns every changed or removed name. */
  replace(inputs: Iterable<ResourceInput<M>>): string[] {
    const list = [...inputs];
    const keep = new Set(list.map((i) => i.name));
    const changed = this.upsert(list);
    const gone = [...this.#byName.keys()].filter((n) => !keep.has(n));
    return [...changed, ...this.remove(gone)];
  }

  #unindex(r: StoredResource<M>): void {
    for (const a of r.aliases) removeFrom(this.#byAlias, a, r.name);
    for (const n of r.related) removeFrom(this.#byRelated, n, r.name);
  }
}
