import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  acceptTraceparent,
  formatBaggage,
  formatForwarded,
  newTraceparent,
  parseBaggage,
  parseForwarded,
} from "./headers.ts";

describe("forwarded", () => {
  it("reads for= and host=, quoted or not", () => {
    assert.deepEqual(parseForwarded('for="198.18.0.7:41234";host=reviews.ns.svc.cluster.local'), {
      for: "198.18.0.7:41234",
      host: "reviews.ns.svc.cluster.local",
    });
    assert.deepEqual(parseForwarded('For="[2001:db8::7]:99"; HOST="a.b"'), {
      for: "[2001:db8::7]:99",
      host: "a.b",
    });
    assert.deepEqual(parseForwarded("host=plain"), { host: "plain" });
  });

  it("uses the first element only and ignores separators inside quotes", () => {
    assert.deepEqual(parseForwarded('for="a;b,c";host=first, for=x;host=second'), {
      for: "a;b,c",
      host: "first",
    });
    assert.deepEqual(parseForwarded(["host=one", "host=two"]), { host: "one" });
  });

  it("handles absent, empty and malformed values", () => {
    assert.deepEqual(parseForwarded(undefined), {});
    assert.deepEqual(parseForwarded(""), {});
    assert.deepEqual(parseForwarded("garbage;;=;host="), {});
    assert.deepEqual(parseForwarded('host="esc\\"aped"'), { host: 'esc"aped' });
  });

  it("formats what ztunnel sends and parses back", () => {
    const s = formatForwarded({ for: "198.18.0.7:41234", host: "svc.ns.svc.cluster.local" });
    assert.equal(s, 'for="198.18.0.7:41234";host=svc.ns.svc.cluster.local');
    assert.deepEqual(parseForwarded(s), {
      for: "198.18.0.7:41234",
      host: "svc.ns.svc.cluster.local",
    });
    assert.equal(formatForwarded({ for: "[::1]:5" }), 'for="[::1]:5"');
  });
});

describe("baggage", () => {
  it("parses members, drops properties and empty values", () => {
    const b = parseBaggage(
      "k8s.cluster.name=Kubernetes, k8s.namespace.name=default;prop=1,k8s.deployment.name=,service.name=reviews",
    );
    assert.deepEqual(
      [...b],
      [
        ["k8s.cluster.name", "Kubernetes"],
        ["k8s.namespace.name", "default"],
        ["service.name", "reviews"],
      ],
    );
  });

  it("reads several header values, later keys win, percent-decodes", () => {
    const b = parseBaggage(["a=1,b=x%20y", "a=2,c=%zz"]);
    assert.deepEqual(
      [...b],
      [
        ["a", "2"],
        ["b", "x y"],
        ["c", "%zz"],
      ],
    );
    assert.equal(parseBaggage(undefined).size, 0);
    assert.equal(parseBaggage("no-equals,=novalue").size, 0);
  });

  it("formats in order, omits empty values, encodes what W3C forbids", () => {
    assert.equal(
      formatBaggage([
        ["k8s.cluster.name", "Kubernetes"],
        ["k8s.namespace.name", ""],
        ["service.version", undefined],
        ["service.name", "a b,c;d"],
      ]),
      "k8s.cluster.name=Kubernetes,service.name=a%20b%2Cc%3Bd",
    );
    assert.equal(
      formatBaggage({ "cloud.region": "eu-west-1", x: "é" }),
      "cloud.region=eu-west-1,x=%C3%A9",
    );
    const round = parseBaggage(formatBaggage({ a: "a b,c;d=e" }));
    assert.equal(round.get("a"), "a b,c;d=e");
  });
});

describe("traceparent", () => {
  it("makes a random W3C traceparent of 55 characters", () => {
    const a = newTraceparent();
    const b = newTraceparent();
    assert.match(a, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    assert.equal(a.length, 55);
    assert.notEqual(a, b);
  });

  it("keeps only values of exactly 55 characters", () => {
    const t = newTraceparent();
    assert.equal(acceptTraceparent(t), t);
    assert.equal(acceptTraceparent([t]), t);
    assert.equal(acceptTraceparent(t + "0"), undefined);
    assert.equal(acceptTraceparent("00-abc"), undefined);
    assert.equal(acceptTraceparent(undefined), undefined);
  });
});
