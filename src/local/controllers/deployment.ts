/**
 * The Deployment controller's decision, pure: the ReplicaSet for the current template
 * (`<deploy>-<pod-template-hash>`, labelled and selected by `pod-template-hash`, owned by the
 * Deployment), how many replicas each of its ReplicaSets should have (RollingUpdate with
 * maxSurge/maxUnavailable, or Recreate), which old ReplicaSets to remove beyond
 * `revisionHistoryLimit`, and the Deployment's status.
 */
import { isObject, metaOf, type Json } from "../../lib/kube-api/index.ts";
import {
  controllerOf,
  nameOf,
  namespaceOf,
  replicasOf,
  selectorOf,
  specOf,
  statusOf,
  uidOf,
} from "./objects.ts";
import { podTemplateHash } from "./pod-template-hash.ts";

export const POD_TEMPLATE_HASH = "pod-template-hash";
const REVISION = "deployment.kubernetes.io/revision";

export interface DeploymentPlan {
  /** The ReplicaSet to create for the current template, if it does not exist yet. */
  readonly create?: Json;
  /** ReplicaSet name → the replicas it should have (only those that change). */
  readonly scale: ReadonlyMap<string, number>;
  /** Old ReplicaSets to delete (scaled to zero, beyond the history limit). */
  readonly delete: readonly string[];
  readonly status: Json;
}

function templateOf(d: Json): Json {
  return isObject(specOf(d)["template"]) ? (specOf(d)["template"] as Json) : {};
}

/** An absolute number or a percentage of `total` (rounded up for surge, down for unavailable). */
export function intOrPercent(
  v: unknown,
  total: number,
  roundUp: boolean,
  fallback: string,
): number {
  const text = typeof v === "number" ? String(v) : typeof v === "string" ? v : fallback;
  const m = /^(\d+)%$/.exec(text);
  if (m) {
    const x = (Number(m[1]) * total) / 100;
    return roundUp ? Math.ceil(x) : Math.floor(x);
  }
  const n = Number(text);
  return Number.isFinite(n) && n >= 0 ? n : 0;
}

function revisionOf(rs: Json): number {
  const a = metaOf(rs)["annotations"];
  return isObject(a) ? Number(a[REVISION]) || 0 : 0;
}

/** The ReplicaSet a Deployment's current template calls for. */
export function newReplicaSet(d: Json, hash: string, replicas: number, revision: number): Json {
  const tmpl = structuredClone(templateOf(d));
  const tm = isObject(tmpl["metadata"]) ? tmpl["metadata"] : (tmpl["metadata"] = {});
  tm["labels"] = { ...(isObject(tm["labels"]) ? tm["labels"] : {}), [POD_TEMPLATE_HASH]: hash };
  const labels = tm["labels"] as Record<string, string>;
  return {
    apiVersion: "apps/v1",
    kind: "ReplicaSet",
    metadata: {
      name: `${nameOf(d)}-${hash}`,
      namespace: namespaceOf(d),
      labels: { ...labels },
      annotations: { [REVISION]: String(revision) },
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "Deployment",
          name: nameOf(d),
          uid: uidOf(d),
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      replicas,
      selector: { matchLabels: { ...selectorOf(d), [POD_TEMPLATE_HASH]: hash } },
      template: tmpl,
    },
  };
}

export function planDeployment(d: Json, allReplicaSets: readonly Json[]): DeploymentPlan {
  const uid = uidOf(d);
  const owned = allReplicaSets.filter((rs) => controllerOf(rs)?.uid === uid);
  const want = replicasOf(d);
  const hash = podTemplateHash(templateOf(d));
  const newName = `${nameOf(d)}-${hash}`;
  const current = owned.find((rs) => nameOf(rs) === newName);
  const old = owned.filter((rs) => rs !== current).sort((a, b) => revisionOf(a) - revisionOf(b));
  const spec = specOf(d);
  const strategy = isObject(spec["strategy"]) ? spec["strategy"] : {};
  const recreate = strategy["type"] === "Recreate";
  const ru = isObject(strategy["rollingUpdate"]) ? strategy["rollingUpdate"] : {};
  let maxSurge = intOrPercent(ru["maxSurge"], want, true, "25%");
  const maxUnavailable = intOrPercent(ru["maxUnavailable"], want, false, "25%");
  if (maxSurge === 0 && maxUnavailable === 0) maxSurge = 1;
  const unavailableBudget = maxSurge === 0 && maxUnavailable === 0 ? 1 : maxUnavailable;

  const scale = new Map<string, number>();
  const target = new Map<string, number>();
  for (const rs of owned) target.set(nameOf(rs), replicasOf(rs, 0));
  const oldTotal = old.reduce((n, rs) => n + replicasOf(rs, 0), 0);
  const oldPods = old.reduce((n, rs) => n + (Number(statusOf(rs)["replicas"]) || 0), 0);
  let create: Json | undefined;
  let newReplicas = current ? replicasOf(current, 0) : 0;

  if (recreate) {
    for (const rs of old) target.set(nameOf(rs), 0);
    // The new pods start once every old one is gone.
    newReplicas = oldTotal === 0 && oldPods === 0 ? want : 0;
  } else if (old.length === 0) {
    newReplicas = want;
  } else {
    // Surge: the new ReplicaSet grows while the total stays within replicas + maxSurge.
    const total = oldTotal + newReplicas;
    const room = Math.max(0, want + maxSurge - total);
    newReplicas = Math.min(want, newReplicas + room);
    // Shrink the old ones while enough pods stay available.
    const ready = (rs: Json) => Number(statusOf(rs)["readyReplicas"]) || 0;
    const available = owned.reduce((n, rs) => n + ready(rs), 0);
    let budget = Math.max(0, available - (want - unavailableBudget));
    for (const rs of old) {
      let n = target.get(nameOf(rs))!;
      // Pods that are not ready cost no availability: remove them first.
      const notReady = Math.max(0, n - ready(rs));
      const cut = Math.min(n, notReady + budget);
      budget -= Math.max(0, cut - notReady);
      n -= cut;
      target.set(nameOf(rs), n);
    }
  }
  const maxRevision = Math.max(0, ...owned.map(revisionOf));
  if (current === undefined) {
    create = newReplicaSet(d, hash, newReplicas, maxRevision + 1);
  } else {
    target.set(newName, newReplicas);
  }
  for (const rs of owned) {
    const t = target.get(nameOf(rs))!;
    if (t !== replicasOf(rs, 0)) scale.set(nameOf(rs), t);
  }

  // History: old ReplicaSets at zero with no pods left, beyond the limit, go (oldest first).
  const limit =
    typeof spec["revisionHistoryLimit"] === "number" ? spec["revisionHistoryLimit"] : 10;
  const idle = old.filter(
    (rs) => target.get(nameOf(rs)) === 0 && (Number(statusOf(rs)["replicas"]) || 0) === 0,
  );
  const del = idle.slice(0, Math.max(0, idle.length - limit)).map(nameOf);

  const sum = (f: (rs: Json) => number) => owned.reduce((n, rs) => n + f(rs), 0);
  const num = (rs: Json, k: string) => Number(statusOf(rs)[k]) || 0;
  const replicas = sum((rs) => num(rs, "replicas"));
  const readyReplicas = sum((rs) => num(rs, "readyReplicas"));
  const updated = current ? num(current, "replicas") : 0;
  const available = readyReplicas >= want - unavailableBudget;
  const status: Json = {
    observedGeneration: metaOf(d)["generation"] ?? 0,
    replicas,
    updatedReplicas: updated,
    readyReplicas,
    availableReplicas: readyReplicas,
    unavailableReplicas: Math.max(0, want - readyReplicas),
    conditions: [
      {
        type: "Available",
        status: available ? "True" : "False",
        reason: available ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
        message: available
          ? "Deployment has minimum availability."
          : "Deployment does not have minimum availability.",
      },
      {
        type: "Progressing",
        status: "True",
        reason:
          updated === want && old.every((rs) => num(rs, "replicas") === 0)
            ? "NewReplicaSetAvailable"
            : "ReplicaSetUpdated",
        message: `ReplicaSet "${newName}" ${updated === want ? "has successfully progressed" : "is progressing"}.`,
      },
    ],
  };
  return { ...(create ? { create } : {}), scale, delete: del, status };
}
