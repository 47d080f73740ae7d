/**
 * PeerAuthentication in ambient (istiod `authorization.go`/`policies.go`): STRICT becomes the
 * static DENY policy `<root>/istio_converted_static_strict` (deny anything without an mTLS
 * identity) referenced from workloads; a workload-selector policy with port-level exceptions
 * becomes its own DENY policy `<ns>/converted_peer_authentication_<name>`. This mirrors istiod
 * case by case, including its quirks, so a workload ends up with the same policy list.
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
import type { Authorization, Clause, Rule } from "../../lib/gen/istio/security/authorization_pb.ts";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import type { MtlsMode, PeerAuthentication } from "../model/index.ts";
import { timeOf } from "./services.ts";

export const staticStrictPolicyName = "istio_converted_static_strict";
export const convertedPeerAuthenticationPrefix = "converted_peer_authentication_";

type Mtls = { mode?: MtlsMode } | undefined;

const modeOf = (m: Mtls): MtlsMode => m?.mode ?? "UNSET";
const isUnset = (m: Mtls) => modeOf(m) === "UNSET";
const isStrict = (m: Mtls) => modeOf(m) === "STRICT";
const isPermissive = (m: Mtls) => modeOf(m) === "PERMISSIVE";
const isDisable = (m: Mtls) => modeOf(m) === "DISABLE";

function presenceClause(ports?: {
  destinationPorts?: number[];
  notDestinationPorts?: number[];
}): Clause {
  return create(ClauseSchema, {
    matches: [
      create(MatchSchema, {
        notPrincipals: [
          create(StringMatchSchema, {
            matchType: { case: "presence", value: create(EmptySchema) },
          }),
        ],
        destinationPorts: ports?.destinationPorts ?? [],
      }),
    ],
  });
}

export function staticStrictPolicy(rootNamespace: string): Authorization {
  return create(AuthorizationSchema, {
    name: staticStrictPolicyName,
    namespace: rootNamespace,
    scope: Scope.WORKLOAD_SELECTOR,
    action: Action.DENY,
    rules: [create(RuleSchema, { clauses: [presenceClause()] })],
  });
}

/** `portLevelMtls` entries in ascending port order; bad port keys are reported and skipped. */
export function portLevel(pa: PeerAuthentication, warn: (m: string) => void): [number, Mtls][] {
  const out: [number, Mtls][] = [];
  for (const [k, v] of Object.entries(pa.spec?.portLevelMtls ?? {})) {
    if (!/^[0-9]+$/.test(k) || Number(k) > 0xffffffff) {
      warn(`portLevelMtls key ${JSON.stringify(k)} is not a port number and is ignored`);
      continue;
    }
    out.push([Number(k), v]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/** The oldest policy (creation time, then namespace/name, for a deterministic tie-break). */
export function oldest(policies: readonly PeerAuthentication[]): PeerAuthentication | undefined {
  return [...policies].sort(byAge)[0];
}

function byAge(a: PeerAuthentication, b: PeerAuthentication): number {
  const t = timeOf(a.metadata.creationTimestamp) - timeOf(b.metadata.creationTimestamp);
  if (t !== 0 && !Number.isNaN(t)) return t;
  const ka = `${a.metadata.namespace ?? ""}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace ?? ""}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * `convertPeerAuthentication`: only for selector policies outside the root namespace that have
 * port-level settings; `nsPolicy`/`rootPolicy` are the oldest selector-less policies of the
 * policy's namespace and the root namespace.
 */
export function convertPeerAuthentication(
  pa: PeerAuthentication,
  rootNamespace: string,
  nsPolicy: PeerAuthentication | undefined,
  rootPolicy: PeerAuthentication | undefined,
  warn: (m: string) => void,
): Authorization | undefined {
  const spec = pa.spec ?? {};
  const namespace = pa.metadata.namespace ?? "";
  const ports = portLevel(pa, warn);
  if (namespace === rootNamespace || spec.selector === undefined || ports.length === 0)
    return undefined;
  const mode = modeOf(spec.mtls);
  const nsMtls = nsPolicy?.spec?.mtls;
  const rootMtls = rootPolicy?.spec?.mtls;
  const clauses: Clause[] = [];
  const rules: Rule[] = [];
  if (mode === "STRICT") clauses.push(presenceClause());
  let foundNonStrict = false;
  for (const [port, mtls] of ports) {
    const portMode = modeOf(mtls);
    if (portMode === "STRICT") {
      // Already enforced by a STRICT parent. (Go precedence: A || (B && C) || D — D does not
      // look at the workload's own mode; istiod behaves so, and so do we.)
      const parentStrict =
        isStrict(spec.mtls) ||
        (isUnset(spec.mtls) && nsPolicy !== undefined && isStrict(nsMtls)) ||
        ((nsPolicy === undefined || isUnset(nsMtls)) &&
          rootPolicy !== undefined &&
          isStrict(rootMtls));
      if (parentStrict) {
        if (isPermissive(spec.mtls) || isDisable(spec.mtls)) {
          warn(
            `port ${port} STRICT is not enforced: istiod skips a STRICT port whenever the mesh policy is STRICT, even though this policy's mode is ${mode}; set the mode on the namespace or the workload instead`,
          );
        }
        continue;
      }
      // Rules are OR'd: one per STRICT port.
      rules.push(create(RuleSchema, { clauses: [presenceClause({ destinationPorts: [port] })] }));
    } else if (portMode === "PERMISSIVE" || portMode === "DISABLE") {
      if (mode === "PERMISSIVE" || mode === "DISABLE") continue;
      if (
        mode === "UNSET" &&
        ((nsPolicy !== undefined && !isStrict(nsMtls)) ||
          (nsPolicy === undefined && rootPolicy !== undefined && !isStrict(rootMtls)) ||
          (nsPolicy === undefined && rootPolicy === undefined))
      ) {
        continue;
      }
      foundNonStrict = true;
      // Deny only when the port is not this one: the exception.
      clauses.push(
        create(ClauseSchema, { matches: [create(MatchSchema, { notDestinationPorts: [port] })] }),
      );
    }
  }
  if (mode === "STRICT" && !foundNonStrict) return undefined;
  if (clauses.length === 0 && rules.length === 0) return undefined;
  const mergeStrict =
    (rootPolicy !== undefined &&
      isStrict(rootMtls) &&
      (nsPolicy === undefined || isUnset(nsMtls) || isStrict(nsMtls))) ||
    (nsPolicy !== undefined && isStrict(nsMtls));
  if (mergeStrict && foundNonStrict) clauses.push(presenceClause());
  if (clauses.length > 0) rules.push(create(RuleSchema, { clauses }));
  return create(AuthorizationSchema, {
    name: convertedPeerAuthenticationPrefix + pa.metadata.name,
    namespace,
    scope: Scope.WORKLOAD_SELECTOR,
    action: Action.DENY,
    rules,
  });
}

/**
 * `convertedSelectorPeerAuthentications`: the policy keys a workload references, given the
 * PeerAuthentications that apply to it (root selector-less ones and its namespace's matching ones).
 */
export function workloadPeerAuthenticationKeys(
  rootNamespace: string,
  applicable: readonly PeerAuthentication[],
): string[] {
  let mesh: PeerAuthentication | undefined;
  let ns: PeerAuthentication | undefined;
  let workload: PeerAuthentication | undefined;
  const older = (a: PeerAuthentication, b: PeerAuthentication | undefined) =>
    b === undefined || timeOf(a.metadata.creationTimestamp) < timeOf(b.metadata.creationTimestamp);
  for (const pa of [...applicable].sort(byAge)) {
    const sel = pa.spec?.selector;
    const namespaceWide = sel === undefined || Object.keys(sel.matchLabels ?? {}).length === 0;
    if (namespaceWide) {
      if (pa.metadata.namespace === rootNamespace) {
        if (older(pa, mesh)) mesh = pa;
      } else if (older(pa, ns)) {
        ns = pa;
      }
    } else if (pa.metadata.namespace !== rootNamespace && older(pa, workload)) {
      workload = pa;
    }
  }
  let strict = mesh !== undefined ? isStrict(mesh.spec?.mtls) : false;
  if (ns !== undefined && !isUnset(ns.spec?.mtls)) strict = isStrict(ns.spec?.mtls);
  let portKey = "";
  if (workload !== undefined) {
    const w = workload.spec?.mtls;
    const key = `${workload.metadata.namespace ?? ""}/${convertedPeerAuthenticationPrefix}${workload.metadata.name}`;
    if (isStrict(w)) strict = true;
    if (isPermissive(w) || isDisable(w)) strict = false;
    const portModes = workload.spec?.portLevelMtls;
    if (portModes !== undefined) {
      const values = Object.values(portModes);
      switch (modeOf(w)) {
        case "STRICT":
          if (values.some((m) => isPermissive(m) || isDisable(m))) {
            portKey = key;
            strict = false;
          }
          break;
        case "PERMISSIVE":
        case "DISABLE":
          if (values.some((m) => isStrict(m))) portKey = key;
          break;
        case "UNSET":
          if (strict) {
            if (values.some((m) => isPermissive(m))) {
              portKey = key;
              strict = false;
            }
          } else if (values.some((m) => isStrict(m))) {
            portKey = key;
          }
          break;
      }
    }
  }
  const out: string[] = [];
  if (strict) out.push(`${rootNamespace}/${staticStrictPolicyName}`);
  if (portKey !== "") out.push(portKey);
  return [...new Set(out)].sort();
}
