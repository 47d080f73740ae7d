/**
 * The pure L4 authorization evaluator, with ztunnel's semantics (INTEROP.md §3.6):
 *
 * 1. applicable policies = the destination namespace's NAMESPACE policies + every GLOBAL policy +
 *    the workload's own `authorization_policies` (names not known are skipped);
 * 2. dry-run policies are evaluated and reported, never enforced;
 * 3. any matching DENY denies; then no ALLOW policies allows; then any matching ALLOW allows;
 *    otherwise deny.
 *
 * The decision is a value naming the deciding policy and rule, so access logs and
 * `ambient explain` can say why.
 */
import type { Identity } from "../identity/index.ts";
import { cidrContains, parseIp } from "../net/ip.ts";
import type { Cidr, IpBytes } from "../net/ip.ts";
import { isEmptyMatch, policyKey } from "./model.ts";
import type {
  Authorization,
  RbacAction,
  RbacConnection,
  RbacMatch,
  ServiceAccountMatch,
  StringMatch,
} from "./model.ts";

/** A dry-run policy that matched the connection. */
export interface DryRunMatch {
  readonly policy: string;
  readonly action: RbacAction;
  readonly rule: number;
}

/** What the dry-run policies would have done (present only when some apply). */
export interface DryRunReport {
  readonly matched: readonly DryRunMatch[];
  /** The verdict had the dry-run policies been enforced too. */
  readonly wouldAllow: boolean;
  /** The policy behind `wouldAllow`, when one policy decided it. */
  readonly wouldPolicy: string | undefined;
}

interface DecisionBase {
  /** Names referenced by the workload that are not (yet) known; they were skipped. */
  readonly unknownPolicies: readonly string[];
  readonly dryRun: DryRunReport | undefined;
}

export type AuthorizationDecision =
  | (DecisionBase & {
      readonly allowed: false;
      /** A DENY policy matched. */
      readonly reason: "deny-matched";
      readonly policy: string;
      readonly rule: number;
    })
  | (DecisionBase & {
      readonly allowed: true;
      /** An ALLOW policy matched. */
      readonly reason: "allow-matched";
      readonly policy: string;
      readonly rule: number;
    })
  | (DecisionBase & {
      readonly allowed: true;
      /** No DENY matched and no ALLOW policy applies. */
      readonly reason: "no-allow-policies";
    })
  | (DecisionBase & {
      readonly allowed: false;
      /** ALLOW policies apply but none matched. */
      readonly reason: "no-allow-matched";
      readonly allowPolicies: readonly string[];
    });

/** How the evaluator finds policies; ztunnel's ProxyState implements it. */
export interface PolicyLookup {
  policy(key: string): Authorization | undefined;
  /** Keys of NAMESPACE-scope policies of `namespace`. */
  namespacePolicyKeys(namespace: string): Iterable<string>;
  /** Keys of all GLOBAL-scope policies. */
  globalPolicyKeys(): Iterable<string>;
}

/** The destination workload as the evaluator needs it. */
export interface PolicyTarget {
  readonly namespace: string;
  /** `<ns>/<name>` keys of the WORKLOAD_SELECTOR policies that select the workload. */
  readonly authorizationPolicies: readonly string[];
}

export interface ApplicablePolicies {
  readonly policies: readonly Authorization[];
  readonly unknown: readonly string[];
}

/** The policies that apply to `target`, each once, plus referenced names that are unknown. */
export function applicablePolicies(lookup: PolicyLookup, target: PolicyTarget): ApplicablePolicies {
  const seen = new Set<string>();
  const policies: Authorization[] = [];
  const unknown: string[] = [];
  const add = (key: string) => {
    if (seen.has(key)) return;
    seen.add(key);
    const p = lookup.policy(key);
    if (p === undefined) unknown.push(key);
    else policies.push(p);
  };
  for (const k of lookup.namespacePolicyKeys(target.namespace)) add(k);
  for (const k of lookup.globalPolicyKeys()) add(k);
  for (const k of target.authorizationPolicies) add(k);
  return { policies, unknown };
}

/** Evaluates the policies applicable to `target` against `conn`. */
export function authorize(
  lookup: PolicyLookup,
  target: PolicyTarget,
  conn: RbacConnection,
): AuthorizationDecision {
  const { policies, unknown } = applicablePolicies(lookup, target);
  return evaluatePolicies(policies, conn, unknown);
}

/** Connection attributes prepared once per evaluation. */
interface Prepared {
  readonly src: IpBytes | undefined;
  readonly dst: IpBytes | undefined;
  readonly dstPort: number;
  readonly identity: Identity | undefined;
  /** The identity without `spiffe://`, or undefined when there is none. */
  readonly principal: string | undefined;
  /** The identity's namespace, "" when there is none. */
  readonly namespace: string;
}

function prepare(conn: RbacConnection): Prepared {
  const id = conn.srcIdentity;
  return {
    src: parseIp(conn.srcIp),
    dst: parseIp(conn.dstIp),
    dstPort: conn.dstPort,
    identity: id,
    principal:
      id === undefined ? undefined : `${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`,
    namespace: id?.namespace ?? "",
  };
}

function stringMatches(m: StringMatch, s: string): boolean {
  switch (m.kind) {
    case "exact":
      return s === m.value;
    case "prefix":
      return s.startsWith(m.value);
    case "suffix":
      return s.endsWith(m.value);
    case "presence":
      return s !== "";
  }
}

/**
 * Principals are compared without `spiffe://` (Istio writes them that way). With no peer
 * identity nothing matches, not even `presence`.
 */
function principalMatches(m: StringMatch, c: Prepared): boolean {
  return c.principal !== undefined && stringMatches(m, c.principal);
}

function namespaceMatches(m: StringMatch, c: Prepared): boolean {
  return stringMatches(m, c.namespace);
}

function serviceAccountMatches(m: ServiceAccountMatch, c: Prepared): boolean {
  const id = c.identity;
  return id !== undefined && id.namespace === m.namespace && id.serviceAccount === m.serviceAccount;
}

function ipMatches(cidr: Cidr, ip: IpBytes | undefined): boolean {
  return ip !== undefined && cidrContains(cidr, ip);
}

/** Positive list non-empty => some element matches; negative list non-empty => none does. */
function kindPasses<T>(
  positive: readonly T[],
  negative: readonly T[],
  test: (t: T) => boolean,
): boolean {
  if (positive.length > 0 && !positive.some(test)) return false;
  if (negative.length > 0 && negative.some(test)) return false;
  return true;
}

function matchEntryMatches(m: RbacMatch, c: Prepared): boolean {
  if (isEmptyMatch(m)) return false;
  return (
    kindPasses(m.destinationIps, m.notDestinationIps, (x) => ipMatches(x, c.dst)) &&
    kindPasses(m.sourceIps, m.notSourceIps, (x) => ipMatches(x, c.src)) &&
    kindPasses(m.destinationPorts, m.notDestinationPorts, (p) => p === c.dstPort) &&
    kindPasses(m.serviceAccounts, m.notServiceAccounts, (x) => serviceAccountMatches(x, c)) &&
    kindPasses(m.principals, m.notPrincipals, (x) => principalMatches(x, c)) &&
    kindPasses(m.namespaces, m.notNamespaces, (x) => namespaceMatches(x, c))
  );
}

/** The index of the first rule of `policy` that matches, or -1. */
function matchingRule(policy: Authorization, c: Prepared): number {
  const rules = policy.rules;
  for (let r = 0; r < rules.length; r++) {
    const rule = rules[r] as Authorization["rules"][number];
    let all = true;
    for (const clause of rule) {
      if (clause.length === 0) continue;
      if (!clause.some((m) => matchEntryMatches(m, c))) {
        all = false;
        break;
      }
    }
    if (all) return r;
  }
  return -1;
}

/** Whether `policy` matches `conn`, and by which rule (-1 when none). */
export function policyMatches(policy: Authorization, conn: RbacConnection): number {
  return matchingRule(policy, prepare(conn));
}

interface Verdict {
  readonly allowed: boolean;
  readonly reason: AuthorizationDecision["reason"];
  readonly policy: string | undefined;
  readonly rule: number;
  readonly allowPolicies: readonly string[];
}

function decide(policies: readonly Authorization[], c: Prepared): Verdict {
  const allows: Authorization[] = [];
  for (const p of policies) {
    if (p.action === "DENY") {
      const r = matchingRule(p, c);
      if (r >= 0) {
        return {
          allowed: false,
          reason: "deny-matched",
          policy: policyKey(p),
          rule: r,
          allowPolicies: [],
        };
      }
    } else {
      allows.push(p);
    }
  }
  if (allows.length === 0) {
    return {
      allowed: true,
      reason: "no-allow-policies",
      policy: undefined,
      rule: -1,
      allowPolicies: [],
    };
  }
  for (const p of allows) {
    const r = matchingRule(p, c);
    if (r >= 0) {
      return {
        allowed: true,
        reason: "allow-matched",
        policy: policyKey(p),
        rule: r,
        allowPolicies: [],
      };
    }
  }
  return {
    allowed: false,
    reason: "no-allow-matched",
    policy: undefined,
    rule: -1,
    allowPolicies: allows.map(policyKey),
  };
}

/**
 * Evaluates `policies` (already the applicable set) against `conn`. Dry-run policies do not
 * affect the verdict; they are reported in `dryRun`.
 */
export function evaluatePolicies(
  policies: readonly Authorization[],
  conn: RbacConnection,
  unknownPolicies: readonly string[] = [],
): AuthorizationDecision {
  const c = prepare(conn);
  let enforced: readonly Authorization[] = policies;
  let dryRun: DryRunReport | undefined;
  if (policies.some((p) => p.dryRun)) {
    enforced = policies.filter((p) => !p.dryRun);
    const matched: DryRunMatch[] = [];
    for (const p of policies) {
      if (!p.dryRun) continue;
      const r = matchingRule(p, c);
      if (r >= 0) matched.push({ policy: policyKey(p), action: p.action, rule: r });
    }
    const shadow = decide(policies, c);
    dryRun = { matched, wouldAllow: shadow.allowed, wouldPolicy: shadow.policy };
  }
  const v = decide(enforced, c);
  const base = { unknownPolicies, dryRun };
  switch (v.reason) {
    case "deny-matched":
      return {
        ...base,
        allowed: false,
        reason: v.reason,
        policy: v.policy as string,
        rule: v.rule,
      };
    case "allow-matched":
      return { ...base, allowed: true, reason: v.reason, policy: v.policy as string, rule: v.rule };
    case "no-allow-policies":
      return { ...base, allowed: true, reason: v.reason };
    case "no-allow-matched":
      return { ...base, allowed: false, reason: v.reason, allowPolicies: v.allowPolicies };
  }
}

/** One line for logs and `ambient explain`, e.g. `denied by DENY policy ns/deny-all (rule 0)`. */
export function describeDecision(d: AuthorizationDecision): string {
  let s: string;
  switch (d.reason) {
    case "deny-matched":
      s = `denied by DENY policy ${d.policy} (rule ${d.rule})`;
      break;
    case "allow-matched":
      s = `allowed by ALLOW policy ${d.policy} (rule ${d.rule})`;
      break;
    case "no-allow-policies":
      s = "allowed: no DENY policy matched and no ALLOW policy applies";
      break;
    case "no-allow-matched":
      s = `denied: no ALLOW policy matched (checked ${d.allowPolicies.join(", ")})`;
      break;
  }
  if (d.dryRun !== undefined) {
    const names = d.dryRun.matched.map((m) => `${m.action} ${m.policy}`).join(", ");
    s += `; dry-run: would ${d.dryRun.wouldAllow ? "allow" : "deny"}`;
    if (names !== "") s += ` (matched ${names})`;
  }
  if (d.unknownPolicies.length > 0)
    s += `; skipped unknown policies ${d.unknownPolicies.join(", ")}`;
  return s;
}

/** The principal text policies compare against: the identity without `spiffe://`. */
export function principalOf(id: Identity): string {
  return `${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}
