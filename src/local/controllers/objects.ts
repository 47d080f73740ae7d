/** Typed reads of the JSON objects the controllers work on (pods, ReplicaSets, Deployments, Nodes). */
import { isObject, metaOf, str, type Json } from "../../lib/kube-api/index.ts";

export interface OwnerRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
  readonly controller?: boolean;
  readonly blockOwnerDeletion?: boolean;
}

export function nameOf(o: Json): string {
  return str(metaOf(o)["name"]);
}

export function namespaceOf(o: Json): string {
  return str(metaOf(o)["namespace"]);
}

export function uidOf(o: Json): string {
  return str(metaOf(o)["uid"]);
}

export function labelsOf(o: Json): Record<string, string> {
  const l = metaOf(o)["labels"];
  return isObject(l) ? (l as Record<string, string>) : {};
}

export function specOf(o: Json): Json {
  return isObject(o["spec"]) ? o["spec"] : {};
}

export function statusOf(o: Json): Json {
  return isObject(o["status"]) ? o["status"] : {};
}

/** The owner that controls an object (ownerReferences entry with controller: true). */
export function controllerOf(o: Json): OwnerRef | undefined {
  const refs = metaOf(o)["ownerReferences"];
  if (!Array.isArray(refs)) return undefined;
  return (refs as OwnerRef[]).find((r) => isObject(r) && r.controller === true);
}

export function isTerminating(o: Json): boolean {
  return str(metaOf(o)["deletionTimestamp"]) !== "";
}

export function podPhase(pod: Json): string {
  return str(statusOf(pod)["phase"]);
}

/** Not terminating and not finished: a pod that counts towards its ReplicaSet's replicas. */
export function isActivePod(pod: Json): boolean {
  const phase = podPhase(pod);
  return !isTerminating(pod) && phase !== "Succeeded" && phase !== "Failed";
}

export function conditionTrue(o: Json, type: string): boolean {
  const conds = statusOf(o)["conditions"];
  return (
    Array.isArray(conds) &&
    conds.some((c) => isObject(c) && c["type"] === type && c["status"] === "True")
  );
}

export function isPodReady(pod: Json): boolean {
  return podPhase(pod) === "Running" && conditionTrue(pod, "Ready");
}

export function restartCount(pod: Json): number {
  const cs = statusOf(pod)["containerStatuses"];
  if (!Array.isArray(cs)) return 0;
  return cs.reduce(
    (n: number, c) =>
      n + (isObject(c) && typeof c["restartCount"] === "number" ? c["restartCount"] : 0),
    0,
  );
}

export function matchLabels(
  selector: Record<string, string>,
  labels: Record<string, string>,
): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** `spec.selector.matchLabels` (matchExpressions are not supported here). */
export function selectorOf(o: Json): Record<string, string> {
  const sel = specOf(o)["selector"];
  const m = isObject(sel) && isObject(sel["matchLabels"]) ? sel["matchLabels"] : {};
  return m as Record<string, string>;
}

export function replicasOf(o: Json, fallback = 1): number {
  const r = specOf(o)["replicas"];
  return typeof r === "number" && r >= 0 ? r : fallback;
}
