/**
 * A snapshot is every current object by kind and key; a change is one object added, replaced or
 * removed. The ambient conversion takes either: a whole snapshot (pure, from scratch) or a
 * stream of changes (incremental). `diffSnapshots` turns two snapshots into the changes between
 * them, so a config source that only produces snapshots can still drive incremental pushes.
 */
import { objectKey, resourceKindOf, resourceKinds } from "./objects.ts";
import type { KubeObject, ResourceKind } from "./objects.ts";

export type Snapshot = ReadonlyMap<ResourceKind, ReadonlyMap<string, KubeObject>>;

export type ConfigChange =
  { op: "upsert"; object: KubeObject } | { op: "delete"; kind: ResourceKind; key: string };

/**
 * Builds a snapshot from objects. Kinds the ambient conversion does not read are skipped and
 * returned in `ignored` (so a caller can tell a typo from an irrelevant kind). A later object with
 * the same kind and key replaces an earlier one.
 */
export function snapshotOf(objects: Iterable<KubeObject>): {
  snapshot: Snapshot;
  ignored: KubeObject[];
} {
  const byKind = new Map<ResourceKind, Map<string, KubeObject>>();
  for (const k of resourceKinds) byKind.set(k, new Map());
  const ignored: KubeObject[] = [];
  for (const obj of objects) {
    const kind = resourceKindOf(obj);
    if (kind === undefined) {
      ignored.push(obj);
      continue;
    }
    byKind.get(kind)?.set(objectKey(kind, obj.metadata), obj);
  }
  return { snapshot: byKind, ignored };
}

/** The changes that turn `prev` into `next`. Unchanged objects (same identity, or same non-empty
 * resourceVersion, or equal content) produce no change. Output is sorted by kind then key. */
export function diffSnapshots(prev: Snapshot, next: Snapshot): ConfigChange[] {
  const out: ConfigChange[] = [];
  for (const kind of resourceKinds) {
    const before = prev.get(kind) ?? new Map<string, KubeObject>();
    const after = next.get(kind) ?? new Map<string, KubeObject>();
    const keys = new Set([...before.keys(), ...after.keys()]);
    for (const key of [...keys].sort()) {
      const a = before.get(key);
      const b = after.get(key);
      if (b === undefined) {
        if (a !== undefined) out.push({ op: "delete", kind, key });
        continue;
      }
      if (a !== undefined && sameObject(a, b)) continue;
      out.push({ op: "upsert", object: b });
    }
  }
  return out;
}

function sameObject(a: KubeObject, b: KubeObject): boolean {
  if (a === b) return true;
  const ra = a.metadata.resourceVersion;
  const rb = b.metadata.resourceVersion;
  if (ra !== undefined && ra !== "" && ra === rb) return true;
  return JSON.stringify(a) === JSON.stringify(b);
}
