/**
 * IP addresses the way istiod's conversion handles them (Go `net/netip`): 4 bytes for IPv4, 16
 * for IPv6 (IPv4-mapped stays 16), strict text (no leading zeros, no zones). Parsing and printing
 * are `lib/net`'s; what is specific here is that a prefix keeps its address bits as written
 * (`netip.ParsePrefix(...).Addr()` is not masked), which is what istiod puts on the wire.
 */
import { formatIp as netFormatIp, parseIp as netParseIp } from "../../lib/net/index.ts";

/** The address bytes of `text`, or undefined if it is not an IP address. */
export function parseIp(text: string): Uint8Array | undefined {
  return netParseIp(text)?.bytes;
}

/** The canonical text of 4 or 16 address bytes (RFC 5952 for IPv6). */
export function formatIp(bytes: Uint8Array): string {
  return netFormatIp(bytes) ?? `<invalid ${bytes.length}-byte address>`;
}

export interface AddressPrefix {
  /** The address as written (host bits not cleared). */
  address: Uint8Array;
  prefixLength: number;
}

/** `a.b.c.d/n` or `x::y/n`; a bare address is a full-length prefix. */
export function parseCidr(text: string): AddressPrefix | undefined {
  const slash = text.indexOf("/");
  const address = parseIp(slash === -1 ? text : text.slice(0, slash));
  if (address === undefined) return undefined;
  if (slash === -1) return { address, prefixLength: address.length * 8 };
  const lenText = text.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(lenText)) return undefined;
  const prefixLength = Number(lenText);
  if (prefixLength > address.length * 8) return undefined;
  return { address, prefixLength };
}
