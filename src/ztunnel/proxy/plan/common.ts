/**
 * Shared shapes of the outbound and inbound planners.
 */
import { formatSocketAddr } from "../../../lib/net/index.ts";

/** An IP (canonical text) and a port. */
export interface SocketAddr {
  readonly ip: string;
  readonly port: number;
}

/** A uniform random number in [0, 1); injected so tests are deterministic. */
export type Rng = () => number;

/**
 * Response flags for telemetry (`response_flags` label, INTEROP §6.1): `DENY` when a rule or
 * policy refused the connection, `CONNECT` when no destination could be found or reached.
 */
export type ResponseFlag = "DENY" | "CONNECT";

/** Ports a final destination may never be (ztunnel's own listeners): 15001, 15006, 15008. */
export const DEFAULT_ILLEGAL_PORTS: ReadonlySet<number> = new Set([15001, 15006, 15008]);

/** The inbound HBONE port. */
export const HBONE_PORT = 15008;

export function formatAddr(a: SocketAddr): string {
  return formatSocketAddr(a.ip, a.port);
}

/**
 * A small deterministic generator (mulberry32) for tests and benchmarks that need repeatable
 * load-balancing choices. Not for anything security-related.
 */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
