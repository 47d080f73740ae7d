import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  formatIdentity,
  identitiesEqual,
  identitiesFromSubjectAltName,
  identityKey,
  makeIdentity,
  parseIdentity,
  parseSubjectAltNameString,
} from "./spiffe.ts";

function reason(s: string): string {
  const r = parseIdentity(s);
  assert.equal(r.ok, false, `expected "${s}" to be rejected`);
  return r.ok ? "" : r.reason;
}

describe("parseIdentity", () => {
  it("parses Istio's shape", () => {
    const r = parseIdentity("spiffe://cluster.local/ns/default/sa/bookinfo-productpage");
    assert.deepEqual(r, {
      ok: true,
      value: {
        trustDomain: "cluster.local",
        namespace: "default",
        serviceAccount: "bookinfo-productpage",
      },
    });
  });

  it("round-trips through formatIdentity", () => {
    for (const s of [
      "spiffe://cluster.local/ns/default/sa/default",
      "spiffe://td_1.example-x/ns/Name.Space_1/sa/SA-2.x",
    ]) {
      const r = parseIdentity(s);
      assert.ok(r.ok, s);
      assert.equal(formatIdentity(r.value), s);
    }
  });

  it("rejects a wrong or missing scheme, naming the problem", () => {
    assert.match(reason("http://cluster.local/ns/a/sa/b"), /must start with "spiffe:\/\/"/);
    assert.match(reason("cluster.local/ns/a/sa/b"), /must start with "spiffe:\/\/"/);
    assert.match(reason("spiffe:/cluster.local/ns/a/sa/b"), /must start with/);
    assert.match(reason("SPIFFE://cluster.local/ns/a/sa/b"), /scheme must be lower-case/);
  });

  it("requires exactly five parts", () => {
    assert.match(reason("spiffe://cluster.local/ns/a/sa/b/extra"), /expected 5 parts .* found 6/);
    assert.match(reason("spiffe://cluster.local/ns/a/sa/b/"), /found 6/);
    assert.match(reason("spiffe://cluster.local/ns/a"), /found 3/);
    assert.match(reason("spiffe://cluster.local"), /found 1/);
    assert.match(reason("spiffe://cluster.local/ns//a/sa/b"), /found 6/);
  });

  it("requires the literal ns and sa segments", () => {
    assert.match(
      reason("spiffe://cluster.local/namespace/a/sa/b"),
      /second part must be "ns", found "namespace"/,
    );
    assert.match(
      reason("spiffe://cluster.local/ns/a/serviceaccount/b"),
      /fourth part must be "sa"/,
    );
    assert.match(reason("spiffe://cluster.local/sa/a/ns/b"), /second part must be "ns"/);
    assert.match(reason("spiffe://cluster.local/NS/a/sa/b"), /second part must be "ns"/);
  });

  it("rejects empty parts", () => {
    assert.match(reason("spiffe:///ns/a/sa/b"), /trust domain is empty/);
    assert.match(reason("spiffe://cluster.local/ns//sa/b"), /namespace is empty/);
    assert.match(reason("spiffe://cluster.local/ns/a/sa/"), /service account is empty/);
  });

  it("rejects upper case in the trust domain but keeps case in ns/sa", () => {
    assert.match(reason("spiffe://Cluster.Local/ns/a/sa/b"), /upper-case letters/);
    const r = parseIdentity("spiffe://cluster.local/ns/Prod/sa/Web");
    assert.ok(r.ok);
    const lower = parseIdentity("spiffe://cluster.local/ns/prod/sa/web");
    assert.ok(lower.ok);
    assert.equal(identitiesEqual(r.value, lower.value), false);
  });

  it("rejects percent-encoding rather than decoding it", () => {
    assert.match(
      reason("spiffe://cluster.local/ns/a%2Fb/sa/c"),
      /namespace "a%2Fb" is percent-encoded/,
    );
    assert.match(reason("spiffe://cluster.local/ns/a/sa/%62"), /percent-encoded/);
    assert.match(reason("spiffe://cluster%2elocal/ns/a/sa/b"), /percent-encoded/);
  });

  it("rejects ports, user info, queries, fragments, dot segments and odd characters", () => {
    assert.match(reason("spiffe://cluster.local:443/ns/a/sa/b"), /port/);
    assert.match(reason("spiffe://user@cluster.local/ns/a/sa/b"), /user info/);
    assert.match(reason("spiffe://cluster.local/ns/a/sa/b?x=1"), /query/);
    assert.match(reason("spiffe://cluster.local/ns/a/sa/b#f"), /fragment/);
    assert.match(reason("spiffe://cluster.local/ns/../sa/b"), /dot segment/);
    assert.match(reason("spiffe://cluster.local/ns/a b/sa/c"), /characters other than/);
    assert.match(reason("spiffe://cluster.local/ns/a/sa/b\n"), /characters other than/);
    assert.match(reason(" spiffe://cluster.local/ns/a/sa/b"), /must start with/);
  });

  it("limits lengths", () => {
    assert.match(reason(`spiffe://${"a".repeat(256)}/ns/a/sa/b`), /trust domain is 256 characters/);
    assert.match(reason(`spiffe://td/ns/${"a".repeat(2100)}/sa/b`), /longer than 2048/);
  });

  it("quotes the input in the reason", () => {
    assert.match(reason("spiffe://td/ns/a"), /^invalid SPIFFE identity "spiffe:\/\/td\/ns\/a": /);
  });
});

describe("identity helpers", () => {
  it("makeIdentity checks parts like parseIdentity", () => {
    assert.ok(makeIdentity("cluster.local", "ns1", "sa1").ok);
    const bad = makeIdentity("cluster.local", "a/b", "sa1");
    assert.equal(bad.ok, false);
  });

  it("identityKey is equal exactly for equal identities", () => {
    const a = { trustDomain: "td", namespace: "n", serviceAccount: "s" };
    const b = { trustDomain: "td", namespace: "n", serviceAccount: "s" };
    const c = { trustDomain: "td", namespace: "n", serviceAccount: "t" };
    assert.equal(identityKey(a), identityKey(b));
    assert.notEqual(identityKey(a), identityKey(c));
    assert.ok(identitiesEqual(a, b));
    assert.ok(!identitiesEqual(a, c));
  });
});

describe("subjectaltname strings (tls.PeerCertificate)", () => {
  it("keeps only URI SANs that are SPIFFE identities", () => {
    const ids = identitiesFromSubjectAltName(
      "DNS:spiffe.example, URI:spiffe://cluster.local/ns/a/sa/b, IP Address:198.18.0.1, " +
        "URI:https://example.com/x, URI:spiffe://cluster.local/ns/a/sa/b/extra, email:x@y, " +
        "URI:spiffe://other.td/ns/c/sa/d",
    );
    assert.deepEqual(ids.map(formatIdentity), [
      "spiffe://cluster.local/ns/a/sa/b",
      "spiffe://other.td/ns/c/sa/d",
    ]);
  });

  it("ignores a DNS SAN that looks like an identity", () => {
    assert.deepEqual(identitiesFromSubjectAltName("DNS:spiffe://cluster.local/ns/a/sa/b"), []);
    assert.deepEqual(identitiesFromSubjectAltName(undefined), []);
    assert.deepEqual(identitiesFromSubjectAltName(""), []);
  });

  it("does not split inside Node's JSON-quoted values", () => {
    const entries = parseSubjectAltNameString(
      'URI:"spiffe://td/ns/a, URI:spiffe://td/ns/x/sa/y", DNS:ok.example',
    );
    assert.deepEqual(entries, [
      { type: "URI", value: "spiffe://td/ns/a, URI:spiffe://td/ns/x/sa/y" },
      { type: "DNS", value: "ok.example" },
    ]);
    // The smuggled id inside the quoted value is not an identity.
    assert.deepEqual(
      identitiesFromSubjectAltName('URI:"spiffe://td/ns/a, URI:spiffe://td/ns/x/sa/y"'),
      [],
    );
  });
});
