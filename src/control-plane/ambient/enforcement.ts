/**
 * Which component enforces each AuthorizationPolicy — ztunnel (selector/namespace policies,
 * L4 only), waypoints (targetRefs), or nobody — and how faithfully, in words an operator can act
 * on. The CLI shows this; the waypoint's configuration reads the targetRefs bindings from it.
 */
import { label, value } from "../model/index.ts";
import type { AuthorizationPolicy } from "../model/index.ts";
import { isDryRun, targetRefsOf } from "./authorization.ts";
import type { Ctx } from "./krt/index.ts";
import type { AmbientOptions } from "./options.ts";
import type { AmbientTables, Enforcer, EnforcementInfo } from "./tables.ts";
import { waypointForService } from "./waypoints.ts";

export function policyEnforcement(
  ctx: Ctx,
  policy: AuthorizationPolicy,
  t: AmbientTables,
  opts: AmbientOptions,
): EnforcementInfo {
  const namespace = policy.metadata.namespace ?? "";
  const key = `${namespace}/${policy.metadata.name}`;
  const spec = policy.spec ?? {};
  const refs = targetRefsOf(spec);
  const notes: string[] = [];
  const waypoints: string[] = [];
  const gatewayClasses: string[] = [];
  let enforcedBy: Enforcer[] = [];
  const action = spec.action ?? "ALLOW";

  if (refs.length > 0) {
    for (const ref of refs) {
      const refNs = ref.namespace ?? namespace;
      const refKey = `${refNs}/${ref.name}`;
      const group = ref.group ?? "";
      if (ref.kind === "GatewayClass" && group === "gateway.networking.k8s.io") {
        if (namespace !== opts.rootNamespace) {
          notes.push(
            `targetRef GatewayClass ${ref.name} ignored: a policy referencing a GatewayClass must be in the root namespace ${opts.rootNamespace}`,
          );
          continue;
        }
        const gc = ctx.get(t.gatewayClasses, ref.name);
        if (gc === undefined) notes.push(`targetRef GatewayClass ${ref.name} not found`);
        else if (gc.spec?.controllerName !== value.meshController) {
          notes.push(
            `targetRef GatewayClass ${ref.name} ignored: its controllerName is not ${value.meshController}`,
          );
        } else gatewayClasses.push(ref.name);
      } else if (ref.kind === "Gateway" && group === "gateway.networking.k8s.io") {
        const w = ctx.get(t.waypoints, refKey);
        if (w === undefined)
          notes.push(
            `targetRef Gateway ${refKey} is not a ready waypoint (missing, or no status addresses yet)`,
          );
        else waypoints.push(w.key);
      } else if (
        (ref.kind === "Service" && (group === "" || group === "core")) ||
        (ref.kind === "ServiceEntry" && group === "networking.istio.io")
      ) {
        const obj =
          ref.kind === "Service" ? ctx.get(t.services, refKey) : ctx.get(t.serviceEntries, refKey);
        if (obj === undefined) {
          notes.push(`targetRef ${ref.kind} ${refKey} not found`);
          continue;
        }
        const binding = waypointForService(ctx, t, obj.metadata);
        if (binding.waypoint === undefined) {
          const why =
            binding.error ?? `it has no ${label.useWaypoint} label (nor does its namespace)`;
          notes.push(
            `targetRef ${ref.kind} ${refKey} is not bound to a waypoint: ${why}; nothing enforces this policy for it`,
          );
        } else {
          waypoints.push(binding.waypoint.key);
        }
      } else {
        notes.push(
          `targetRef ${group === "" ? "" : `${group}/`}${ref.kind} ${refKey} is not a supported target for ambient (Gateway, GatewayClass, Service, ServiceEntry)`,
        );
      }
    }
    if (waypoints.length > 0 || gatewayClasses.length > 0) {
      enforcedBy = ["waypoint"];
      for (const w of new Set(waypoints)) notes.push(`enforced by waypoint gateway ${w}`);
      for (const gc of gatewayClasses)
        notes.push(`enforced by every waypoint of GatewayClass ${gc}`);
    }
    notes.push("not sent to ztunnel: policies with targetRef(s) are for waypoints");
    if (isDryRun(policy))
      notes.push(`${annotationDryRun}=true: the waypoint logs decisions without enforcing them`);
  } else {
    const info = ctx.get(t.policies, key);
    if (info === undefined || info.resource === undefined) {
      notes.push(`not enforced: ${info?.skipped ?? "not converted"}`);
      if (action === "CUSTOM" || action === "AUDIT")
        notes.push("a waypoint can run it if the policy uses targetRefs");
    } else {
      enforcedBy = ["ztunnel"];
      if (spec.selector !== undefined && info.selector === undefined) {
        notes.push(
          "selector without matchLabels: sent with WORKLOAD_SELECTOR scope but attached to no workload, so it has no effect",
        );
      }
      for (const n of info.notes) notes.push(n.message);
      if (info.summary !== undefined) notes.push(info.summary);
    }
  }
  const uniqueWaypoints = [...new Set(waypoints)].sort();
  return {
    key,
    enforcedBy,
    waypoints: uniqueWaypoints,
    gatewayClasses,
    notes,
    fingerprint: JSON.stringify([enforcedBy, uniqueWaypoints, gatewayClasses, notes]),
  };
}

const annotationDryRun = "istio.io/dry-run";
