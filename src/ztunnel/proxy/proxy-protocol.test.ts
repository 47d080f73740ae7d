import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseIdentity } from "../../lib/identity/index.ts";
import { encodeProxyHeaderV2, PP2_TYPE_PEER_IDENTITY } from "./proxy-protocol.ts";

const SIG = "0d0a0d0a000d0a515549540a";

describe("encodeProxyHeaderV2", () => {
  it("writes a v2 PROXY header for TCP over IPv4 with the peer identity TLV", () => {
    const id = parseIdentity("spiffe://cluster.local/ns/a/sa/b");
    assert.ok(id.ok);
    const h = encodeProxyHeaderV2(
      { ip: "198.18.0.1", port: 40000 },
      { ip: "198.18.10.5", port: 8080 },
      id.value,
    );
    const tlv = Buffer.from("spiffe://cluster.local/ns/a/sa/b");
    assert.equal(h.subarray(0, 12).toString("hex"), SIG);
    assert.equal(h[12], 0x21, "version 2, command PROXY");
    assert.equal(h[13], 0x11, "AF_INET, STREAM");
    assert.equal(h.readUInt16BE(14), 12 + 3 + tlv.length);
    assert.deepEqual([...h.subarray(16, 20)], [198, 18, 0, 1]);
    assert.deepEqual([...h.subarray(20, 24)], [198, 18, 10, 5]);
    assert.equal(h.readUInt16BE(24), 40000);
    assert.equal(h.readUInt16BE(26), 8080);
    assert.equal(h[28], PP2_TYPE_PEER_IDENTITY);
    assert.equal(h.readUInt16BE(29), tlv.length);
    assert.deepEqual(h.subarray(31), tlv);
    assert.equal(h.length, 16 + 12 + 3 + tlv.length);
  });

  it("uses IPv6 addresses (v4-mapped when the families differ) and no TLV without identity", () => {
    const h = encodeProxyHeaderV2(
      { ip: "198.18.0.1", port: 1 },
      { ip: "2001:db8::1", port: 2 },
      undefined,
    );
    assert.equal(h[13], 0x21, "AF_INET6, STREAM");
    assert.equal(h.readUInt16BE(14), 36);
    assert.equal(h.subarray(16, 32).toString("hex"), "00000000000000000000ffffc6120001");
    assert.equal(h.subarray(32, 48).toString("hex"), "20010db8000000000000000000000001");
    assert.equal(h.readUInt16BE(48), 1);
    assert.equal(h.readUInt16BE(50), 2);
    assert.equal(h.length, 52);
  });

  it("refuses names", () => {
    assert.throws(() =>
      encodeProxyHeaderV2({ ip: "host", port: 1 }, { ip: "198.18.0.1", port: 2 }, undefined),
    );
  });
});
