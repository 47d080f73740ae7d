/**
 * Why a client stream ended, in ztunnel's terms (`istio_xds_connection_terminations_total`
 * `reason` label), and whether the backoff restarts from its initial delay:
 * - `ConnectionError`: no stream was established (server unreachable, TLS refused): back off.
 * - `Reconnect`: an established stream was cut (server restart, GOAWAY, cancelled, deadline):
 *   reconnect promptly.
 * - `Error`: the server ended the stream with an error status (UNAUTHENTICATED, INTERNAL, ...):
 *   back off.
 * - `Complete`: the server ended the stream with OK: reconnect promptly.
 */
import { status as GrpcStatus } from "@grpc/grpc-js";

export type TerminationReason = "ConnectionError" | "Error" | "Reconnect" | "Complete";

/**
 * `established`: the server answered on this stream (headers or a message). grpc-js reports
 * both "could not connect" and "connection dropped" as UNAVAILABLE; this tells them apart.
 */
export function classifyTermination(code: GrpcStatus, established: boolean): TerminationReason {
  if (code === GrpcStatus.OK) return "Complete";
  if (code === GrpcStatus.UNAVAILABLE) return established ? "Reconnect" : "ConnectionError";
  if (
    code === GrpcStatus.UNKNOWN ||
    code === GrpcStatus.CANCELLED ||
    code === GrpcStatus.DEADLINE_EXCEEDED
  ) {
    return "Reconnect";
  }
  return "Error";
}

/** Whether the next attempt starts from the initial backoff. */
export function resetsBackoff(reason: TerminationReason): boolean {
  return reason === "Reconnect" || reason === "Complete";
}
