/**
 * The ReplicaSet controller's decision, pure: which pods to create and which to delete so that
 * `spec.replicas` active pods match the template, and the status to report. Pods to remove are
 * chosen as Kubernetes does: unscheduled before scheduled, not-ready before ready, more restarts
 * before fewer, newer before older.
 */
import { randomSuffix, type Json } from "../../lib/kube-api/index.ts";
import {
  controllerOf,
  isActivePod,
  isPodReady,
  labelsOf,
  nameOf,
  namespaceOf,
  replicasOf,
  restartCount,
  specOf,
  uidOf,
} from "./objects.ts";
import { isObject, metaOf, str } from "../../lib/kube-api/index.ts";

export interface ReplicaSetPlan {
  readonly create: readonly Json[];
  /** Names of pods to delete (gracefully). */
  readonly delete: readonly string[];
  readonly status: Json;
}

/** Most pods created in one pass (the rest come on the next), as the real controller's burst. */
const BURST = 100;

/** The pods a ReplicaSet controls. */
export function ownedPods(rs: Json, pods: readonly Json[]): Json[] {
  const uid = uidOf(rs);
  return pods.filter((p) => controllerOf(p)?.uid === uid);
}

/** A new pod from the ReplicaSet's template: `<rs>-<5 random>`, owned by the ReplicaSet. */
export function podFromTemplate(rs: Json, suffix: string = randomSuffix(5)): Json {
  const tmpl = isObject(specOf(rs)["template"]) ? (specOf(rs)["template"] as Json) : {};
  const tm = metaOf(tmpl);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: `${nameOf(rs)}-${suffix}`,
      namespace: namespaceOf(rs),
      labels: { ...(isObject(tm["labels"]) ? tm["labels"] : {}) },
      ...(isObject(tm["annotations"]) ? { annotations: { ...tm["annotations"] } } : {}),
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "ReplicaSet",
          name: nameOf(rs),
          uid: uidOf(rs),
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: structuredClone(isObject(tmpl["spec"]) ? tmpl["spec"] : {}),
  };
}

function deletionRank(p: Json): [number, number, number, string] {
  const scheduled = str(specOf(p)["nodeName"]) !== "" ? 1 : 0;
  const ready = isPodReady(p) ? 1 : 0;
  const created = str(metaOf(p)["creationTimestamp"]);
  return [scheduled, ready, -restartCount(p), created];
}

export function planReplicaSet(rs: Json, pods: readonly Json[]): ReplicaSetPlan {
  const owned = ownedPods(rs, pods);
  const active = owned.filter(isActivePod);
  const want = replicasOf(rs);
  const create: Json[] = [];
  const del: string[] = [];
  if (active.length < want) {
    const n = Math.min(want - active.length, BURST);
    for (let i = 0; i < n; i++) create.push(podFromTemplate(rs));
  } else if (active.length > want) {
    const ranked = [...active].sort((a, b) => {
      const ra = deletionRank(a);
      const rb = deletionRank(b);
      for (let i = 0; i < 3; i++) if (ra[i] !== rb[i]) return (ra[i] as number) - (rb[i] as number);
      // Newer first.
      return ra[3] < rb[3] ? 1 : ra[3] > rb[3] ? -1 : 0;
    });
    for (const p of ranked.slice(0, active.length - want)) del.push(nameOf(p));
  }
  const ready = active.filter(isPodReady).length;
  const tmplLabels = labelsOf(
    isObject(specOf(rs)["template"]) ? (specOf(rs)["template"] as Json) : {},
  );
  const status: Json = {
    replicas: active.length,
    fullyLabeledReplicas: active.filter((p) =>
      Object.entries(tmplLabels).every(([k, v]) => labelsOf(p)[k] === v),
    ).length,
    readyReplicas: ready,
    availableReplicas: ready,
    observedGeneration: metaOf(rs)["generation"] ?? 0,
  };
  return { create, delete: del, status };
}
