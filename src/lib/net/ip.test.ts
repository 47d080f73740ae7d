import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  canonicalIp,
  cidrContains,
  cidrFromBytes,
  formatCidr,
  formatIp,
  formatSocketAddr,
  isLoopback,
  parseCidr,
  parseIp,
  parseSocketAddr,
} from "./ip.ts";

describe("ip text", () => {
  const canonical: [string, string | undefined][] = [
    ["10.0.0.1", "10.0.0.1"],
    ["198.18.0.255", "198.18.0.255"],
    ["010.0.0.1", undefined], // leading zero: ambiguous (octal in some parsers)
    ["10.0.0", undefined],
    ["10.0.0.256", undefined],
    ["::", "::"],
    ["::1", "::1"],
    ["FD00:0:0:0:0:0:0:1", "fd00::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // first of two equal runs
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // a single zero group is not compressed
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"], // the longest run wins
    ["::ffff:198.18.0.1", "198.18.0.1"], // IPv4-mapped becomes IPv4 (socket view)
    ["fe80::1%eth0", undefined],
    ["1::2::3", undefined],
    ["1:2:3:4:5:6:7:8:9", undefined],
    ["1:2:3:4:5:6:7::8", undefined],
    ["hello", undefined],
  ];
  for (const [input, want] of canonical) {
    it(`canonicalIp(${JSON.stringify(input)}) = ${String(want)}`, () => {
      assert.equal(canonicalIp(input), want);
    });
  }

  it("formats raw bytes and keeps IPv4-mapped addresses from xDS as such", () => {
    assert.equal(formatIp(new Uint8Array([198, 18, 0, 7])), "198.18.0.7");
    const mapped = parseIp("::ffff:1.2.3.4")!;
    assert.equal(formatIp(mapped.bytes), "::ffff:1.2.3.4");
    assert.equal(formatIp(new Uint8Array(5)), undefined);
  });

  it("knows loopback", () => {
    assert.ok(isLoopback("127.0.0.1"));
    assert.ok(isLoopback("127.9.9.9"));
    assert.ok(isLoopback("::1"));
    assert.ok(isLoopback("::ffff:127.0.0.1"));
    assert.ok(!isLoopback("198.18.0.1"));
    assert.ok(!isLoopback("::2"));
  });
});

describe("cidr", () => {
  it("contains addresses inside the prefix only, per family", () => {
    const net = parseCidr("198.18.0.0/15")!;
    assert.ok(cidrContains(net, parseIp("198.19.255.255")!));
    assert.ok(!cidrContains(net, parseIp("198.20.0.0")!));
    assert.ok(!cidrContains(net, parseIp("::ffff:198.18.0.1")!), "v6 never matches a v4 prefix");
    const odd = parseCidr("10.0.0.0/9")!;
    assert.ok(cidrContains(odd, parseIp("10.127.0.1")!));
    assert.ok(!cidrContains(odd, parseIp("10.128.0.1")!));
    const all = parseCidr("0.0.0.0/0")!;
    assert.ok(cidrContains(all, parseIp("203.0.113.9")!));
    const v6 = parseCidr("fd00::/8")!;
    assert.ok(cidrContains(v6, parseIp("fd12::1")!));
    assert.ok(!cidrContains(v6, parseIp("fe80::1")!));
  });

  it("masks host bits and rejects bad lengths with a reason", () => {
    assert.equal(formatCidr(parseCidr("10.1.2.3/8")!), "10.0.0.0/8");
    assert.equal(formatCidr(parseCidr("10.1.2.3")!), "10.1.2.3/32");
    assert.equal(parseCidr("10.0.0.0/33"), undefined);
    const bad = cidrFromBytes(new Uint8Array(4), 33);
    assert.deepEqual(bad, {
      ok: false,
      reason: "prefix length 33 is invalid for a 32-bit address (0-32)",
    });
    const short = cidrFromBytes(new Uint8Array(3), 8);
    assert.deepEqual(short, { ok: false, reason: "address has 3 bytes (expected 4 or 16)" });
  });
});

describe("socket addresses", () => {
  it("formats IPv6 in brackets", () => {
    assert.equal(formatSocketAddr("fd00::1", 80), "[fd00::1]:80");
    assert.equal(formatSocketAddr("198.18.0.1", 80), "198.18.0.1:80");
  });
  it("parses ip:port and [v6]:port, rejects the rest", () => {
    assert.deepEqual(parseSocketAddr("198.18.0.1:8080"), { ip: "198.18.0.1", port: 8080 });
    assert.deepEqual(parseSocketAddr("[FD00::1]:80"), { ip: "fd00::1", port: 80 });
    assert.equal(parseSocketAddr("fd00::1:80"), undefined);
    assert.equal(parseSocketAddr("example.com:80"), undefined);
    assert.equal(parseSocketAddr("198.18.0.1:65536"), undefined);
    assert.equal(parseSocketAddr("198.18.0.1:"), undefined);
    assert.equal(parseSocketAddr("[198.18.0.1]:80"), undefined);
  });
});
