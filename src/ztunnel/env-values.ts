/**
 * Parsers for the value kinds ztunnel's environment uses: booleans, integers, Go-style durations
 * (`5s`, `1h30m`, `500ms`; a bare number is seconds, as ztunnel's `duration_str` reads it) and
 * `host:port` listen addresses. Each returns a value or a reason; loadConfig collects the reasons.
 */
import { isIP } from "node:net";
import { fail, ok, type Result } from "../lib/errors.ts";

/** `true`/`false` (any case), `1`/`0`. */
export function parseBool(text: string): Result<boolean> {
  const t = text.trim().toLowerCase();
  if (t === "true" || t === "1") return ok(true);
  if (t === "false" || t === "0") return ok(false);
  return fail(`"${text}" is not a boolean (use true or false)`);
}

/** A decimal integer within [min, max]. */
export function parseInteger(text: string, min: number, max: number): Result<number> {
  const t = text.trim();
  if (!/^-?[0-9]+$/.test(t)) return fail(`"${text}" is not an integer`);
  const n = Number(t);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    return fail(`${t} is out of range (${min}..${max})`);
  }
  return ok(n);
}

const unitMs: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * A duration in milliseconds: Go syntax (`1h30m`, `2.5s`, `300ms`, `1d` also accepted), or a bare
 * number of seconds. Negative durations are refused.
 */
export function parseDuration(text: string): Result<number> {
  const t = text.trim();
  if (/^[0-9]+(\.[0-9]+)?$/.test(t)) return ok(Math.round(Number(t) * 1000));
  const part = /([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h|d)/y;
  let total = 0;
  let at = 0;
  while (at < t.length) {
    part.lastIndex = at;
    const m = part.exec(t);
    if (m === null) break;
    total += Number(m[1]) * unitMs[m[2]!]!;
    at = part.lastIndex;
  }
  if (t === "" || at !== t.length) {
    return fail(`"${text}" is not a duration (e.g. 5s, 1m30s, 500ms, 24h)`);
  }
  return ok(Math.round(total));
}

export interface ListenAddress {
  /** An IP literal (`0.0.0.0`, `::`, `127.0.0.1`) or `localhost`. */
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
}

/** `host:port`, `[v6]:port` or `:port` (all IPv4 interfaces). */
export function parseListenAddress(text: string): Result<ListenAddress> {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):([0-9]{1,5})$/.exec(text.trim());
  const port = Number(m?.[3]);
  if (m === null || !(port >= 0 && port <= 65535)) {
    return fail(`"${text}" is not HOST:PORT (e.g. 127.0.0.1:15000, [::]:15020, :15021)`);
  }
  const host = m[1] ?? (m[2] === "" ? "0.0.0.0" : m[2]!);
  if (host !== "localhost" && isIP(host) === 0) {
    return fail(`"${text}": the host must be an IP address or localhost`);
  }
  if (m[1] === undefined && isIP(host) === 6) {
    return fail(`"${text}": write IPv6 addresses in brackets, e.g. [::]:15020`);
  }
  return ok({ host, port });
}

/** `127.0.0.1:15000`, `[::]:15020`. */
export function formatListenAddress(a: ListenAddress): string {
  return isIP(a.host) === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
