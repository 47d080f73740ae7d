/** Config objects (as the files source holds them) in the API's JSON form. */
import { KINDS, type ConfigObject } from "../../lib/config/index.ts";
import type { Json } from "../../lib/kube-api/index.ts";

export function toWire(o: ConfigObject): Json {
  const m = o.metadata;
  const metadata: Json = {
    name: m.name,
    ...(m.namespace !== "" ? { namespace: m.namespace } : {}),
    uid: m.uid,
    generation: m.generation,
    creationTimestamp: m.creationTimestamp,
    ...(Object.keys(m.labels).length > 0 ? { labels: structuredClone(m.labels) } : {}),
    ...(Object.keys(m.annotations).length > 0
      ? { annotations: structuredClone(m.annotations) }
      : {}),
    ...(m.ownerReferences.length > 0
      ? { ownerReferences: structuredClone(m.ownerReferences) }
      : {}),
  };
  const out: Json = { apiVersion: o.apiVersion, kind: o.kind, metadata };
  if (KINDS[o.kind].topLevelSpec) Object.assign(out, structuredClone(o.spec));
  else out["spec"] = structuredClone(o.spec);
  if (o.status !== undefined) out["status"] = structuredClone(o.status);
  return out;
}
