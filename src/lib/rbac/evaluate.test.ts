/**
 * One case per semantic rule of INTEROP.md §3.6: the table says what a user sees (allowed or
 * denied, and which policy decided it).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Identity } from "../identity/index.ts";
import { authorize, describeDecision, evaluatePolicies } from "./evaluate.ts";
import type { AuthorizationDecision, PolicyLookup } from "./evaluate.ts";
import { parseCidr } from "../net/ip.ts";
import { rbacMatch } from "./model.ts";
import type {
  Authorization,
  RbacAction,
  RbacConnection,
  RbacMatch,
  RbacRule,
  StringMatch,
} from "./model.ts";

const exact = (value: string): StringMatch => ({ kind: "exact", value });
const prefix = (value: string): StringMatch => ({ kind: "prefix", value });
const suffix = (value: string): StringMatch => ({ kind: "suffix", value });
const presence: StringMatch = { kind: "presence" };
const cidr = (s: string) => {
  const c = parseCidr(s);
  if (c === undefined) throw new Error(`bad cidr ${s}`);
  return c;
};

function policy(
  name: string,
  action: RbacAction,
  rules: RbacRule[],
  extra: Partial<Authorization> = {},
): Authorization {
  return { name, namespace: "ns", scope: "NAMESPACE", action, dryRun: false, rules, ...extra };
}
/** A policy with one rule of one clause of one match entry. */
function simple(name: string, action: RbacAction, m: Partial<RbacMatch>, dryRun = false) {
  return policy(name, action, [[[rbacMatch(m)]]], { dryRun });
}

const sleep: Identity = { trustDomain: "cluster.local", namespace: "ns", serviceAccount: "sleep" };
const other: Identity = { trustDomain: "cluster.local", namespace: "other", serviceAccount: "x" };

function conn(c: Partial<RbacConnection> = {}): RbacConnection {
  return {
    srcIp: "198.18.1.5",
    srcIdentity: sleep,
    dstIp: "198.18.2.7",
    dstPort: 8080,
    ...c,
  };
}
const plaintext = conn({ srcIdentity: undefined });

interface Case {
  name: string;
  policies: Authorization[];
  conn: RbacConnection;
  allowed: boolean;
  reason: AuthorizationDecision["reason"];
  policy?: string;
}

const cases: Case[] = [
  // Order of evaluation.
  {
    name: "no policies: allow",
    policies: [],
    conn: conn(),
    allowed: true,
    reason: "no-allow-policies",
  },
  {
    name: "matching DENY denies and is named",
    policies: [
      simple("deny-sleep", "DENY", { principals: [exact("cluster.local/ns/ns/sa/sleep")] }),
    ],
    conn: conn(),
    allowed: false,
    reason: "deny-matched",
    policy: "ns/deny-sleep",
  },
  {
    name: "non-matching DENY and no ALLOW: allow",
    policies: [simple("deny-other", "DENY", { namespaces: [exact("other")] })],
    conn: conn(),
    allowed: true,
    reason: "no-allow-policies",
  },
  {
    name: "matching ALLOW allows and is named",
    policies: [simple("allow-ns", "ALLOW", { namespaces: [exact("ns")] })],
    conn: conn(),
    allowed: true,
    reason: "allow-matched",
    policy: "ns/allow-ns",
  },
  {
    name: "ALLOW policies present but none matches: deny",
    policies: [simple("allow-other", "ALLOW", { namespaces: [exact("other")] })],
    conn: conn(),
    allowed: false,
    reason: "no-allow-matched",
  },
  {
    name: "DENY wins over a matching ALLOW",
    policies: [
      simple("allow-all-ns", "ALLOW", { namespaces: [presence] }),
      simple("deny-port", "DENY", { destinationPorts: [8080] }),
    ],
    conn: conn(),
    allowed: false,
    reason: "deny-matched",
    policy: "ns/deny-port",
  },
  {
    name: "any matching ALLOW suffices",
    policies: [
      simple("allow-other", "ALLOW", { namespaces: [exact("other")] }),
      simple("allow-port", "ALLOW", { destinationPorts: [8080] }),
    ],
    conn: conn(),
    allowed: true,
    reason: "allow-matched",
    policy: "ns/allow-port",
  },
  // Empty cases.
  {
    name: "ALLOW with zero rules never matches (so denies)",
    policies: [policy("allow-nothing", "ALLOW", [])],
    conn: conn(),
    allowed: false,
    reason: "no-allow-matched",
  },
  {
    name: "DENY with zero rules never matches",
    policies: [policy("deny-nothing", "DENY", [])],
    conn: conn(),
    allowed: true,
    reason: "no-allow-policies",
  },
  {
    name: "a rule with zero clauses matches everything",
    policies: [policy("allow-any", "ALLOW", [[]])],
    conn: plaintext,
    allowed: true,
    reason: "allow-matched",
    policy: "ns/allow-any",
  },
  {
    name: "a clause with zero matches matches",
    policies: [
      policy("allow-empty-clause", "ALLOW", [[[], [rbacMatch({ destinationPorts: [8080] })]]]),
    ],
    conn: conn(),
    allowed: true,
    reason: "allow-matched",
  },
  {
    name: "a completely empty match entry never counts",
    policies: [policy("allow-empty-entry", "ALLOW", [[[rbacMatch({})]]])],
    conn: conn(),
    allowed: false,
    reason: "no-allow-matched",
  },
  {
    name: "an empty entry beside a matching one: the clause matches",
    policies: [
      policy("allow-mixed", "ALLOW", [[[rbacMatch({}), rbacMatch({ destinationPorts: [8080] })]]]),
    ],
    conn: conn(),
    allowed: true,
    reason: "allow-matched",
  },
  // Rule / clause / match algebra.
  {
    name: "rule: all clauses must match",
    policies: [
      policy("allow-two-clauses", "ALLOW", [
        [[rbacMatch({ namespaces: [exact("ns")] })], [rbacMatch({ destinationPorts: [9090] })]],
      ]),
    ],
    conn: conn(),
    allowed: false,
    reason: "no-allow-matched",
  },
  {
    name: "policy: any rule matches",
    policies: [
      policy("allow-second-rule", "ALLOW", [
        [[rbacMatch({ destinationPorts: [9090] })]],
        [[rbacMatch({ destinationPorts: [8080] })]],
      ]),
    ],
    conn: conn(),
    allowed: true,
    reason: "allow-matched",
  },
  {
    name: "match: kinds are ANDed (principal passes, port fails)",
    policies: [
      simple("allow-and", "ALLOW", {
        principals: [exact("cluster.local/ns/ns/sa/sleep")],
        destinationPorts: [9090],
      }),
    ],
    conn: conn(),
    allowed: false,
    reason: "no-allow-matched",
  },
  {
    name: "positive list: any element",
    policies: [simple("allow-ports", "ALLOW", { destinationPorts: [1, 2, 8080] })],
    conn: conn(),
    allowed: true,
    reason: "allow-matched",
  },
  {
    name: "negative list: no element may match",
    policies: [simple("allow-not-ports", "ALLOW", { notDestinationPorts: [1, 8080] })],
    conn: conn(),
    allowed: false,
    reason: "no-allow-matched",
  },
  {
    name: "positive and negative of one kind both apply",
    policies: [
      simple("allow-ns-not-sa", "ALLOW", {
        namespaces: [exact("ns")],
        notPrincipals: [suffix("/sa/sleep")],
      }),
    ],
    conn: conn(),
    allowed: false,
    reason: "no-allow-matched",
  },
  // Principals.
  {
    name: "principals compare without spiffe://",
    policies: [simple("allow-p", "ALLOW", { principals: [exact("cluster.local/ns/ns/sa/sleep")] })],
    conn: conn(),
    allowed: true,
    reason: "allow-matched",
  },
  {
    name: "a principal written with spiffe:// does not match",
    policies: [
      simple("allow-p", "ALLOW", { principals: [exact("spiffe://cluster.local/ns/ns/sa/sleep")] }),
    ],
    conn: conn(),
    allowed: false,
    reason: "no-allow-matched",
  },
  {
    name: "principal prefix",
    policies: [simple("allow-p", "ALLOW", { principals: [prefix("cluster.local/ns/ns/")] })],
    conn: conn(),
    allowed: true,
    reason: "allow-matched",
  },
  {
    name: "principal presence with an identity",
    policies: [simple("allow-p", "ALLOW", { principals: [presence] })],
    conn: conn(),
    allowed: true,
    reason: "allow-matched",
  },
  {
    name: "principal presence without an identity never matches",
    policies: [simple("allow-p", "ALLOW", { principals: [presence] })],
    conn: plaintext,
    allowed: false,
    reason: "no-allow-matched",
  },
  {
    name: "STRICT mTLS: DENY not_principals presence denies plaintext",
    policies: [simple("istio_converted_static_strict", "DENY", { notPrincipals: [presence] })],
    conn: plaintext,
    allowed: false,
    reason: "deny-matched",
    policy: "ns/istio_converted_static_strict",
  },
  {
    name: "STRICT mTLS: DENY not_principals presence lets mTLS through",
    policies: [simple("istio_converted_static_strict", "DENY", { notPrincipals: [presence] })],
    conn: conn(),
    allowed: true,
    reason: "no-allow-policies",
  },
  // Namespaces.
  {
    name: "namespaces match the identity's namespace",
    policies: [simple("allow-ns", "ALLOW", { namespaces: [exact("other")] })],
    conn: conn({ srcIdentity: other }),
    allowed: true,
    reason: "allow-matched",
  },
  {
    name: "namespaces presence needs an identity",
    policies: [simple("allow-ns", "ALLOW", { namespaces: [presence] })],
    conn: plaintext,
    allowed: false,
    reason: "no-allow-matched",
  },
  {
    name: "not_namespaces passes without an identity",
    policies: [simple("allow-not-ns", "ALLOW", { notNamespaces: [exact("other")] })],
    conn: plaintext,
    allowed: true,
    reason: "allow-matched",
  },
  // Service accounts.
  {
    name: "service accounts: exact namespace and name",
    policies: [
      simple("allow-sa", "ALLOW", {
        serviceAccounts: [{ namespace: "ns", serviceAccount: "sleep" }],
      }),
    ],
    conn: conn(),
    allowed: true,
    reason: "allow-matched",
  },
  {
    name: "service accounts: other namespace does not match",
    policies: [
      simple("allow-sa", "ALLOW", {
        serviceAccounts: [{ namespace: "other", serviceAccount: "sleep" }],
      }),
    ],
    conn: conn(),
    allowed: false,
    reason: "no-allow-matched",
  },
  {
    name: "service accounts need an identity",
    policies: [
      simple("allow-sa", "ALLOW", {
        serviceAccounts: [{ namespace: "ns", serviceAccount: "sleep" }],
      }),
    ],
    conn: plaintext,
    allowed: false,
    reason: "no-allow-matched",
  },
  {
    name: "not_service_accounts passes without an identity",
    policies: [
      simple("deny-sa", "DENY", {
        notServiceAccounts: [{ namespace: "ns", serviceAccount: "sleep" }],
      }),
    ],
    conn: plaintext,
    allowed: false,
    reason: "deny-matched",
  },
  // Addresses and ports.
  {
    name: "source IP inside the CIDR",
    policies: [simple("allow-src", "ALLOW", { sourceIps: [cidr("198.18.1.0/24")] })],
    conn: conn(),
    allowed: true,
    reason: "allow-matched",
  },
  {
    name: "source IP outside the CIDR",
    policies: [simple("allow-src", "ALLOW", { sourceIps: [cidr("198.18.9.0/24")] })],
    conn: conn(),
    allowed: false,
    reason: "no-allow-matched",
  },
  {
    name: "an IPv6 source never matches an IPv4 CIDR",
    policies: [simple("allow-src", "ALLOW", { sourceIps: [cidr("0.0.0.0/0")] })],
    conn: conn({ srcIp: "fd00::5" }),
    allowed: false,
    reason: "no-allow-matched",
  },
  {
    name: "not_source_ips excludes",
    policies: [simple("deny-not-src", "DENY", { notSourceIps: [cidr("198.18.1.0/24")] })],
    conn: conn({ srcIp: "198.18.3.3" }),
    allowed: false,
    reason: "deny-matched",
  },
  {
    name: "destination IP is the final pod IP",
    policies: [simple("allow-dst", "ALLOW", { destinationIps: [cidr("198.18.2.7/32")] })],
    conn: conn(),
    allowed: true,
    reason: "allow-matched",
  },
  {
    name: "not_destination_ips excludes",
    policies: [simple("allow-not-dst", "ALLOW", { notDestinationIps: [cidr("198.18.2.0/24")] })],
    conn: conn(),
    allowed: false,
    reason: "no-allow-matched",
  },
  {
    name: "destination port is the final port (not 15008)",
    policies: [simple("allow-15008", "ALLOW", { destinationPorts: [15008] })],
    conn: conn(),
    allowed: false,
    reason: "no-allow-matched",
  },
  // Dry run.
  {
    name: "a matching dry-run DENY is not enforced",
    policies: [simple("deny-dry", "DENY", { destinationPorts: [8080] }, true)],
    conn: conn(),
    allowed: true,
    reason: "no-allow-policies",
  },
  {
    name: "dry-run ALLOWs do not count as ALLOW policies",
    policies: [simple("allow-dry", "ALLOW", { destinationPorts: [9090] }, true)],
    conn: conn(),
    allowed: true,
    reason: "no-allow-policies",
  },
  {
    name: "dry-run ALLOW beside an enforced one does not allow",
    policies: [
      simple("allow-dry", "ALLOW", { destinationPorts: [8080] }, true),
      simple("allow-real", "ALLOW", { destinationPorts: [9090] }),
    ],
    conn: conn(),
    allowed: false,
    reason: "no-allow-matched",
  },
];

describe("evaluatePolicies: the semantic rules", () => {
  for (const c of cases) {
    it(c.name, () => {
      const d = evaluatePolicies(c.policies, c.conn);
      assert.equal(d.allowed, c.allowed, describeDecision(d));
      assert.equal(d.reason, c.reason, describeDecision(d));
      if (c.policy !== undefined) {
        assert.ok(d.reason === "deny-matched" || d.reason === "allow-matched");
        assert.equal(d.policy, c.policy);
      }
    });
  }
});

describe("decision detail", () => {
  it("names the matching rule and explains itself", () => {
    const p = policy("allow-second", "ALLOW", [
      [[rbacMatch({ destinationPorts: [1] })]],
      [[rbacMatch({ destinationPorts: [8080] })]],
    ]);
    const d = evaluatePolicies([p], conn());
    assert.deepEqual(
      {
        allowed: d.allowed,
        reason: d.reason,
        policy: "policy" in d ? d.policy : "",
        rule: "rule" in d ? d.rule : -2,
      },
      { allowed: true, reason: "allow-matched", policy: "ns/allow-second", rule: 1 },
    );
    assert.equal(describeDecision(d), "allowed by ALLOW policy ns/allow-second (rule 1)");
  });

  it("lists the ALLOW policies checked when none matched", () => {
    const d = evaluatePolicies(
      [
        simple("a", "ALLOW", { destinationPorts: [1] }),
        simple("b", "ALLOW", { destinationPorts: [2] }),
      ],
      conn(),
    );
    assert.equal(d.reason, "no-allow-matched");
    assert.equal(describeDecision(d), "denied: no ALLOW policy matched (checked ns/a, ns/b)");
  });

  it("reports what dry-run policies would have done", () => {
    const d = evaluatePolicies(
      [simple("deny-dry", "DENY", { destinationPorts: [8080] }, true)],
      conn(),
    );
    assert.equal(d.allowed, true);
    assert.deepEqual(d.dryRun, {
      matched: [{ policy: "ns/deny-dry", action: "DENY", rule: 0 }],
      wouldAllow: false,
      wouldPolicy: "ns/deny-dry",
    });
    assert.equal(
      describeDecision(d),
      "allowed: no DENY policy matched and no ALLOW policy applies; dry-run: would deny (matched DENY ns/deny-dry)",
    );
    assert.equal(evaluatePolicies([], conn()).dryRun, undefined);
  });
});

describe("authorize: which policies apply", () => {
  const pols = new Map<string, Authorization>();
  const add = (p: Authorization) => pols.set(`${p.namespace}/${p.name}`, p);
  const denyAll = (name: string, namespace: string, scope: Authorization["scope"]) =>
    policy(name, "DENY", [[]], { namespace, scope });
  add(denyAll("ns-wide", "team-a", "NAMESPACE"));
  add(denyAll("mesh-wide", "istio-system", "GLOBAL"));
  add(denyAll("selected", "team-b", "WORKLOAD_SELECTOR"));
  const lookup: PolicyLookup = {
    policy: (k) => pols.get(k),
    namespacePolicyKeys: (ns) =>
      [...pols.values()]
        .filter((p) => p.scope === "NAMESPACE" && p.namespace === ns)
        .map((p) => `${p.namespace}/${p.name}`),
    globalPolicyKeys: () =>
      [...pols.values()].filter((p) => p.scope === "GLOBAL").map((p) => `${p.namespace}/${p.name}`),
  };

  it("namespace policies apply to their namespace only; global ones everywhere", () => {
    const a = authorize(lookup, { namespace: "team-a", authorizationPolicies: [] }, conn());
    assert.equal(a.allowed, false);
    assert.equal(a.reason === "deny-matched" && a.policy, "team-a/ns-wide");
    const pols2 = new Map(pols);
    pols2.delete("istio-system/mesh-wide");
    const b = authorize(
      { ...lookup, policy: (k) => pols2.get(k), globalPolicyKeys: () => [] },
      { namespace: "team-b", authorizationPolicies: [] },
      conn(),
    );
    assert.equal(
      b.allowed,
      true,
      "team-a's namespace policy and an unreferenced selector policy do not apply",
    );
    const g = authorize(lookup, { namespace: "team-b", authorizationPolicies: [] }, conn());
    assert.equal(g.reason === "deny-matched" && g.policy, "istio-system/mesh-wide");
  });

  it("workload-selector policies apply when the workload names them; unknown names are skipped", () => {
    const noGlobal: PolicyLookup = { ...lookup, globalPolicyKeys: () => [] };
    const d = authorize(
      noGlobal,
      { namespace: "team-c", authorizationPolicies: ["team-c/not-yet-known", "team-b/selected"] },
      conn(),
    );
    assert.equal(d.reason === "deny-matched" && d.policy, "team-b/selected");
    assert.deepEqual(d.unknownPolicies, ["team-c/not-yet-known"]);
    const skipped = authorize(
      noGlobal,
      { namespace: "team-c", authorizationPolicies: ["team-c/gone"] },
      conn(),
    );
    assert.equal(skipped.allowed, true);
    assert.match(describeDecision(skipped), /skipped unknown policies team-c\/gone/);
  });
});
