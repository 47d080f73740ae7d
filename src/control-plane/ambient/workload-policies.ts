/**
 * The `authorization_policies` list of a workload (istiod `buildWorkloadPolicies` +
 * `implicitWaypointPolicies`): the selector policies of its namespace and the root namespace that
 * select it (sorted), then the PeerAuthentication-derived keys, then the allow-from-waypoint
 * policies of the waypoints in front of it.
 */
import { create } from "@bufbuild/protobuf";
import {
  Action,
  AuthorizationSchema,
  ClauseSchema,
  MatchSchema,
  RuleSchema,
  Scope,
  StringMatchSchema,
} from "../../lib/gen/istio/security/authorization_pb.ts";
import type { Authorization } from "../../lib/gen/istio/security/authorization_pb.ts";
import { isSubset } from "../model/index.ts";
import type { PeerAuthentication } from "../model/index.ts";
import type { Ctx } from "./krt/index.ts";
import type { AmbientOptions } from "./options.ts";
import { workloadPeerAuthenticationKeys } from "./peer-authentication.ts";
import type { ServiceInfo } from "./services.ts";
import type { AmbientTables, PolicyInfo } from "./tables.ts";
import type { Waypoint } from "./waypoints.ts";

type Labels = Readonly<Record<string, string>>;

export function workloadPolicies(
  ctx: Ctx,
  t: Pick<AmbientTables, "policies" | "peerAuthentications">,
  opts: AmbientOptions,
  labels: Labels,
  namespace: string,
): string[] {
  const root = opts.rootNamespace;
  const selects = (p: PolicyInfo) =>
    p.resource !== undefined && p.selector !== undefined && isSubset(p.selector, labels);
  const names = new Set<string>();
  for (const ns of namespace === root ? [root] : [namespace, root]) {
    for (const p of ctx.index(t.policies, "namespace", ns, selects)) names.add(p.key);
  }
  const applies = (pa: PeerAuthentication) => {
    const sel = pa.spec?.selector;
    if (pa.metadata.namespace === root && sel === undefined) return true;
    if (pa.metadata.namespace !== namespace) return false;
    return sel === undefined || isSubset(sel.matchLabels ?? {}, labels);
  };
  const pas: PeerAuthentication[] = [];
  for (const ns of namespace === root ? [root] : [namespace, root]) {
    pas.push(...ctx.index(t.peerAuthentications, "namespace", ns, applies));
  }
  return [...[...names].sort(), ...workloadPeerAuthenticationKeys(root, pas)];
}

export function implicitWaypointPolicyName(w: Waypoint): string {
  // '_' cannot appear in Kubernetes names, so this never collides with a user policy.
  return `istio_allow_waypoint_${w.namespace}_${w.name}`;
}

/**
 * The allow-from-waypoint policy keys for a workload: its service waypoints (other than its own)
 * in key order, then its own workload waypoint; only waypoints with known instances have one.
 */
export function implicitWaypointPolicies(
  ctx: Ctx,
  t: Pick<AmbientTables, "waypoints">,
  opts: AmbientOptions,
  waypoint: Waypoint | undefined,
  services: readonly ServiceInfo[],
): string[] {
  if (!opts.defaultAllowFromWaypoint) return [];
  const keys = new Set<string>();
  for (const s of services) {
    const k = s.waypoint.key;
    if (k !== undefined && k !== waypoint?.key) keys.add(k);
  }
  const found: Waypoint[] = [];
  for (const k of [...keys].sort()) {
    const w = ctx.get(t.waypoints, k);
    if (w !== undefined) found.push(w);
  }
  if (waypoint !== undefined) found.push(waypoint);
  return found
    .filter((w) => w.serviceAccounts.length > 0)
    .map((w) => `${w.namespace}/${implicitWaypointPolicyName(w)}`);
}

/** ALLOW from the waypoint's identities (`<td>/ns/<ns>/sa/<sa>`, no `spiffe://`). */
export function implicitWaypointPolicy(w: Waypoint, trustDomain: string): Authorization {
  return create(AuthorizationSchema, {
    name: implicitWaypointPolicyName(w),
    namespace: w.namespace,
    // Not really selected by labels: workloads reference it by name.
    scope: Scope.WORKLOAD_SELECTOR,
    action: Action.ALLOW,
    rules: [
      create(RuleSchema, {
        clauses: [
          create(ClauseSchema, {
            matches: [
              create(MatchSchema, {
                principals: w.serviceAccounts.map((sa) =>
                  create(StringMatchSchema, {
                    matchType: {
                      case: "exact",
                      value: `${trustDomain}/ns/${w.namespace}/sa/${sa}`,
                    },
                  }),
                ),
              }),
            ],
          }),
        ],
      }),
    ],
  });
}
