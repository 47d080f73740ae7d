import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatAuthority, parseAuthority, socketAddress } from "./authority.ts";

describe("parseAuthority", () => {
  it("parses IPv4, bracketed IPv6 and host names", () => {
    assert.deepEqual(parseAuthority("10.1.2.3:8080"), {
      ok: true,
      value: { kind: "ip", ip: "10.1.2.3", family: 4, port: 8080 },
    });
    assert.deepEqual(parseAuthority("[2001:DB8:0:0::1]:443"), {
      ok: true,
      value: { kind: "ip", ip: "2001:db8::1", family: 6, port: 443 },
    });
    assert.deepEqual(parseAuthority("[::ffff:198.18.0.1]:80"), {
      ok: true,
      value: { kind: "ip", ip: "::ffff:c612:1", family: 6, port: 80 },
    });
    assert.deepEqual(parseAuthority("reviews.bookinfo.svc.cluster.local:9080"), {
      ok: true,
      value: { kind: "hostname", hostname: "reviews.bookinfo.svc.cluster.local", port: 9080 },
    });
    assert.deepEqual(parseAuthority("localhost:65535"), {
      ok: true,
      value: { kind: "hostname", hostname: "localhost", port: 65535 },
    });
  });

  it("rejects anything else with a reason naming the input", () => {
    for (const bad of [
      "",
      "10.1.2.3",
      "10.1.2.3:",
      "10.1.2.3:0",
      "10.1.2.3:65536",
      "10.1.2.3:80a",
      "10.1.2.3:+80",
      ":80",
      "::1:80",
      "[::1]",
      "[::1]80",
      "[::1]:",
      "[not-ip]:80",
      "[fe80::1%eth0]:80",
      "[1.2.3.4]:80",
      "01.2.3.4:80",
      "1.2.3.256:80",
      "host name:80",
      "-bad.example:80",
      "a..b:80",
      "ex ample.com:80",
      "exa/mple:80",
      `${"a".repeat(64)}.com:80`,
      "http://x:80",
    ]) {
      const r = parseAuthority(bad);
      assert.equal(r.ok, false, `accepted ${JSON.stringify(bad)}`);
      if (!r.ok) assert.match(r.reason, /authority/);
    }
  });

  it("formats back to the wire form", () => {
    for (const s of ["10.1.2.3:8080", "[2001:db8::1]:443", "svc.ns.svc.cluster.local:80"]) {
      const r = parseAuthority(s);
      assert.ok(r.ok);
      assert.equal(formatAuthority(r.value), s);
    }
    assert.equal(socketAddress("::1", 15008), "[::1]:15008");
    assert.equal(socketAddress("198.18.0.1", 15008), "198.18.0.1:15008");
  });
});
