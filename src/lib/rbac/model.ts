/**
 * The L4 authorization model (Istio's `istio.security.Authorization` as ztunnel enforces it),
 * free of protobuf types so the evaluator can be shared by ztunnel and the waypoint and fed from
 * xDS, local config or tests alike.
 *
 * Shape: a policy has rules (any may match); a rule has clauses (all must match); a clause has
 * matches (any may match); a match lists attribute conditions (all present kinds must pass).
 */
import type { Identity } from "../identity/index.ts";
import type { Cidr } from "../net/ip.ts";

export type RbacScope = "GLOBAL" | "NAMESPACE" | "WORKLOAD_SELECTOR";
export type RbacAction = "ALLOW" | "DENY";

export type StringMatch =
  | { readonly kind: "exact"; readonly value: string }
  | { readonly kind: "prefix"; readonly value: string }
  | { readonly kind: "suffix"; readonly value: string }
  | { readonly kind: "presence" };

export interface ServiceAccountMatch {
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** One match entry. Every list may be empty; an entry with all lists empty never matches. */
export interface RbacMatch {
  readonly namespaces: readonly StringMatch[];
  readonly notNamespaces: readonly StringMatch[];
  readonly principals: readonly StringMatch[];
  readonly notPrincipals: readonly StringMatch[];
  readonly sourceIps: readonly Cidr[];
  readonly notSourceIps: readonly Cidr[];
  readonly destinationIps: readonly Cidr[];
  readonly notDestinationIps: readonly Cidr[];
  readonly destinationPorts: readonly number[];
  readonly notDestinationPorts: readonly number[];
  readonly serviceAccounts: readonly ServiceAccountMatch[];
  readonly notServiceAccounts: readonly ServiceAccountMatch[];
}

/** Matches if any of its entries matches; an empty clause matches everything. */
export type RbacClause = readonly RbacMatch[];
/** Matches if all of its clauses match; an empty rule matches everything. */
export type RbacRule = readonly RbacClause[];

export interface Authorization {
  readonly name: string;
  readonly namespace: string;
  readonly scope: RbacScope;
  readonly action: RbacAction;
  /** Evaluated and reported, never enforced. */
  readonly dryRun: boolean;
  /** A policy with no rules never matches. */
  readonly rules: readonly RbacRule[];
}

/** The attributes of one connection that L4 policies look at. */
export interface RbacConnection {
  /** The TCP peer address (canonical IP text). */
  readonly srcIp: string;
  /** The mTLS peer identity; undefined for plaintext. */
  readonly srcIdentity: Identity | undefined;
  /** The final destination pod IP (after mapping away from 15008). */
  readonly dstIp: string;
  /** The final destination port (after mapping away from 15008). */
  readonly dstPort: number;
}

/** `<namespace>/<name>`: the xDS resource name and the key policies are referenced by. */
export function policyKey(p: { readonly namespace: string; readonly name: string }): string {
  return `${p.namespace}/${p.name}`;
}

const none: readonly never[] = Object.freeze([]);

/** A match entry with the given lists set and the rest empty (handy for tests and builders). */
export function rbacMatch(m: Partial<RbacMatch>): RbacMatch {
  return {
    namespaces: m.namespaces ?? none,
    notNamespaces: m.notNamespaces ?? none,
    principals: m.principals ?? none,
    notPrincipals: m.notPrincipals ?? none,
    sourceIps: m.sourceIps ?? none,
    notSourceIps: m.notSourceIps ?? none,
    destinationIps: m.destinationIps ?? none,
    notDestinationIps: m.notDestinationIps ?? none,
    destinationPorts: m.destinationPorts ?? none,
    notDestinationPorts: m.notDestinationPorts ?? none,
    serviceAccounts: m.serviceAccounts ?? none,
    notServiceAccounts: m.notServiceAccounts ?? none,
  };
}

/** True when no list of the entry is set (such an entry never matches). */
export function isEmptyMatch(m: RbacMatch): boolean {
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
