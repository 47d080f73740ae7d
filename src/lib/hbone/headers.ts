/**
 * The request headers ztunnel puts on every CONNECT (INTEROP §1.4) and the server reads back:
 * `forwarded` (RFC 7239; only `for=` and `host=` matter), `baggage` (W3C, peer workload metadata
 * for telemetry) and `traceparent` (W3C, random per connection, reused as the log id).
 */
import { randomFillSync } from "node:crypto";

export interface Forwarded {
  /** The original client `ip:port` (IPv6 bracketed), if given. */
  readonly for?: string;
  /** The intended destination service's host name, if given. */
  readonly host?: string;
}

/**
 * Splits `s` at each `sep` that is outside a quoted-string. Quoted-strings may contain escaped
 * characters (`\"`); the pieces keep their quotes.
 */
function splitOutsideQuotes(s: string, sep: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === "\\") i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
    } else if (c === sep) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out;
}

function unquote(v: string): string {
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
    return v.slice(1, -1).replace(/\\(.)/g, "$1");
  }
  return v;
}

/**
 * Reads `for` and `host` from the first element of a `forwarded` header (the hop closest to the
 * original client). Values may be tokens or quoted-strings; unknown parameters are ignored.
 */
export function parseForwarded(value: string | readonly string[] | undefined): Forwarded {
  if (value === undefined) return {};
  const joined = typeof value === "string" ? value : value.join(",");
  const first = splitOutsideQuotes(joined, ",")[0] ?? "";
  let forValue: string | undefined;
  let host: string | undefined;
  for (const pair of splitOutsideQuotes(first, ";")) {
    const eq = pair.indexOf("=");
    if (eq === -1) continue;
    const key = pair.slice(0, eq).trim().toLowerCase();
    const v = unquote(pair.slice(eq + 1).trim());
    if (v === "") continue;
    if (key === "for") forValue ??= v;
    else if (key === "host") host ??= v;
  }
  return {
    ...(forValue !== undefined ? { for: forValue } : {}),
    ...(host !== undefined ? { host } : {}),
  };
}

const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function quoteIfNeeded(v: string): string {
  return token.test(v) ? v : `"${v.replace(/(["\\])/g, "\\$1")}"`;
}

/** `for="<ip:port>"` plus `;host=<hostname>` when the destination service is known. */
export function formatForwarded(f: Forwarded): string {
  const parts: string[] = [];
  // ztunnel always quotes `for`: an address with a port (and IPv6 brackets) is no token.
  if (f.for !== undefined) parts.push(`for="${f.for.replace(/(["\\])/g, "\\$1")}"`);
  if (f.host !== undefined) parts.push(`host=${quoteIfNeeded(f.host)}`);
  return parts.join(";");
}

/**
 * Parses W3C `baggage` members into key → value. Member properties (after `;`) are dropped,
 * members without a value are skipped, values are percent-decoded when that is valid. Several
 * header values are read in order; a later key wins, as in ztunnel.
 */
export function parseBaggage(value: string | readonly string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (value === undefined) return out;
  const values = typeof value === "string" ? [value] : value;
  for (const header of values) {
    for (const member of header.split(",")) {
      const eq = member.indexOf("=");
      if (eq === -1) continue;
      const key = member.slice(0, eq).trim();
      const semi = member.indexOf(";", eq + 1);
      const raw = (semi === -1 ? member.slice(eq + 1) : member.slice(eq + 1, semi)).trim();
      if (key === "" || raw === "") continue;
      let v = raw;
      if (raw.includes("%")) {
        try {
          v = decodeURIComponent(raw);
        } catch {
          // Not valid percent-encoding: keep the raw text rather than drop the member.
        }
      }
      out.set(key, v);
    }
  }
  return out;
}

/**
 * Formats baggage members as `k=v,k=v`, omitting empty values (as ztunnel does). Values are
 * percent-encoded where W3C baggage does not allow the raw character.
 */
export function formatBaggage(
  entries: Iterable<readonly [string, string | undefined]> | Readonly<Record<string, string>>,
): string {
  const list: Iterable<readonly [string, string | undefined]> =
    Symbol.iterator in entries ? entries : Object.entries(entries);
  const parts: string[] = [];
  for (const [k, v] of list) {
    if (v === undefined || v === "") continue;
    parts.push(
      `${k}=${v.replace(/[^\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]/gu, encodeURIComponent)}`,
    );
  }
  return parts.join(",");
}

/**
 * Random bytes for trace ids, drawn from a pool refilled 4 KiB at a time: one traceparent per
 * tunnel, and a `randomBytes` call per tunnel showed up at several percent of a proxy's CPU.
 */
const randomPool = Buffer.alloc(4096);
let randomOffset = randomPool.length;

function isZero(b: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * A fresh W3C `traceparent`: version 00, random 16-byte trace id and 8-byte parent id, flags 00
 * (not sampled) — 55 characters. ztunnel makes one per connection.
 */
export function newTraceparent(): string {
  if (randomOffset + 24 > randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  const o = randomOffset;
  randomOffset += 24;
  // An all-zero id is invalid in W3C trace context; force a bit rather than loop.
  if (isZero(randomPool, o, o + 16)) randomPool[o + 15] = 1;
  if (isZero(randomPool, o + 16, o + 24)) randomPool[o + 23] = 1;
  return `00-${randomPool.toString("hex", o, o + 16)}-${randomPool.toString("hex", o + 16, o + 24)}-00`;
}

/** The `traceparent` to keep: ztunnel ignores any value that is not exactly 55 characters. */
export function acceptTraceparent(
  value: string | readonly string[] | undefined,
): string | undefined {
  const v = typeof value === "string" ? value : value?.[0];
  return v !== undefined && v.length === 55 ? v : undefined;
}
