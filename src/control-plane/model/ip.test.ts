import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatIp, parseCidr, parseIp } from "./ip.ts";

describe("ip (Go netip semantics)", () => {
  it("IPv4 is 4 bytes, IPv6 and IPv4-mapped IPv6 are 16", () => {
    assert.deepEqual(parseIp("198.18.0.5"), new Uint8Array([198, 18, 0, 5]));
    assert.equal(parseIp("2001:db8::1")?.length, 16);
    const mapped = parseIp("::ffff:198.18.0.1");
    assert.equal(mapped?.length, 16);
    assert.equal(formatIp(mapped ?? new Uint8Array()), "::ffff:198.18.0.1");
  });
  it("rejects leading zeros and zones", () => {
    assert.equal(parseIp("01.2.3.4"), undefined);
    assert.equal(parseIp("fe80::1%eth0"), undefined);
    assert.equal(parseIp("198.18.0.1/32"), undefined);
  });
  it("prefixes keep the address bits as written, like istiod", () => {
    assert.deepEqual(parseCidr("198.18.5.5/24"), {
      address: new Uint8Array([198, 18, 5, 5]),
      prefixLength: 24,
    });
    assert.equal(parseCidr("198.18.0.1")?.prefixLength, 32);
    assert.equal(parseCidr("2001:db8::/32")?.prefixLength, 32);
    assert.equal(parseCidr("2001:db8::1")?.prefixLength, 128);
    for (const bad of ["198.18.0.0/33", "198.18.0.0/", "198.18.0.0/x", "nope/8"])
      assert.equal(parseCidr(bad), undefined, bad);
  });
});
