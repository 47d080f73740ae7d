import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  aliasesOf,
  hasDomain,
  isPodHost,
  kubernetesExpansions,
  normalizeDomain,
  parseName,
  trimDomain,
  wildcards,
} from "./names.ts";

describe("kubernetesExpansions", () => {
  const cases: [string, string[]][] = [
    ["name", ["name.ns1.svc.cluster.local"]],
    ["name.ns2", ["name.ns2.svc.cluster.local", "name.ns2.ns1.svc.cluster.local"]],
    ["name.ns2.svc", ["name.ns2.svc.cluster.local", "name.ns2.svc.svc.cluster.local"]],
    ["name.ns2.not-svc", ["name.ns2.not-svc.svc.cluster.local"]],
    ["pod.sub-domain.ns.svc", ["pod.sub-domain.ns.svc.cluster.local"]],
    ["pod.sub-domain.ns.not-svc", []],
    ["name.ns2.svc.cluster", []],
    ["name.ns2.svc.cluster.local", []],
    ["www.google.com", ["www.google.com.svc.cluster.local"]],
  ];
  for (const [name, want] of cases) {
    it(name, () => assert.deepEqual(kubernetesExpansions(name, "ns1", "cluster.local"), want));
  }
});

describe("wildcards", () => {
  it("a single label is only itself", () => assert.deepEqual(wildcards("svc1"), ["svc1"]));
  it("replaces the first label of every parent", () =>
    assert.deepEqual(wildcards("svc1.ns1.svc.cluster.local"), [
      "svc1.ns1.svc.cluster.local",
      "*.ns1.svc.cluster.local",
      "*.svc.cluster.local",
      "*.cluster.local",
      "*.local",
    ]));
});

describe("hasDomain / trimDomain", () => {
  it("matches only strictly below the domain, on a label boundary", () => {
    assert.equal(hasDomain("name.ns.svc.cluster.local", "svc.cluster.local"), true);
    assert.equal(hasDomain("name.ns.a.different.domain", "svc.cluster.local"), false);
    assert.equal(hasDomain("svc.cluster.local", "svc.cluster.local"), false);
    assert.equal(hasDomain("xsvc.cluster.local", "svc.cluster.local"), false);
    assert.equal(hasDomain("a.b", "*.b"), false);
    assert.equal(hasDomain("a.b", ""), false);
  });
  it("trims", () => {
    assert.equal(trimDomain("name.ns.svc.cluster.local", "svc.cluster.local"), "name.ns");
    assert.equal(trimDomain("name.ns.a.different.domain", "svc.cluster.local"), undefined);
    assert.equal(trimDomain("svc.cluster.local", "svc.cluster.local"), undefined);
  });
});

describe("isPodHost", () => {
  it("is <pod>.<sub>.<ns>.svc.<domain>", () => {
    assert.equal(isPodHost("p.sub.ns.svc.cluster.local", "cluster.local"), true);
    assert.equal(isPodHost("sub.ns.svc.cluster.local", "cluster.local"), false);
    assert.equal(isPodHost("p.sub.ns.svc.cluster.remote", "cluster.local"), false);
    assert.equal(isPodHost("p.sub.ns.svc.corp", "corp"), true);
  });
});

describe("parseName / normalizeDomain", () => {
  it("drops the trailing dot and lower-cases the key", () => {
    assert.deepEqual(parseName("WWW.Example.com."), {
      labels: ["WWW", "Example", "com"],
      key: "www.example.com",
    });
    assert.deepEqual(parseName("."), { labels: [], key: "" });
    assert.equal(normalizeDomain(" .Svc.Cluster.Local. "), "svc.cluster.local");
  });
});

describe("aliasesOf", () => {
  const search = ["ns1.svc.cluster.local", "svc.cluster.local", "cluster.local"];
  it("the name, its expansions, then each stripped search domain and its expansions", () => {
    const got = aliasesOf(
      parseName("Productpage.NS1.ns1.svc.cluster.local"),
      "ns1",
      search,
      "cluster.local",
    );
    assert.deepEqual(
      got.map((a) => [a.key, a.stripped ?? "-", a.podHost]),
      [
        ["productpage.ns1.ns1.svc.cluster.local", "-", true],
        ["productpage.ns1", "Productpage.NS1", false],
        ["productpage.ns1.svc.cluster.local", "Productpage.NS1", false],
        // Its expansion (.svc.cluster.local) is the name itself, already listed.
        ["productpage.ns1.ns1", "Productpage.NS1.ns1", false],
        ["productpage.ns1.ns1.svc", "Productpage.NS1.ns1.svc", false],
      ],
    );
  });
  it("no repeats, first occurrence wins", () => {
    const got = aliasesOf(parseName("a"), "ns1", ["x", "x"], "cluster.local");
    assert.deepEqual(
      got.map((a) => a.key),
      ["a", "a.ns1.svc.cluster.local"],
    );
  });
});
