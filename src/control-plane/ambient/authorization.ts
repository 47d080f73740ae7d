/**
 * AuthorizationPolicy → `istio.security.Authorization` for ztunnel (istiod `authorization.go`),
 * INTEROP §3.6. Besides the message, the conversion explains itself: which rules were dropped or
 * weakened and why, so the CLI can say what each component enforces.
 */
import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import {
  Action,
  AddressSchema,
  AuthorizationSchema,
  ClauseSchema,
  MatchSchema,
  RuleSchema,
  Scope,
  ServiceAccountMatchSchema,
  StringMatchSchema,
} from "../../lib/gen/istio/security/authorization_pb.ts";
import type {
  Address,
  Authorization,
  Clause,
  Match,
  Rule,
  ServiceAccountMatch,
  StringMatch,
} from "../../lib/gen/istio/security/authorization_pb.ts";
import { annotation, parseCidr } from "../model/index.ts";
import type {
  AuthorizationCondition,
  AuthorizationOperation,
  AuthorizationPolicy,
  AuthorizationRule,
  AuthorizationSource,
  PolicyTargetReference,
} from "../model/index.ts";
import { parseBool } from "./parse.ts";

/** What happened to one rule of the policy at ztunnel. */
export interface RuleNote {
  rule: number;
  effect: "dropped" | "stripped" | "never-matches";
  /** The L7 attributes involved (for dropped/stripped), sorted. */
  attributes: string[];
  message: string;
}

export interface ConvertedPolicy {
  /** The message for ztunnel, or undefined when ztunnel does not get this policy. */
  authorization: Authorization | undefined;
  /** Why ztunnel does not get it (dry-run, targetRefs, action), when it does not. */
  skipped: string | undefined;
  notes: RuleNote[];
  /** Values istiod silently drops (bad ports, IPs); reported as warnings. */
  warnings: string[];
  /** A policy-level consequence worth saying (e.g. an ALLOW that allows nothing at ztunnel). */
  summary: string | undefined;
}

/** `model.GetTargetRefs`: the deprecated single `targetRef` plus `targetRefs`. */
export function targetRefsOf(spec: AuthorizationPolicy["spec"]): PolicyTargetReference[] {
  const out: PolicyTargetReference[] = [];
  if (spec?.targetRef !== undefined) out.push(spec.targetRef);
  for (const r of spec?.targetRefs ?? []) out.push(r);
  return out;
}

export function isDryRun(policy: AuthorizationPolicy): boolean {
  const text = policy.metadata.annotations?.[annotation.dryRun];
  return text !== undefined && parseBool(text) === true;
}

/** The attributes ztunnel can evaluate in `when` conditions. */
const l4WhenKeys = new Set([
  "source.ip",
  "source.namespace",
  "source.principal",
  "destination.ip",
  "destination.port",
]);

export function convertAuthorizationPolicy(
  policy: AuthorizationPolicy,
  rootNamespace: string,
): ConvertedPolicy {
  const spec = policy.spec ?? {};
  const namespace = policy.metadata.namespace ?? "";
  const none = (skipped: string): ConvertedPolicy => ({
    authorization: undefined,
    skipped,
    notes: [],
    warnings: [],
    summary: undefined,
  });
  if (isDryRun(policy)) {
    return none(`annotated ${annotation.dryRun}=true: istiod sends no dry-run policy to ztunnel`);
  }
  if (targetRefsOf(spec).length > 0) {
    return none("uses targetRef(s): enforced by the targeted waypoint, not by ztunnel");
  }
  const actionText = spec.action ?? "ALLOW";
  let action: Action;
  if (actionText === "ALLOW") action = Action.ALLOW;
  else if (actionText === "DENY") action = Action.DENY;
  else return none(`ztunnel does not support the ${actionText} action`);

  let scope: Scope = Scope.WORKLOAD_SELECTOR;
  if (spec.selector === undefined)
    scope = namespace === rootNamespace ? Scope.GLOBAL : Scope.NAMESPACE;

  const warnings: string[] = [];
  const notes: RuleNote[] = [];
  const rules: Rule[] = [];
  (spec.rules ?? []).forEach((rule, i) => {
    const converted = convertRule(action, rule, namespace, (w) => warnings.push(`rule ${i}: ${w}`));
    const l7 = [...converted.l7].sort();
    if (converted.clauses === undefined) {
      notes.push({
        rule: i,
        effect: "dropped",
        attributes: l7,
        message: `ALLOW rule ${i} dropped at ztunnel: it uses ${l7.join(", ")} (L7), which only a waypoint can check; bind a waypoint with targetRefs to enforce it`,
      });
      return;
    }
    rules.push(create(RuleSchema, { clauses: converted.clauses }));
    // ztunnel never matches an empty Match, so a clause made only of empty ones fails the rule.
    const neverMatches = converted.clauses.some(
      (c) => c.matches.length > 0 && c.matches.every(isEmptyMatch),
    );
    if (neverMatches) {
      const why =
        l7.length > 0
          ? `without its L7 parts (${l7.join(", ")}) one of its from/to/when entries is empty`
          : "one of its from/to/when entries has no attribute ztunnel can check";
      notes.push({
        rule: i,
        effect: "never-matches",
        attributes: l7,
        message: `${actionText} rule ${i} never matches at ztunnel: ${why}, and ztunnel never matches an empty condition${l7.length > 0 ? "; bind a waypoint with targetRefs to enforce it" : ""}`,
      });
    } else if (l7.length > 0) {
      notes.push({
        rule: i,
        effect: "stripped",
        attributes: l7,
        message: `DENY rule ${i} enforced at ztunnel without its L7 parts (${l7.join(", ")}): it denies more than written; bind a waypoint with targetRefs to enforce it exactly`,
      });
    }
  });
  const authorization = create(AuthorizationSchema, {
    name: policy.metadata.name,
    namespace,
    scope,
    action,
    rules,
  });
  let summary: string | undefined;
  if (action === Action.ALLOW && rules.length === 0) {
    summary =
      (spec.rules ?? []).length === 0
        ? "ALLOW policy without rules: allows nothing, so the workloads it applies to accept no connection (unless another ALLOW matches)"
        : "every rule was dropped at ztunnel: this ALLOW policy allows nothing there, so the workloads it applies to accept no connection (unless another ALLOW matches)";
  }
  return { authorization, skipped: undefined, notes, warnings, summary };
}

interface ConvertedRule {
  /** undefined: the rule is dropped (an ALLOW rule with L7 attributes). */
  clauses: Clause[] | undefined;
  l7: Set<string>;
}

function convertRule(
  action: Action,
  rule: AuthorizationRule,
  namespace: string,
  warn: (m: string) => void,
): ConvertedRule {
  const l7 = new Set<string>();
  const toMatches: Match[] = [];
  for (const to of rule.to ?? []) {
    const op: AuthorizationOperation = to.operation ?? {};
    for (const f of ["hosts", "notHosts", "methods", "notMethods", "paths", "notPaths"] as const) {
      if ((op[f]?.length ?? 0) > 0) l7.add(f);
    }
    toMatches.push(
      create(MatchSchema, {
        destinationPorts: ports(op.ports, warn),
        notDestinationPorts: ports(op.notPorts, warn),
      }),
    );
  }
  const fromMatches: Match[] = [];
  for (const from of rule.from ?? []) {
    const src: AuthorizationSource = from.source ?? {};
    for (const f of [
      "remoteIpBlocks",
      "notRemoteIpBlocks",
      "requestPrincipals",
      "notRequestPrincipals",
    ] as const) {
      if ((src[f]?.length ?? 0) > 0) l7.add(f);
    }
    fromMatches.push(
      create(MatchSchema, {
        sourceIps: addresses(src.ipBlocks, warn),
        notSourceIps: addresses(src.notIpBlocks, warn),
        namespaces: stringMatches(src.namespaces),
        notNamespaces: stringMatches(src.notNamespaces),
        serviceAccounts: serviceAccounts(src.serviceAccounts, namespace),
        notServiceAccounts: serviceAccounts(src.notServiceAccounts, namespace),
        principals: stringMatches(src.principals),
        notPrincipals: stringMatches(src.notPrincipals),
      }),
    );
  }
  const clauses: Clause[] = [];
  if (toMatches.length > 0) clauses.push(create(ClauseSchema, { matches: toMatches }));
  if (fromMatches.length > 0) clauses.push(create(ClauseSchema, { matches: fromMatches }));
  for (const when of rule.when ?? []) {
    if (!l4WhenKeys.has(when.key)) l7.add(when.key);
    clauses.push(create(ClauseSchema, { matches: [whenMatch(when, warn)] }));
  }
  // L7 attributes never match at ztunnel: an ALLOW rule needing them can never allow, so it
  // goes; a DENY rule is kept without them (denying more than written).
  if (action === Action.ALLOW && l7.size > 0) return { clauses: undefined, l7 };
  return { clauses, l7 };
}

function whenMatch(when: AuthorizationCondition, warn: (m: string) => void): Match {
  const m = create(MatchSchema);
  const pos = when.values ?? [];
  const neg = when.notValues ?? [];
  switch (when.key) {
    case "source.namespace":
      m.namespaces = stringMatches(pos);
      m.notNamespaces = stringMatches(neg);
      break;
    case "source.principal":
      m.principals = stringMatches(pos);
      m.notPrincipals = stringMatches(neg);
      break;
    case "source.ip":
      m.sourceIps = addresses(pos, warn);
      m.notSourceIps = addresses(neg, warn);
      break;
    case "destination.port":
      m.destinationPorts = ports(pos, warn);
      m.notDestinationPorts = ports(neg, warn);
      break;
    case "destination.ip":
      m.destinationIps = addresses(pos, warn);
      m.notDestinationIps = addresses(neg, warn);
      break;
    default:
      break;
  }
  return m;
}

export function isEmptyMatch(m: Match): boolean {
  return (
    m.namespaces.length === 0 &&
    m.notNamespaces.length === 0 &&
    m.principals.length === 0 &&
    m.notPrincipals.length === 0 &&
    m.sourceIps.length === 0 &&
    m.notSourceIps.length === 0 &&
    m.destinationIps.length === 0 &&
    m.notDestinationIps.length === 0 &&
    m.destinationPorts.length === 0 &&
    m.notDestinationPorts.length === 0 &&
    m.serviceAccounts.length === 0 &&
    m.notServiceAccounts.length === 0
  );
}

/** `*` → presence, `*x` → suffix, `x*` → prefix, else exact. */
export function stringMatches(values: readonly string[] | undefined): StringMatch[] {
  return (values ?? []).map((v) => {
    if (v === "*")
      return create(StringMatchSchema, {
        matchType: { case: "presence", value: create(EmptySchema) },
      });
    if (v.startsWith("*"))
      return create(StringMatchSchema, { matchType: { case: "suffix", value: v.slice(1) } });
    if (v.endsWith("*"))
      return create(StringMatchSchema, { matchType: { case: "prefix", value: v.slice(0, -1) } });
    return create(StringMatchSchema, { matchType: { case: "exact", value: v } });
  });
}

/** `ns/sa`, or a bare `sa` meaning the policy's namespace. */
function serviceAccounts(
  values: readonly string[] | undefined,
  namespace: string,
): ServiceAccountMatch[] {
  return (values ?? []).map((v) => {
    const slash = v.indexOf("/");
    return slash === -1
      ? create(ServiceAccountMatchSchema, { namespace, serviceAccount: v })
      : create(ServiceAccountMatchSchema, {
          namespace: v.slice(0, slash),
          serviceAccount: v.slice(slash + 1),
        });
  });
}

/** Decimal ports up to 65535; istiod skips anything else. */
function ports(values: readonly string[] | undefined, warn: (m: string) => void): number[] {
  const out: number[] = [];
  for (const v of values ?? []) {
    if (/^[0-9]+$/.test(v) && Number(v) <= 65535) out.push(Number(v));
    else warn(`port ${JSON.stringify(v)} is not a number from 0 to 65535 and is ignored`);
  }
  return out;
}

/** IPs (full-length prefix) and CIDRs; istiod skips anything else. */
function addresses(values: readonly string[] | undefined, warn: (m: string) => void): Address[] {
  const out: Address[] = [];
  for (const v of values ?? []) {
    if (v === "") continue;
    const cidr = parseCidr(v);
    if (cidr === undefined) {
      warn(`${JSON.stringify(v)} is not an IP address or CIDR and is ignored`);
      continue;
    }
    out.push(create(AddressSchema, { address: cidr.address, length: cidr.prefixLength }));
  }
  return out;
}

/** A Match that denies anything without an mTLS identity. */
export function notPrincipalsPresence(): Match {
  return create(MatchSchema, {
    notPrincipals: [
      create(StringMatchSchema, { matchType: { case: "presence", value: create(EmptySchema) } }),
    ],
  });
}
