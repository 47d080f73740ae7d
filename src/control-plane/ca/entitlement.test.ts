import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Caller } from "../auth/caller.ts";
import { entitledIdentity, type EntitlementInput } from "./entitlement.ts";

const ztunnelA: Caller = {
  namespace: "istio-system",
  serviceAccount: "ztunnel",
  node: "node-a",
  pod: undefined,
  via: "local-token",
};

function input(over: Partial<EntitlementInput>): EntitlementInput {
  return {
    caller: ztunnelA,
    impersonated: undefined,
    trustDomain: "cluster.local",
    trustedNodeAccounts: ["istio-system/ztunnel"],
    hasAccountOnNode: (node, ns, sa) => node === "node-a" && ns === "app" && sa === "web",
    ...over,
  };
}

describe("entitledIdentity", () => {
  it("gives a caller its own identity without impersonation", () => {
    const r = entitledIdentity(input({}));
    assert.deepEqual(r, {
      ok: true,
      value: { trustDomain: "cluster.local", namespace: "istio-system", serviceAccount: "ztunnel" },
    });
  });

  it("lets a trusted node account impersonate a pod on its node only", () => {
    assert.equal(
      entitledIdentity(input({ impersonated: "spiffe://cluster.local/ns/app/sa/web" })).ok,
      true,
    );
    const other = entitledIdentity(input({ impersonated: "spiffe://cluster.local/ns/app/sa/db" }));
    assert.deepEqual(other, {
      ok: false,
      reason: "no running pod with service account app/db on node node-a",
    });
  });

  it("refuses untrusted accounts, node-less callers, other trust domains and junk", () => {
    const web = "spiffe://cluster.local/ns/app/sa/web";
    const untrusted = entitledIdentity(
      input({
        impersonated: web,
        caller: { ...ztunnelA, serviceAccount: "web", namespace: "app" },
      }),
    );
    assert.match(untrusted.ok ? "" : untrusted.reason, /not in CA_TRUSTED_NODE_ACCOUNTS/);
    const nodeless = entitledIdentity(
      input({ impersonated: web, caller: { ...ztunnelA, node: undefined } }),
    );
    assert.match(nodeless.ok ? "" : nodeless.reason, /names no node/);
    const td = entitledIdentity(input({ impersonated: "spiffe://other.org/ns/app/sa/web" }));
    assert.match(td.ok ? "" : td.reason, /trust domain other.org/);
    const junk = entitledIdentity(input({ impersonated: "web" }));
    assert.match(junk.ok ? "" : junk.reason, /must start with "spiffe:\/\/"/);
  });
});
