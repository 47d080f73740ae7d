/**
 * Conversion from the xDS resource `istio.security.Authorization` into the model. A resource that
 * cannot be enforced as written is rejected with a reason naming the field (the xDS client turns
 * it into a NACK), never half-applied.
 *
 * Stricter than ztunnel on purpose, always towards failing closed: ztunnel silently drops a
 * malformed IP or an unset string match from a list, which can empty the list and widen what an
 * ALLOW admits or narrow what a DENY blocks; here the whole policy is rejected instead. istiod
 * never sends such entries, so this changes nothing for well-formed input.
 */
import type {
  Address as XdsAddress,
  Authorization as XdsAuthorization,
  Match as XdsMatch,
  ServiceAccountMatch as XdsServiceAccountMatch,
  StringMatch as XdsStringMatch,
} from "../gen/istio/security/authorization_pb.ts";
import { fail, ok, type Result } from "../errors.ts";
import { cidrFromBytes, type Cidr } from "../net/ip.ts";
import type {
  Authorization,
  RbacAction,
  RbacClause,
  RbacMatch,
  RbacRule,
  RbacScope,
  ServiceAccountMatch,
  StringMatch,
} from "./model.ts";

/** Internal: unwinds a conversion to its single exit, where it becomes a value. */
class Reject extends Error {
  readonly reason: string;
  constructor(reason: string) {
    super(reason);
    this.reason = reason;
  }
}

function scopeOf(v: number): RbacScope {
  switch (v) {
    case 0:
      return "GLOBAL";
    case 1:
      return "NAMESPACE";
    case 2:
      return "WORKLOAD_SELECTOR";
    default:
      throw new Reject(
        `scope: unknown value ${v} (expected GLOBAL, NAMESPACE or WORKLOAD_SELECTOR)`,
      );
  }
}

function actionOf(v: number): RbacAction {
  switch (v) {
    case 0:
      return "ALLOW";
    case 1:
      return "DENY";
    default:
      throw new Reject(`action: unknown value ${v} (expected ALLOW or DENY)`);
  }
}

function stringMatches(path: string, list: readonly XdsStringMatch[]): StringMatch[] {
  return list.map((m, i) => {
    const t = m.matchType;
    switch (t.case) {
      case "exact":
        return { kind: "exact", value: t.value };
      case "prefix":
        return { kind: "prefix", value: t.value };
      case "suffix":
        return { kind: "suffix", value: t.value };
      case "presence":
        return { kind: "presence" };
      case undefined:
        throw new Reject(
          `${path}[${i}]: no match type set (need exact, prefix, suffix or presence)`,
        );
    }
  });
}

function cidrs(path: string, list: readonly XdsAddress[]): Cidr[] {
  return list.map((a, i) => {
    const r = cidrFromBytes(a.address, a.length);
    if (!r.ok) throw new Reject(`${path}[${i}]: ${r.reason}`);
    return r.value;
  });
}

function ports(path: string, list: readonly number[]): number[] {
  for (let i = 0; i < list.length; i++) {
    const p = list[i] as number;
    if (p > 65535) throw new Reject(`${path}[${i}]: port ${p} is out of range (0-65535)`);
  }
  return [...list];
}

function serviceAccounts(
  path: string,
  list: readonly XdsServiceAccountMatch[],
): ServiceAccountMatch[] {
  return list.map((s, i) => {
    if (s.namespace === "" || s.serviceAccount === "") {
      throw new Reject(`${path}[${i}]: namespace and serviceAccount must both be set`);
    }
    return { namespace: s.namespace, serviceAccount: s.serviceAccount };
  });
}

function matchOf(path: string, m: XdsMatch): RbacMatch {
  return {
    namespaces: stringMatches(`${path}.namespaces`, m.namespaces),
    notNamespaces: stringMatches(`${path}.not_namespaces`, m.notNamespaces),
    principals: stringMatches(`${path}.principals`, m.principals),
    notPrincipals: stringMatches(`${path}.not_principals`, m.notPrincipals),
    sourceIps: cidrs(`${path}.source_ips`, m.sourceIps),
    notSourceIps: cidrs(`${path}.not_source_ips`, m.notSourceIps),
    destinationIps: cidrs(`${path}.destination_ips`, m.destinationIps),
    notDestinationIps: cidrs(`${path}.not_destination_ips`, m.notDestinationIps),
    destinationPorts: ports(`${path}.destination_ports`, m.destinationPorts),
    notDestinationPorts: ports(`${path}.not_destination_ports`, m.notDestinationPorts),
    serviceAccounts: serviceAccounts(`${path}.service_accounts`, m.serviceAccounts),
    notServiceAccounts: serviceAccounts(`${path}.not_service_accounts`, m.notServiceAccounts),
  };
}

/**
 * Converts an `istio.security.Authorization`. The failure reason names the offending field,
 * e.g. `rules[0].clauses[1].matches[0].source_ips[2]: address has 5 bytes (expected 4 or 16)`.
 */
export function authorizationFromXds(a: XdsAuthorization): Result<Authorization> {
  try {
    if (a.name === "") throw new Reject("name: must not be empty");
    const rules: RbacRule[] = a.rules.map((rule, r) =>
      rule.clauses.map((clause, c): RbacClause =>
        clause.matches.map((m, i) => matchOf(`rules[${r}].clauses[${c}].matches[${i}]`, m)),
      ),
    );
    return ok({
      name: a.name,
      namespace: a.namespace,
      scope: scopeOf(a.scope),
      action: actionOf(a.action),
      dryRun: a.dryRun,
      rules,
    });
  } catch (err) {
    if (err instanceof Reject) return fail(err.reason);
    throw err;
  }
}
