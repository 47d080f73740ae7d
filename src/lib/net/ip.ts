/**
 * IP addresses and CIDR prefixes as plain values: canonical strings for keys and logs, raw bytes
 * for prefix arithmetic. Shared by the L4 authorization evaluator (source/destination IP matches)
 * and ztunnel's state (workload IPs, service VIPs, CIDR VIPs).
 *
 * Canonical text: IPv4 dotted quad without leading zeros; IPv6 per RFC 5952 (lower case, longest
 * run of two or more zero groups compressed, first run on a tie), IPv4-mapped IPv6 as
 * `::ffff:a.b.c.d`. The same text Rust's `IpAddr` prints, so keys match ztunnel's
 * (`<network>/<ip>`).
 */

import type { IpFamily } from "./native.ts";

export type { IpFamily };

/** A parsed IP address: 4 or 16 bytes. */
export interface IpBytes {
  readonly family: IpFamily;
  readonly bytes: Uint8Array;
}

/** A CIDR prefix. Host bits past `prefixLength` are zero. */
export interface Cidr {
  readonly family: IpFamily;
  readonly bytes: Uint8Array;
  readonly prefixLength: number;
}

function parseIpv4Into(s: string, out: Uint8Array, offset: number): boolean {
  // Hand-rolled (no split/regex): this runs for every connection's addresses.
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i === s.length ? 46 /* '.' */ : s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part > 3) return false;
      out[offset + part] = value;
      part++;
      value = 0;
      digits = 0;
      continue;
    }
    if (c < 48 || c > 57) return false;
    // No leading zeros (some parsers read them as octal).
    if (digits === 1 && value === 0) return false;
    value = value * 10 + (c - 48);
    digits++;
    if (value > 255) return false;
  }
  return part === 4;
}

function parseIpv6(s: string): Uint8Array | undefined {
  if (s.includes("%")) return undefined; // zone ids have no place in mesh addresses
  const out = new Uint8Array(16);
  let head = s;
  let tail = "";
  const dbl = s.indexOf("::");
  if (dbl !== -1) {
    if (s.indexOf("::", dbl + 1) !== -1) return undefined;
    head = s.slice(0, dbl);
    tail = s.slice(dbl + 2);
  }
  const headParts = head === "" ? [] : head.split(":");
  const tailParts = tail === "" ? [] : tail.split(":");
  // An embedded IPv4 tail counts as two groups; it may only be last.
  const groups: number[] = [];
  const tailGroups: number[] = [];
  const readGroups = (parts: string[], into: number[], isLast: boolean): boolean => {
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] as string;
      if (isLast && i === parts.length - 1 && p.includes(".")) {
        const v4 = new Uint8Array(4);
        if (!parseIpv4Into(p, v4, 0)) return false;
        into.push(((v4[0] as number) << 8) | (v4[1] as number));
        into.push(((v4[2] as number) << 8) | (v4[3] as number));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return false;
      into.push(parseInt(p, 16));
    }
    return true;
  };
  if (dbl === -1) {
    if (!readGroups(headParts, groups, true)) return undefined;
    if (groups.length !== 8) return undefined;
  } else {
    if (!readGroups(headParts, groups, tailParts.length === 0)) return undefined;
    if (!readGroups(tailParts, tailGroups, true)) return undefined;
    // "::" stands for at least one zero group.
    if (groups.length + tailGroups.length > 7) return undefined;
    const zeros = 8 - groups.length - tailGroups.length;
    for (let i = 0; i < zeros; i++) groups.push(0);
    groups.push(...tailGroups);
  }
  for (let i = 0; i < 8; i++) {
    const g = groups[i] as number;
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  }
  return out;
}

/** Parses an IPv4 or IPv6 address (no brackets, no zone, no port). */
export function parseIp(s: string): IpBytes | undefined {
  if (s.includes(":")) {
    const b = parseIpv6(s);
    return b === undefined ? undefined : { family: 6, bytes: b };
  }
  const b = new Uint8Array(4);
  return parseIpv4Into(s, b, 0) ? { family: 4, bytes: b } : undefined;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** Canonical text of 4 or 16 raw bytes; undefined for any other length. */
export function formatIp(bytes: Uint8Array): string | undefined {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) return undefined;
  if (isV4Mapped(bytes)) return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++)
    groups.push(((bytes[i * 2] as number) << 8) | (bytes[i * 2 + 1] as number));
  // Longest run of zero groups (length >= 2); the first one wins a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number) => g.toString(16);
  if (bestStart === -1) return groups.map(hex).join(":");
  const left = groups.slice(0, bestStart).map(hex).join(":");
  const right = groups
    .slice(bestStart + bestLen)
    .map(hex)
    .join(":");
  return `${left}::${right}`;
}

/**
 * The canonical text of an address as seen on a socket: parsed, re-printed, and with an
 * IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a dual-stack listener reports) turned into
 * plain IPv4, like ztunnel's `to_canonical`. Undefined when `s` is not an IP address.
 */
export function canonicalIp(s: string): string | undefined {
  if (!s.includes(":")) {
    // The strict IPv4 parser accepts canonical text only, so the input is already canonical.
    return parseIpv4Into(s, scratch4, 0) ? s : undefined;
  }
  const p = parseIp(s);
  if (p === undefined) return undefined;
  if (p.family === 6 && isV4Mapped(p.bytes)) return formatIp(p.bytes.subarray(12));
  return formatIp(p.bytes);
}

const scratch4 = new Uint8Array(4);

export function ipFamilyOf(ip: string): IpFamily | undefined {
  return parseIp(ip)?.family;
}

/** True for 127.0.0.0/8 and ::1 (and IPv4-mapped loopback). */
export function isLoopback(ip: string): boolean {
  if (!ip.includes(":")) return ip.startsWith("127.") && parseIpv4Into(ip, scratch4, 0);
  const p = parseIp(ip);
  if (p === undefined) return false;
  const b = p.bytes;
  if (isV4Mapped(b)) return b[12] === 127;
  for (let i = 0; i < 15; i++) if (b[i] !== 0) return false;
  return b[15] === 1;
}

/** Copy of `bytes` with every bit past `prefixLength` cleared. */
export function maskBytes(bytes: Uint8Array, prefixLength: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  const full = prefixLength >> 3;
  for (let i = 0; i < full && i < bytes.length; i++) out[i] = bytes[i] as number;
  const rem = prefixLength & 7;
  if (rem !== 0 && full < bytes.length) out[full] = (bytes[full] as number) & (0xff << (8 - rem));
  return out;
}

/**
 * A CIDR from raw address bytes and a prefix length. The reason names what is wrong (for xDS
 * NACKs): wrong byte count, or a prefix longer than the address.
 */
export function cidrFromBytes(
  bytes: Uint8Array,
  prefixLength: number,
): { ok: true; value: Cidr } | { ok: false; reason: string } {
  if (bytes.length !== 4 && bytes.length !== 16) {
    return { ok: false, reason: `address has ${bytes.length} bytes (expected 4 or 16)` };
  }
  const bits = bytes.length * 8;
  if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > bits) {
    return {
      ok: false,
      reason: `prefix length ${prefixLength} is invalid for a ${bits}-bit address (0-${bits})`,
    };
  }
  return {
    ok: true,
    value: {
      family: bytes.length === 4 ? 4 : 6,
      bytes: maskBytes(bytes, prefixLength),
      prefixLength,
    },
  };
}

/** Parses `a.b.c.d/n`, `x::y/n`, or a bare address (a host prefix). */
export function parseCidr(s: string): Cidr | undefined {
  const slash = s.indexOf("/");
  const addr = slash === -1 ? s : s.slice(0, slash);
  const ip = parseIp(addr);
  if (ip === undefined) return undefined;
  let len = ip.bytes.length * 8;
  if (slash !== -1) {
    const t = s.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(t)) return undefined;
    len = Number(t);
  }
  const r = cidrFromBytes(ip.bytes, len);
  return r.ok ? r.value : undefined;
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.bytes)}/${c.prefixLength}`;
}

/** Whether `ip` lies inside `cidr`. Different families never match. */
export function cidrContains(cidr: Cidr, ip: IpBytes): boolean {
  if (cidr.family !== ip.family) return false;
  const full = cidr.prefixLength >> 3;
  for (let i = 0; i < full; i++) if (cidr.bytes[i] !== ip.bytes[i]) return false;
  const rem = cidr.prefixLength & 7;
  if (rem === 0) return true;
  const mask = 0xff << (8 - rem);
  return ((ip.bytes[full] as number) & mask) === (cidr.bytes[full] as number);
}

/** `ip:port`, with IPv6 in brackets: `[fd00::1]:8080`. */
export function formatSocketAddr(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/**
 * Splits `ip:port` / `[v6]:port` into a canonical IP and a port (1-65535). Undefined when the text
 * is not an IP socket address (e.g. a hostname, an unbracketed IPv6 address, a bad port).
 */
export function parseSocketAddr(s: string): { ip: string; port: number } | undefined {
  let host: string;
  let portText: string;
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close === -1 || s[close + 1] !== ":") return undefined;
    host = s.slice(1, close);
    if (!host.includes(":")) return undefined;
    portText = s.slice(close + 2);
  } else {
    const colon = s.lastIndexOf(":");
    if (colon === -1) return undefined;
    host = s.slice(0, colon);
    if (host.includes(":")) return undefined;
    portText = s.slice(colon + 1);
  }
  const port = parsePort(portText);
  if (port === undefined) return undefined;
  const ip = canonicalIp(host);
  return ip === undefined ? undefined : { ip, port };
}

/** A decimal port 0-65535 without sign or leading zeros (other than "0"). */
export function parsePort(s: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(s) || (s.length > 1 && s.startsWith("0"))) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}
