/**
 * Turns the headers of an incoming HBONE stream into a typed CONNECT request, or the 400 that
 * answers it (INTEROP §1.5). Pure: the server calls it before any policy or I/O.
 */
import type { IncomingHttpHeaders } from "node:http2";
import type { Result } from "../errors.ts";
import { parseAuthority, type Authority } from "./authority.ts";
import { acceptTraceparent, parseBaggage, parseForwarded, type Forwarded } from "./headers.ts";

export interface ConnectRequest {
  /** Where the client wants its bytes to go. */
  readonly authority: Authority;
  /** `:authority` exactly as received. */
  readonly rawAuthority: string;
  /** `for=` (original client address) and `host=` (intended service) of `forwarded`. */
  readonly forwarded: Forwarded;
  /** Members of `baggage`: the peer workload's metadata for telemetry. */
  readonly baggage: ReadonlyMap<string, string>;
  /** The client's `traceparent`, when it is exactly 55 characters. */
  readonly traceparent: string | undefined;
  /** `x-forwarded-network` (inner CONNECT of double HBONE: the request came through a gateway). */
  readonly forwardedNetwork: string | undefined;
  /** Every request header as received, for anything else a caller wants to read. */
  readonly headers: IncomingHttpHeaders;
}

export interface BadRequest {
  readonly status: 400;
  readonly reason: string;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export function parseConnectRequest(
  headers: IncomingHttpHeaders,
): Result<ConnectRequest, BadRequest> {
  const method = first(headers[":method"]);
  if (method !== "CONNECT") {
    return {
      ok: false,
      reason: { status: 400, reason: `method ${method ?? "(none)"} is not CONNECT` },
    };
  }
  const rawAuthority = first(headers[":authority"]);
  if (rawAuthority === undefined || rawAuthority === "") {
    return { ok: false, reason: { status: 400, reason: "CONNECT without :authority" } };
  }
  const authority = parseAuthority(rawAuthority);
  if (!authority.ok) return { ok: false, reason: { status: 400, reason: authority.reason } };
  return {
    ok: true,
    value: {
      authority: authority.value,
      rawAuthority,
      forwarded: parseForwarded(headers["forwarded"]),
      baggage: parseBaggage(headers["baggage"]),
      traceparent: acceptTraceparent(headers["traceparent"]),
      forwardedNetwork: first(headers["x-forwarded-network"]),
      headers,
    },
  };
}
