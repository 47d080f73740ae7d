import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { connectFromPod, parseProxyBindAddress } from "./listeners.ts";

describe("parseProxyBindAddress (ISTIO_META_DNS_PROXY_ADDR)", () => {
  it("takes localhost, IPv4 and bracketed IPv6", () => {
    assert.deepEqual(parseProxyBindAddress("localhost:15053"), {
      ok: true,
      value: { kind: "localhost", port: 15053 },
    });
    assert.deepEqual(parseProxyBindAddress("0.0.0.0:53"), {
      ok: true,
      value: { kind: "ip", address: "0.0.0.0", port: 53 },
    });
    assert.deepEqual(parseProxyBindAddress("[::1]:15053"), {
      ok: true,
      value: { kind: "ip", address: "::1", port: 15053 },
    });
  });

  it("says what is wrong with anything else", () => {
    const reason = (s: string) => {
      const r = parseProxyBindAddress(s);
      assert.equal(r.ok, false);
      return r.ok ? "" : r.reason;
    };
    assert.match(reason("15053"), /is not HOST:PORT/);
    assert.match(reason("localhost:0"), /is not HOST:PORT/);
    assert.match(reason("localhost:70000"), /is not HOST:PORT/);
    assert.match(reason("dns.example:53"), /must be "localhost" or an IP address/);
    assert.match(reason("::1:53"), /is not HOST:PORT/);
  });
});

describe("connectFromPod", () => {
  it("refuses host names: they would resolve in ztunnel's namespace", () => {
    assert.throws(() => connectFromPod(0, "reviews.default.svc", 9080), {
      code: "ERR_INVALID_ARG",
      message: /needs an IP address/,
    });
  });
});
