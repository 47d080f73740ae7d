/** What the agent reads from a Pod object. */
import { isIP } from "node:net";
import { annotation, value } from "../lib/ambient/index.ts";
import type { ConfigObject } from "../lib/config/index.ts";
import type { WorkloadInfo } from "../lib/zds/index.ts";
import type { RedirectionAnnotation } from "./plan.ts";

export type Pod = ConfigObject<"Pod">;

export function podName(pod: Pod): string {
  return `${pod.metadata.namespace}/${pod.metadata.name}`;
}

/** The redirection annotation, when it is one this agent writes (`disabled` is the user's). */
export function redirectionOf(pod: Pod): RedirectionAnnotation {
  const v = pod.metadata.annotations[annotation.redirection];
  if (v === value.redirectionEnabled) return "enabled";
  if (v === value.redirectionPending) return "pending";
  return undefined;
}

/** Succeeded or Failed: its containers are done, its sandbox is (or soon will be) gone. */
export function isTerminal(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase === "Succeeded" || phase === "Failed";
}

/** The pod's IPs as the API reports them (podIPs, else podIP). */
export function statusIps(pod: Pod): string[] {
  const out: string[] = [];
  for (const p of pod.status?.podIPs ?? []) if (p.ip !== undefined && isIP(p.ip)) out.push(p.ip);
  const single = pod.status?.podIP;
  if (out.length === 0 && single !== undefined && isIP(single)) out.push(single);
  return out;
}

/** What ztunnel needs to match the pod to its workload in xDS. */
export function workloadInfo(pod: Pod): WorkloadInfo {
  return {
    name: pod.metadata.name,
    namespace: pod.metadata.namespace,
    serviceAccount: pod.spec.serviceAccountName ?? pod.spec.serviceAccount ?? "default",
  };
}
