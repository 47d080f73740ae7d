import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseXdsAddress } from "./credentials.ts";

describe("parseXdsAddress", () => {
  it("reads XDS_ADDRESS forms", () => {
    assert.deepEqual(parseXdsAddress("https://istiod.istio-system.svc:15012"), {
      ok: true,
      value: {
        target: "istiod.istio-system.svc:15012",
        host: "istiod.istio-system.svc",
        secure: true,
      },
    });
    assert.deepEqual(parseXdsAddress("http://127.0.0.1:15010/"), {
      ok: true,
      value: { target: "127.0.0.1:15010", host: "127.0.0.1", secure: false },
    });
    assert.deepEqual(parseXdsAddress("[fd00::1]:15012"), {
      ok: true,
      value: { target: "[fd00::1]:15012", host: "fd00::1", secure: true },
    });
  });

  it("says what is wrong with a bad address", () => {
    for (const bad of ["istiod", "https://istiod:0", "host:99999", "ftp://x:1", ""]) {
      const r = parseXdsAddress(bad);
      assert.equal(r.ok, false, bad);
      if (!r.ok)
        assert.match(r.reason, /is not \[https:\/\/\|http:\/\/\]host:port \(check XDS_ADDRESS\)/);
    }
  });
});
