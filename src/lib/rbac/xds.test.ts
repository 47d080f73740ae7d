import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  AuthorizationSchema,
  type Action,
  type Authorization as XdsAuthorization,
  type Scope,
} from "../gen/istio/security/authorization_pb.ts";
import { decodeMessage, encodeMessage } from "../proto/index.ts";
import { evaluatePolicies } from "./evaluate.ts";
import { formatCidr } from "../net/ip.ts";
import { authorizationFromXds } from "./xds.ts";

function xds(init: MessageInitShape<typeof AuthorizationSchema>): XdsAuthorization {
  // Through the wire, so the field numbers are exercised too.
  const bytes = encodeMessage(AuthorizationSchema, create(AuthorizationSchema, init));
  const d = decodeMessage(AuthorizationSchema, bytes);
  assert.ok(d.ok);
  return d.value;
}

const v4 = (a: number, b: number, c: number, d: number) => new Uint8Array([a, b, c, d]);

describe("authorizationFromXds", () => {
  it("converts every match kind", () => {
    const r = authorizationFromXds(
      xds({
        name: "allow-sleep",
        namespace: "ns",
        scope: 2,
        action: 0,
        dryRun: true,
        rules: [
          {
            clauses: [
              {
                matches: [
                  {
                    namespaces: [{ matchType: { case: "exact", value: "ns" } }],
                    notNamespaces: [{ matchType: { case: "prefix", value: "kube-" } }],
                    principals: [{ matchType: { case: "suffix", value: "/sa/sleep" } }],
                    notPrincipals: [{ matchType: { case: "presence", value: {} } }],
                    sourceIps: [{ address: v4(198, 18, 0, 0), length: 15 }],
                    notSourceIps: [{ address: v4(198, 18, 9, 9), length: 32 }],
                    destinationIps: [{ address: new Uint8Array(16), length: 0 }],
                    notDestinationIps: [{ address: v4(198, 19, 0, 0), length: 16 }],
                    destinationPorts: [8080],
                    notDestinationPorts: [15008],
                    serviceAccounts: [{ namespace: "ns", serviceAccount: "sleep" }],
                    notServiceAccounts: [{ namespace: "ns", serviceAccount: "bad" }],
                  },
                ],
              },
            ],
          },
        ],
      }),
    );
    assert.ok(r.ok, r.ok ? "" : r.reason);
    const p = r.value;
    assert.equal(p.scope, "WORKLOAD_SELECTOR");
    assert.equal(p.action, "ALLOW");
    assert.equal(p.dryRun, true);
    const m = p.rules[0]![0]![0]!;
    assert.deepEqual(m.namespaces, [{ kind: "exact", value: "ns" }]);
    assert.deepEqual(m.notNamespaces, [{ kind: "prefix", value: "kube-" }]);
    assert.deepEqual(m.principals, [{ kind: "suffix", value: "/sa/sleep" }]);
    assert.deepEqual(m.notPrincipals, [{ kind: "presence" }]);
    assert.deepEqual(m.sourceIps.map(formatCidr), ["198.18.0.0/15"]);
    assert.deepEqual(m.notSourceIps.map(formatCidr), ["198.18.9.9/32"]);
    assert.deepEqual(m.destinationIps.map(formatCidr), ["::/0"]);
    assert.deepEqual(m.notDestinationIps.map(formatCidr), ["198.19.0.0/16"]);
    assert.deepEqual(m.destinationPorts, [8080]);
    assert.deepEqual(m.notDestinationPorts, [15008]);
    assert.deepEqual(m.serviceAccounts, [{ namespace: "ns", serviceAccount: "sleep" }]);
    assert.deepEqual(m.notServiceAccounts, [{ namespace: "ns", serviceAccount: "bad" }]);
  });

  it("keeps the empty shapes whose meaning matters (rule with no clauses, clause with no matches)", () => {
    const r = authorizationFromXds(
      xds({ name: "p", namespace: "ns", rules: [{ clauses: [] }, { clauses: [{ matches: [] }] }] }),
    );
    assert.ok(r.ok);
    assert.deepEqual(r.value.rules, [[], [[]]]);
    // And they behave as such: the policy matches everything.
    const d = evaluatePolicies([r.value], {
      srcIp: "198.18.0.1",
      srcIdentity: undefined,
      dstIp: "198.18.0.2",
      dstPort: 1,
    });
    assert.equal(d.reason, "allow-matched");
  });

  const rejects: [string, MessageInitShape<typeof AuthorizationSchema>, string][] = [
    [
      "unknown scope",
      { name: "p", scope: 7 as Scope },
      "scope: unknown value 7 (expected GLOBAL, NAMESPACE or WORKLOAD_SELECTOR)",
    ],
    [
      "unknown action",
      { name: "p", action: 2 as Action },
      "action: unknown value 2 (expected ALLOW or DENY)",
    ],
    ["empty name", { name: "" }, "name: must not be empty"],
    [
      "address of 5 bytes",
      {
        name: "p",
        rules: [
          { clauses: [{ matches: [{ sourceIps: [{ address: new Uint8Array(5), length: 8 }] }] }] },
        ],
      },
      "rules[0].clauses[0].matches[0].source_ips[0]: address has 5 bytes (expected 4 or 16)",
    ],
    [
      "prefix longer than the address",
      {
        name: "p",
        rules: [
          {
            clauses: [
              {},
              { matches: [{}, { notDestinationIps: [{ address: v4(1, 2, 3, 4), length: 40 }] }] },
            ],
          },
        ],
      },
      "rules[0].clauses[1].matches[1].not_destination_ips[0]: prefix length 40 is invalid for a 32-bit address (0-32)",
    ],
    [
      "string match with no type",
      { name: "p", rules: [{ clauses: [{ matches: [{ principals: [{}] }] }] }] },
      "rules[0].clauses[0].matches[0].principals[0]: no match type set (need exact, prefix, suffix or presence)",
    ],
    [
      "port out of range",
      { name: "p", rules: [{ clauses: [{ matches: [{ destinationPorts: [70000] }] }] }] },
      "rules[0].clauses[0].matches[0].destination_ports[0]: port 70000 is out of range (0-65535)",
    ],
    [
      "service account without namespace",
      {
        name: "p",
        rules: [{ clauses: [{ matches: [{ serviceAccounts: [{ serviceAccount: "x" }] }] }] }],
      },
      "rules[0].clauses[0].matches[0].service_accounts[0]: namespace and serviceAccount must both be set",
    ],
  ];
  for (const [name, init, reason] of rejects) {
    it(`rejects: ${name}`, () => {
      const r = authorizationFromXds(xds(init));
      assert.deepEqual(r, { ok: false, reason });
    });
  }
});
