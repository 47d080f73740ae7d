/**
 * Workload identity metadata derived from a pod the way istiod derives it: the owning workload
 * (Deployment, CronJob, Job, ...) by the heuristics of `GetDeployMetaFromPod` (controller owner
 * reference of a generated pod; ReplicaSet → Deployment by the `pod-template-hash` suffix; Job →
 * CronJob by the `-<8-10 digit timestamp>` suffix), and the canonical service name/revision.
 * Owner objects themselves are never looked up, exactly like istiod.
 */
import { label } from "../../lib/ambient/index.ts";
import type { ObjectMeta, Pod } from "./objects.ts";

/**
 * A pod's service account. The API server always fills `serviceAccountName` (with `default` when
 * unset); objects from files may not have gone through it, so apply the same default here.
 */
export function podServiceAccount(pod: Pod): string {
  const sa = pod.spec?.serviceAccountName ?? pod.spec?.serviceAccount ?? "";
  return sa === "" ? "default" : sa;
}

export interface WorkloadOwner {
  /** Owner name used as `workload_name` (pod name when there is no controller). */
  name: string;
  /** Owner kind: `Pod`, `Deployment`, `CronJob`, `Job`, `ReplicaSet`, `Rollout`, `DeploymentConfig`, ... */
  kind: string;
}

const cronJobSuffix = /^(.+)-\d{8,10}$/;

/** `kube.GetDeployMetaFromPod`: heuristics only, no owner lookups. */
export function deployMetaFromPod(meta: ObjectMeta): WorkloadOwner {
  const podName = meta.name;
  let name = podName;
  let kind = "Pod";
  const controller = (meta.ownerReferences ?? []).find((r) => r.controller === true);
  if (controller !== undefined && isGenerated(meta, controller.kind, controller.name)) {
    kind = controller.kind;
    name = controller.name;
    const labels = meta.labels ?? {};
    const hash = labels[label.podTemplateHash] ?? "";
    const rolloutHash = labels[label.rolloutsPodTemplateHash] ?? "";
    if (kind === "ReplicaSet" && hash !== "" && controller.name.endsWith(hash)) {
      name = trimSuffix(controller.name, `-${hash}`);
      kind = "Deployment";
    } else if (
      kind === "ReplicaSet" &&
      rolloutHash !== "" &&
      controller.name.endsWith(rolloutHash)
    ) {
      name = trimSuffix(controller.name, `-${rolloutHash}`);
      kind = "Rollout";
    } else if (kind === "ReplicationController" && (labels["deploymentconfig"] ?? "") !== "") {
      name = labels["deploymentconfig"] ?? name;
      kind = "DeploymentConfig";
    } else if (kind === "Job") {
      const m = cronJobSuffix.exec(controller.name);
      if (m?.[1] !== undefined) {
        name = m[1];
        kind = "CronJob";
      }
    }
  }
  if (name === "") name = podName;
  return { name, kind };
}

/** `kube.GetWorkloadMetaFromPod`: the heuristics, overridden by `service.istio.io/workload-name`. */
export function workloadOwnerOfPod(meta: ObjectMeta): WorkloadOwner {
  const owner = deployMetaFromPod(meta);
  const override = meta.labels?.[label.workloadName];
  return override === undefined ? owner : { name: override, kind: owner.kind };
}

/** `WorkloadNameFromWorkloadEntry`: auto-registration group, then the workload-name label, then the name. */
export function workloadNameOfWorkloadEntry(
  meta: ObjectMeta,
  labels: Readonly<Record<string, string>>,
): string {
  const group = meta.annotations?.["istio.io/autoRegistrationGroup"];
  if (group !== undefined) return group;
  return labels[label.workloadName] ?? meta.name;
}

const nameLabels = [label.canonicalName, "app.kubernetes.io/name", "app"];
const revisionLabels = [label.canonicalRevision, "app.kubernetes.io/version", "version"];

/** `kubelabels.CanonicalService`: the first present label of each chain, else the workload name / "latest". */
export function canonicalService(
  labels: Readonly<Record<string, string>>,
  workloadName: string,
): { name: string; revision: string } {
  return {
    name: firstLabel(labels, nameLabels) ?? workloadName,
    revision: firstLabel(labels, revisionLabels) ?? "latest",
  };
}

function firstLabel(
  labels: Readonly<Record<string, string>>,
  keys: readonly string[],
): string | undefined {
  for (const k of keys) {
    const v = labels[k];
    if (v !== undefined) return v;
  }
  return undefined;
}

/**
 * istiod only follows owners of generated pods (`generateName` set). Config sources that drop
 * `generateName` (the config store keeps only core metadata) still let us recognise the two
 * controllers whose pods are always generated and whose names say so: a ReplicaSet whose name
 * ends in the pod's `pod-template-hash`, and a Job.
 */
function isGenerated(meta: ObjectMeta, ownerKind: string, ownerName: string): boolean {
  if (meta.generateName !== undefined) return meta.generateName !== "";
  if (ownerKind === "Job") return true;
  const hash = meta.labels?.[label.podTemplateHash] ?? "";
  return ownerKind === "ReplicaSet" && hash !== "" && ownerName.endsWith(hash);
}

function trimSuffix(s: string, suffix: string): string {
  return s.endsWith(suffix) ? s.slice(0, s.length - suffix.length) : s;
}
