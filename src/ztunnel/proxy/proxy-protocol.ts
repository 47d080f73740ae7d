/**
 * The PROXY protocol v2 header ztunnel writes first on the last hop to an application tunnel
 * (INTEROP §1.8, "sandwich" waypoints): command PROXY over a stream, the original client as
 * source, the HBONE target as destination, and TLV 0xD0 carrying the client's SPIFFE identity.
 * Pure; the inbound proxy writes the bytes before any tunnelled data.
 */
import { formatIdentity, type Identity } from "../../lib/identity/index.ts";
import { parseIp } from "../../lib/net/index.ts";
import type { SocketAddr } from "./plan/index.ts";

/** The 12-byte signature that starts every v2 header. */
const SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
/** Version 2, command PROXY. */
const VERSION_PROXY = 0x21;
/** AF_INET / AF_INET6 with SOCK_STREAM. */
const TCP4 = 0x11;
const TCP6 = 0x21;

/** TLV type of the peer's SPIFFE identity (ztunnel's `PROXY_PROTOCOL_AUTHORITY_TLV`). */
export const PP2_TYPE_PEER_IDENTITY = 0xd0;

function bytes16(ip: Uint8Array): Uint8Array {
  if (ip.length === 16) return ip;
  // IPv4-mapped IPv6, when the two ends are of different families.
  const b = new Uint8Array(16);
  b[10] = 0xff;
  b[11] = 0xff;
  b.set(ip, 12);
  return b;
}

/**
 * The header for a connection from `source` to `destination`; throws on an address that is not
 * an IP (a caller bug: both come from parsed addresses).
 */
export function encodeProxyHeaderV2(
  source: SocketAddr,
  destination: SocketAddr,
  identity: Identity | undefined,
): Buffer {
  const src = parseIp(source.ip);
  const dst = parseIp(destination.ip);
  if (src === undefined || dst === undefined) {
    throw new Error(`PROXY header needs IP addresses, got ${source.ip} and ${destination.ip}`);
  }
  const v4 = src.family === 4 && dst.family === 4;
  const addrLen = v4 ? 12 : 36;
  const tlv = identity === undefined ? undefined : Buffer.from(formatIdentity(identity), "utf8");
  const tlvLen = tlv === undefined ? 0 : 3 + tlv.length;
  const out = Buffer.allocUnsafe(16 + addrLen + tlvLen);
  SIGNATURE.copy(out, 0);
  out[12] = VERSION_PROXY;
  out[13] = v4 ? TCP4 : TCP6;
  out.writeUInt16BE(addrLen + tlvLen, 14);
  let o = 16;
  if (v4) {
    out.set(src.bytes, o);
    out.set(dst.bytes, o + 4);
    o += 8;
  } else {
    out.set(bytes16(src.bytes), o);
    out.set(bytes16(dst.bytes), o + 16);
    o += 32;
  }
  out.writeUInt16BE(source.port, o);
  out.writeUInt16BE(destination.port, o + 2);
  o += 4;
  if (tlv !== undefined) {
    out[o] = PP2_TYPE_PEER_IDENTITY;
    out.writeUInt16BE(tlv.length, o + 1);
    tlv.copy(out, o + 3);
  }
  return out;
}
