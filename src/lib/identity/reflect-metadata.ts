/**
 * The smallest part of the Reflect metadata API that `@peculiar/x509` needs.
 *
 * `@peculiar/x509` registers its algorithm classes with `tsyringe`, which refuses to load unless
 * `Reflect.getMetadata` exists (it reads constructor parameter metadata written by TypeScript
 * decorators; x509's compiled classes write none, so lookups just return undefined). The project
 * does not depend on the `reflect-metadata` package, so this module installs a WeakMap-backed
 * stand-in when — and only when — no polyfill is present. Import it before `@peculiar/x509`.
 */

type MetadataTarget = object;
type MetadataStore = Map<string | symbol | undefined, Map<unknown, unknown>>;

interface ReflectMetadataApi {
  getMetadata?: (key: unknown, target: MetadataTarget, property?: string | symbol) => unknown;
  getOwnMetadata?: (key: unknown, target: MetadataTarget, property?: string | symbol) => unknown;
  defineMetadata?: (
    key: unknown,
    value: unknown,
    target: MetadataTarget,
    property?: string | symbol,
  ) => void;
  hasMetadata?: (key: unknown, target: MetadataTarget, property?: string | symbol) => boolean;
  hasOwnMetadata?: (key: unknown, target: MetadataTarget, property?: string | symbol) => boolean;
}

const reflect = Reflect as unknown as ReflectMetadataApi;

if (typeof reflect.getMetadata !== "function") {
  const stores = new WeakMap<MetadataTarget, MetadataStore>();

  const ownMap = (
    target: MetadataTarget,
    property: string | symbol | undefined,
    create: boolean,
  ) => {
    let store = stores.get(target);
    if (store === undefined) {
      if (!create) return undefined;
      store = new Map();
      stores.set(target, store);
    }
    let map = store.get(property);
    if (map === undefined && create) {
      map = new Map();
      store.set(property, map);
    }
    return map;
  };

  const hasOwn = (key: unknown, target: MetadataTarget, property?: string | symbol): boolean =>
    ownMap(target, property, false)?.has(key) ?? false;

  const getOwn = (key: unknown, target: MetadataTarget, property?: string | symbol): unknown =>
    ownMap(target, property, false)?.get(key);

  const has = (key: unknown, target: MetadataTarget, property?: string | symbol): boolean => {
    // Metadata is inherited along the prototype chain, as in the proposal.
    for (
      let t: unknown = target;
      (t !== null && typeof t === "object") || typeof t === "function";
    ) {
      if (hasOwn(key, t, property)) return true;
      t = Object.getPrototypeOf(t);
    }
    return false;
  };

  const get = (key: unknown, target: MetadataTarget, property?: string | symbol): unknown => {
    for (
      let t: unknown = target;
      (t !== null && typeof t === "object") || typeof t === "function";
    ) {
      const map = ownMap(t, property, false);
      if (map?.has(key) === true) return map.get(key);
      t = Object.getPrototypeOf(t);
    }
    return undefined;
  };

  reflect.getOwnMetadata = getOwn;
  reflect.hasOwnMetadata = hasOwn;
  reflect.getMetadata = get;
  reflect.hasMetadata = has;
  reflect.defineMetadata = (key, value, target, property) => {
    ownMap(target, property, true)?.set(key, value);
  };
}
