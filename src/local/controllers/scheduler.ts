/**
 * Scheduling, pure: a pod without `spec.nodeName` goes to a Ready, schedulable node whose
 * labels match its `nodeSelector`, spreading first the pods of one owner (a ReplicaSet's
 * replicas land on different nodes) and then all pods; ties go by node name.
 */
import { isObject, str, type Json } from "../../lib/kube-api/index.ts";
import {
  controllerOf,
  isActivePod,
  labelsOf,
  matchLabels,
  nameOf,
  namespaceOf,
  specOf,
} from "./objects.ts";

/**
 * Nodes that may take pods: not cordoned and not known to be down (Ready True, or Unknown: a node
 * of the topology whose kubelet has not reported yet gets its pods when it starts).
 */
export function schedulableNodes(nodes: readonly Json[]): Json[] {
  return nodes.filter((n) => !conditionFalse(n, "Ready") && specOf(n)["unschedulable"] !== true);
}

function conditionFalse(o: Json, type: string): boolean {
  const conds = (isObject(o["status"]) ? o["status"] : {})["conditions"];
  const c: unknown = Array.isArray(conds)
    ? (conds as unknown[]).find((x) => isObject(x) && x["type"] === type)
    : undefined;
  return !isObject(c) || c["status"] === "False";
}

export function chooseNode(
  pod: Json,
  nodes: readonly Json[],
  pods: readonly Json[],
): string | undefined {
  const sel = specOf(pod)["nodeSelector"];
  const selector = isObject(sel) ? (sel as Record<string, string>) : {};
  const fit = schedulableNodes(nodes).filter((n) => matchLabels(selector, labelsOf(n)));
  if (fit.length === 0) return undefined;
  const owner = controllerOf(pod)?.uid;
  const load = new Map<string, { same: number; all: number }>();
  for (const n of fit) load.set(nameOf(n), { same: 0, all: 0 });
  for (const p of pods) {
    const l = load.get(str(specOf(p)["nodeName"]));
    if (l === undefined || !isActivePod(p)) continue;
    l.all++;
    if (
      owner !== undefined &&
      controllerOf(p)?.uid === owner &&
      namespaceOf(p) === namespaceOf(pod)
    )
      l.same++;
  }
  return [...load.entries()].sort(
    (a, b) => a[1].same - b[1].same || a[1].all - b[1].all || (a[0] < b[0] ? -1 : 1),
  )[0]![0];
}
