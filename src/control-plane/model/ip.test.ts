import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatIp, parseCidr, parseIp } from "./ip.ts";

describe("parseIp", () => {
  it("reads IPv4 as 4 bytes", () => {
    assert.deepEqual(parseIp("198.18.0.5"), new Uint8Array([198, 18, 0, 5]));
  });
  it("reads IPv6 forms as 16 bytes", () => {
    const v6 = parseIp("2001:db8::1");
    assert.equal(v6?.length, 16);
    assert.equal(formatIp(v6!), "2001:db8::1");
    assert.equal(formatIp(parseIp("::")!), "::");
    assert.equal(formatIp(parseIp("::1")!), "::1");
    assert.equal(formatIp(parseIp("1::")!), "1::");
    assert.equal(formatIp(parseIp("2001:DB8:0:0:1:0:0:1")!), "2001:db8::1:0:0:1");
    assert.equal(formatIp(parseIp("2001:db8:0:1:1:1:1:1")!), "2001:db8:0:1:1:1:1:1");
  });
  it("keeps IPv4-mapped IPv6 as 16 bytes, like Go netip", () => {
    const b = parseIp("::ffff:198.18.0.1");
    assert.equal(b?.length, 16);
    assert.equal(formatIp(b!), "::ffff:198.18.0.1");
  });
  it("rejects what Go rejects", () => {
    for (const bad of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "01.2.3.4",
      "1.2.3.-4",
      "fe80::1%eth0",
      "1:2:3:4:5:6:7:8:9",
      "::1::",
      "gggg::",
      "1.2.3.4/32",
      "a.b.c.d",
    ]) {
      assert.equal(parseIp(bad), undefined, bad);
    }
  });
});

describe("parseCidr", () => {
  it("reads prefixes and bare addresses", () => {
    assert.deepEqual(parseCidr("198.18.0.0/15"), {
      address: new Uint8Array([198, 18, 0, 0]),
      prefixLength: 15,
    });
    assert.equal(parseCidr("198.18.0.1")?.prefixLength, 32);
    assert.equal(parseCidr("2001:db8::/32")?.prefixLength, 32);
    assert.equal(parseCidr("2001:db8::1")?.prefixLength, 128);
  });
  it("rejects bad prefixes", () => {
    assert.equal(parseCidr("198.18.0.0/33"), undefined);
    assert.equal(parseCidr("198.18.0.0/"), undefined);
    assert.equal(parseCidr("198.18.0.0/x"), undefined);
    assert.equal(parseCidr("nope/8"), undefined);
  });
});
