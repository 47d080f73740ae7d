/**
 * The `:authority` of an HBONE CONNECT: where the tunnel's bytes should go. ztunnel writes an
 * endpoint `ip:port` (IPv6 bracketed) when it already load-balanced, or `hostname:port` through an
 * east-west gateway (INTEROP §1.4). Parsing is strict: anything else is answered with 400.
 */
import { isIPv4, isIPv6 } from "node:net";
import type { Result } from "../errors.ts";

export type Authority =
  | { readonly kind: "ip"; readonly ip: string; readonly family: 4 | 6; readonly port: number }
  | { readonly kind: "hostname"; readonly hostname: string; readonly port: number };

function parsePort(s: string): number | undefined {
  if (s.length === 0 || s.length > 5) return undefined;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return undefined;
    n = n * 10 + c;
  }
  // Port 0 cannot be connected to; refusing it here gives the client a clear 400.
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens. */
function isHostname(h: string): boolean {
  if (h.length === 0 || h.length > 253) return false;
  const labels = (h.endsWith(".") ? h.slice(0, -1) : h).split(".");
  for (const label of labels) {
    if (label.length === 0 || label.length > 63) return false;
    if (!/^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$/.test(label)) return false;
  }
  // An all-numeric last label would make "01.2.3.4" a host name; it is a malformed address.
  return !/^[0-9]+$/.test(labels[labels.length - 1]!);
}

/** IPv6 in its canonical compressed lower-case form, so equal addresses compare equal. */
export function canonicalIPv6(ip: string): string {
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

/** Parses `a.b.c.d:port`, `[v6]:port` or `hostname:port`. */
export function parseAuthority(value: string): Result<Authority> {
  if (value.startsWith("[")) {
    const close = value.indexOf("]");
    if (close === -1 || value.charCodeAt(close + 1) !== 58 /* : */) {
      return { ok: false, reason: `authority "${value}": expected [ipv6]:port` };
    }
    const ip = value.slice(1, close);
    const port = parsePort(value.slice(close + 2));
    if (!isIPv6(ip) || ip.includes("%")) {
      return { ok: false, reason: `authority "${value}": "${ip}" is not an IPv6 address` };
    }
    if (port === undefined) return { ok: false, reason: `authority "${value}": invalid port` };
    return { ok: true, value: { kind: "ip", ip: canonicalIPv6(ip), family: 6, port } };
  }
  const colon = value.lastIndexOf(":");
  if (colon <= 0) return { ok: false, reason: `authority "${value}": expected host:port` };
  const host = value.slice(0, colon);
  if (host.includes(":")) {
    return { ok: false, reason: `authority "${value}": IPv6 addresses must be in brackets` };
  }
  const port = parsePort(value.slice(colon + 1));
  if (port === undefined) return { ok: false, reason: `authority "${value}": invalid port` };
  if (isIPv4(host)) return { ok: true, value: { kind: "ip", ip: host, family: 4, port } };
  if (isHostname(host)) return { ok: true, value: { kind: "hostname", hostname: host, port } };
  return { ok: false, reason: `authority "${value}": "${host}" is neither an IP nor a host name` };
}

/** Formats `ip:port` (IPv6 bracketed) or `hostname:port`. */
export function formatAuthority(a: Authority): string {
  if (a.kind === "hostname") return `${a.hostname}:${a.port}`;
  return a.family === 6 ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
}

/** `host:port` for an address and port, bracketing IPv6 literals. */
export function socketAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
