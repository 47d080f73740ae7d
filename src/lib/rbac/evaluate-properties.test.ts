/**
 * Property-style tests: random policies and connections from a small universe (so matches are
 * common) with a fixed seed, checking laws the semantics must obey.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Identity } from "../identity/index.ts";
import { evaluatePolicies, policyMatches } from "./evaluate.ts";
import { parseCidr } from "../net/ip.ts";
import { rbacMatch } from "./model.ts";
import type { Authorization, RbacConnection, RbacMatch, StringMatch } from "./model.ts";

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const RUNS = 2000;

function gen(rng: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)] as T;
  const some = <T>(f: () => T, max = 2): T[] => {
    const n = Math.floor(rng() * (max + 1));
    return Array.from({ length: n }, f);
  };
  const namespaces = ["a", "b"];
  const sas = ["x", "y"];
  const identities: (Identity | undefined)[] = [undefined];
  for (const ns of namespaces)
    for (const sa of sas) identities.push({ trustDomain: "td", namespace: ns, serviceAccount: sa });
  const cidrs = ["198.18.0.0/24", "198.18.1.0/24", "198.18.0.0/23", "198.18.0.1/32"].map((c) =>
    parseCidr(c)!,
  );
  const ips = ["198.18.0.1", "198.18.0.2", "198.18.1.1"];
  const ports = [80, 8080];
  const str = (): StringMatch =>
    pick<StringMatch>([
      { kind: "exact", value: pick(namespaces) },
      { kind: "prefix", value: "a" },
      { kind: "suffix", value: "b" },
      { kind: "presence" },
    ]);
  const principal = (): StringMatch =>
    pick<StringMatch>([
      { kind: "exact", value: `td/ns/${pick(namespaces)}/sa/${pick(sas)}` },
      { kind: "prefix", value: `td/ns/${pick(namespaces)}/` },
      { kind: "suffix", value: `/sa/${pick(sas)}` },
      { kind: "presence" },
    ]);
  const sa = () => ({ namespace: pick(namespaces), serviceAccount: pick(sas) });
  const match = (): RbacMatch => {
    const m: Partial<{ -readonly [K in keyof RbacMatch]: RbacMatch[K] }> = {};
    // Each kind is present with probability ~1/4, keeping entries small.
    if (rng() < 0.25) m.namespaces = some(str, 2);
    if (rng() < 0.15) m.notNamespaces = some(str, 1);
    if (rng() < 0.25) m.principals = some(principal, 2);
    if (rng() < 0.15) m.notPrincipals = some(principal, 1);
    if (rng() < 0.2) m.sourceIps = some(() => pick(cidrs), 2);
    if (rng() < 0.1) m.notSourceIps = some(() => pick(cidrs), 1);
    if (rng() < 0.2) m.destinationPorts = some(() => pick(ports), 2);
    if (rng() < 0.1) m.notDestinationPorts = some(() => pick(ports), 1);
    if (rng() < 0.15) m.serviceAccounts = some(sa, 2);
    if (rng() < 0.1) m.notServiceAccounts = some(sa, 1);
    if (rng() < 0.1) m.destinationIps = some(() => pick(cidrs), 1);
    return rbacMatch(m);
  };
  let n = 0;
  const policy = (action?: "ALLOW" | "DENY", dryRun = false): Authorization => ({
    name: `p${n++}`,
    namespace: "ns",
    scope: "NAMESPACE",
    action: action ?? pick(["ALLOW", "DENY"] as const),
    dryRun,
    rules: some(() => some(() => some(match, 2), 2), 2),
  });
  const connection = (): RbacConnection => ({
    srcIp: pick(ips),
    srcIdentity: pick(identities),
    dstIp: pick(ips),
    dstPort: pick(ports),
  });
  return { policy, connection, pick, some };
}

function shuffle<T>(xs: readonly T[], rng: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe("authorization properties", () => {
  it("adding a non-matching DENY never changes the decision", () => {
    const rng = mulberry32(1);
    const g = gen(rng);
    let checked = 0;
    for (let i = 0; i < RUNS; i++) {
      const c = g.connection();
      const pols = g.some(() => g.policy(), 4);
      const extra = g.policy("DENY");
      if (policyMatches(extra, c) >= 0) continue;
      checked++;
      const before = evaluatePolicies(pols, c);
      const after = evaluatePolicies([...pols, extra], c);
      assert.deepEqual(after, before);
    }
    assert.ok(checked > RUNS / 4, `only ${checked} runs exercised the property`);
  });

  it("adding a matching DENY always denies, naming a DENY policy", () => {
    const rng = mulberry32(2);
    const g = gen(rng);
    let checked = 0;
    for (let i = 0; i < RUNS; i++) {
      const c = g.connection();
      const extra = g.policy("DENY");
      if (policyMatches(extra, c) < 0) continue;
      checked++;
      const d = evaluatePolicies([...g.some(() => g.policy(), 4), extra], c);
      assert.equal(d.allowed, false);
      assert.equal(d.reason, "deny-matched");
    }
    assert.ok(checked > RUNS / 10, `only ${checked} runs exercised the property`);
  });

  it("adding a matching ALLOW allows unless some DENY matches", () => {
    const rng = mulberry32(3);
    const g = gen(rng);
    let checked = 0;
    for (let i = 0; i < RUNS; i++) {
      const c = g.connection();
      const pols = g.some(() => g.policy(), 4);
      const extra = g.policy("ALLOW");
      if (policyMatches(extra, c) < 0) continue;
      checked++;
      const denyMatches = pols.some((p) => p.action === "DENY" && policyMatches(p, c) >= 0);
      assert.equal(evaluatePolicies([...pols, extra], c).allowed, !denyMatches);
    }
    assert.ok(checked > RUNS / 10, `only ${checked} runs exercised the property`);
  });

  it("adding a non-matching ALLOW never turns a deny into an allow", () => {
    const rng = mulberry32(4);
    const g = gen(rng);
    for (let i = 0; i < RUNS; i++) {
      const c = g.connection();
      const pols = g.some(() => g.policy(), 4);
      const extra = g.policy("ALLOW");
      if (policyMatches(extra, c) >= 0) continue;
      const before = evaluatePolicies(pols, c);
      if (!before.allowed) assert.equal(evaluatePolicies([...pols, extra], c).allowed, false);
    }
  });

  it("the verdict does not depend on policy order", () => {
    const rng = mulberry32(5);
    const g = gen(rng);
    for (let i = 0; i < RUNS; i++) {
      const c = g.connection();
      const pols = g.some(() => g.policy(), 5);
      const a = evaluatePolicies(pols, c);
      const b = evaluatePolicies(shuffle(pols, rng), c);
      assert.equal(b.allowed, a.allowed);
      assert.equal(b.reason, a.reason);
    }
  });

  it("dry-run policies never change the enforced verdict", () => {
    const rng = mulberry32(6);
    const g = gen(rng);
    for (let i = 0; i < RUNS; i++) {
      const c = g.connection();
      const pols = g.some(() => g.policy(), 4);
      const dry = g.some(() => g.policy(undefined, true), 3);
      const a = evaluatePolicies(pols, c);
      const b = evaluatePolicies(shuffle([...pols, ...dry], rng), c);
      assert.equal(b.allowed, a.allowed);
      assert.equal(b.reason, a.reason);
      if (dry.length > 0) {
        // The shadow verdict is what enforcing everything would give.
        const enforcedAll = dry.map((p) => ({ ...p, dryRun: false }));
        assert.equal(b.dryRun?.wouldAllow, evaluatePolicies([...pols, ...enforcedAll], c).allowed);
      }
    }
  });

  it("a plaintext connection never matches a positive identity condition", () => {
    const rng = mulberry32(7);
    const g = gen(rng);
    for (let i = 0; i < RUNS; i++) {
      const c = { ...g.connection(), srcIdentity: undefined };
      const p = g.policy("ALLOW");
      const needsId = p.rules.every((rule) =>
        rule.some(
          (clause) =>
            clause.length > 0 &&
            clause.every(
              (m) =>
                m.principals.length > 0 ||
                m.serviceAccounts.length > 0 ||
                m.namespaces.some((s) => s.kind === "presence"),
            ),
        ),
      );
      if (needsId && p.rules.length > 0) assert.equal(policyMatches(p, c), -1);
    }
  });
});
