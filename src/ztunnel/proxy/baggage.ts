/**
 * The `baggage` ztunnel exchanges on HBONE (INTEROP §1.4, §1.5): the source workload's metadata on
 * every CONNECT, the destination workload's on the 200, and reading a peer's back into telemetry
 * (a source known only through a gateway is described by its baggage).
 */
import { formatBaggage } from "../../lib/hbone/index.ts";
import type { DerivedWorkload } from "../telemetry/index.ts";
import type { Workload } from "../state/index.ts";

const cache = new WeakMap<Workload, Map<string, string>>();

/**
 * `k8s.cluster.name=...,k8s.namespace.name=...,k8s.<type>.name=...,service.name=...,
 * service.version=...,cloud.region=...,cloud.availability_zone=...` (empty values left out),
 * computed once per workload object.
 */
export function workloadBaggage(w: Workload, clusterName: string): string {
  let byCluster = cache.get(w);
  let v = byCluster?.get(clusterName);
  if (v !== undefined) return v;
  v = formatBaggage([
    ["k8s.cluster.name", clusterName],
    ["k8s.namespace.name", w.namespace],
    [`k8s.${w.workloadType}.name`, w.workloadName],
    ["service.name", w.canonicalName],
    ["service.version", w.canonicalRevision],
    ["cloud.region", w.locality.region],
    ["cloud.availability_zone", w.locality.zone],
  ]);
  if (byCluster === undefined) {
    byCluster = new Map();
    cache.set(w, byCluster);
  }
  byCluster.set(clusterName, v);
  return v;
}

const workloadNameKeys = [
  "k8s.deployment.name",
  "k8s.cronjob.name",
  "k8s.pod.name",
  "k8s.job.name",
] as const;

/** The telemetry a peer's `baggage` describes (members ztunnel does not know are ignored). */
export function derivedFromBaggage(baggage: ReadonlyMap<string, string>): DerivedWorkload {
  let workloadName: string | undefined;
  for (const k of workloadNameKeys) workloadName = baggage.get(k) ?? workloadName;
  return {
    clusterId: baggage.get("k8s.cluster.name"),
    namespace: baggage.get("k8s.namespace.name"),
    workloadName,
    app: baggage.get("service.name"),
    revision: baggage.get("service.version"),
    region: baggage.get("cloud.region"),
    zone: baggage.get("cloud.availability_zone"),
  };
}
