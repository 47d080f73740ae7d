import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConnectRequest } from "./request.ts";

describe("parseConnectRequest", () => {
  it("accepts a CONNECT and reads every header ztunnel sends", () => {
    const tp = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-00";
    const r = parseConnectRequest({
      ":method": "CONNECT",
      ":authority": "198.18.0.9:9080",
      forwarded: 'for="198.18.0.7:5555";host=reviews.default.svc.cluster.local',
      baggage: "k8s.namespace.name=default,service.name=productpage",
      traceparent: tp,
      "x-forwarded-network": "net-b",
    });
    assert.ok(r.ok);
    assert.deepEqual(r.value.authority, { kind: "ip", ip: "198.18.0.9", family: 4, port: 9080 });
    assert.equal(r.value.rawAuthority, "198.18.0.9:9080");
    assert.deepEqual(r.value.forwarded, {
      for: "198.18.0.7:5555",
      host: "reviews.default.svc.cluster.local",
    });
    assert.equal(r.value.baggage.get("service.name"), "productpage");
    assert.equal(r.value.traceparent, tp);
    assert.equal(r.value.forwardedNetwork, "net-b");
  });

  it("answers 400 to other methods and to unparseable authorities", () => {
    const get = parseConnectRequest({ ":method": "GET", ":authority": "a:1", ":path": "/" });
    assert.deepEqual(get, {
      ok: false,
      reason: { status: 400, reason: "method GET is not CONNECT" },
    });
    const bad = parseConnectRequest({ ":method": "CONNECT", ":authority": "nope" });
    assert.ok(!bad.ok);
    assert.equal(bad.reason.status, 400);
    assert.match(bad.reason.reason, /nope/);
    const none = parseConnectRequest({ ":method": "CONNECT" });
    assert.ok(!none.ok);
  });

  it("drops a traceparent of the wrong length", () => {
    const r = parseConnectRequest({
      ":method": "CONNECT",
      ":authority": "[::1]:80",
      traceparent: "00-1-2-00",
    });
    assert.ok(r.ok);
    assert.equal(r.value.traceparent, undefined);
    assert.equal(r.value.baggage.size, 0);
    assert.deepEqual(r.value.forwarded, {});
  });
});
