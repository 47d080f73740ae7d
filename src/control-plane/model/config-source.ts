/**
 * Bridges the config store (`lib/config`) to the ambient model: its objects are used as they are
 * (the model's types are a structural subset of the store's), its batches become changes, and a
 * store's current contents become a snapshot.
 */
import type { ConfigBatch, ConfigObject, ConfigStore } from "../../lib/config/index.ts";
import { objectKey, resourceKindOf, resourceKinds } from "./objects.ts";
import type { KubeObject, ResourceKind } from "./objects.ts";
import type { ConfigChange, Snapshot } from "./snapshot.ts";

/** A store object as a model object (no copy: stored objects are frozen values). */
export function fromConfigObject(obj: ConfigObject): KubeObject {
  return obj;
}

/** The changes a store batch makes; kinds the ambient model does not read are skipped. */
export function changesFromBatch(batch: ConfigBatch): ConfigChange[] {
  const out: ConfigChange[] = [];
  for (const e of batch.events) {
    const obj = fromConfigObject(e.type === "deleted" ? e.old : e.new);
    const kind = resourceKindOf(obj);
    if (kind === undefined) continue;
    if (e.type === "deleted") out.push({ op: "delete", kind, key: objectKey(kind, obj.metadata) });
    else out.push({ op: "upsert", object: obj });
  }
  return out;
}

/** Everything the store holds now, as a snapshot. */
export function snapshotFromStore(store: Pick<ConfigStore, "list">): Snapshot {
  const out = new Map<ResourceKind, Map<string, KubeObject>>();
  for (const kind of resourceKinds) {
    const byKey = new Map<string, KubeObject>();
    for (const o of store.list(kind)) {
      const obj = fromConfigObject(o);
      byKey.set(objectKey(kind, obj.metadata), obj);
    }
    out.set(kind, byKey);
  }
  return out;
}
