/**
 * Which identity a CA caller may have signed (DESIGN §9: "a node with a pod of that identity").
 * Without impersonation: the caller's own. With `ImpersonatedIdentity`: only for a trusted node
 * account (`CA_TRUSTED_NODE_ACCOUNTS`) whose node runs a live pod of that namespace and service
 * account right now. Pure: the pod check is passed in.
 */
import { fail, ok, type Result } from "../../lib/errors.ts";
import { makeIdentity, parseIdentity, type Identity } from "../../lib/identity/index.ts";
import type { Caller } from "../auth/caller.ts";

export interface EntitlementInput {
  readonly caller: Caller;
  /** The `ImpersonatedIdentity` metadata value, if sent. */
  readonly impersonated: string | undefined;
  readonly trustDomain: string;
  /** `<namespace>/<serviceaccount>` entries. */
  readonly trustedNodeAccounts: readonly string[];
  readonly hasAccountOnNode: (node: string, namespace: string, serviceAccount: string) => boolean;
}

export function entitledIdentity(input: EntitlementInput): Result<Identity> {
  const { caller, trustDomain } = input;
  if (input.impersonated === undefined || input.impersonated === "") {
    return makeIdentity(trustDomain, caller.namespace, caller.serviceAccount);
  }
  const wanted = parseIdentity(input.impersonated);
  if (!wanted.ok) return fail(`ImpersonatedIdentity "${input.impersonated}": ${wanted.reason}`);
  const id = wanted.value;
  if (id.trustDomain !== trustDomain) {
    return fail(
      `ImpersonatedIdentity ${input.impersonated} is in trust domain ${id.trustDomain}, this CA signs only ${trustDomain}`,
    );
  }
  const account = `${caller.namespace}/${caller.serviceAccount}`;
  if (!input.trustedNodeAccounts.includes(account)) {
    return fail(
      `${account} may not request other identities (not in CA_TRUSTED_NODE_ACCOUNTS: ${input.trustedNodeAccounts.join(",")})`,
    );
  }
  if (caller.node === undefined) {
    return fail(`the caller's token names no node, so no pod can vouch for ${input.impersonated}`);
  }
  if (!input.hasAccountOnNode(caller.node, id.namespace, id.serviceAccount)) {
    return fail(
      `no running pod with service account ${id.namespace}/${id.serviceAccount} on node ${caller.node}`,
    );
  }
  return ok(id);
}
