/**
 * What the per-pod handlers (outbound, inbound HBONE, inbound plaintext) share: the process-wide
 * inputs and the pod's own pieces. Built once per pod by WorkloadProxy; cheap to replicate (no
 * per-connection state lives here).
 */
import type { Socket } from "node:net";
import { AmbientError, errnoCode } from "../../lib/errors.ts";
import type { HboneClient } from "../../lib/hbone/index.ts";
import { isHboneError } from "../../lib/hbone/index.ts";
import { canonicalIp } from "../../lib/net/index.ts";
import type { ResponseFlag, TrafficMetrics } from "../telemetry/index.ts";
import type { ActiveConnections } from "./active-connections.ts";
import type { ConnectionTracker } from "./connection-tracker.ts";
import type { ProxyInputs } from "./inputs.ts";
import type { LocalWorkload } from "./local-workload.ts";
import type { Rng, SocketAddr } from "./plan/index.ts";
import type { PodSockets } from "./pod-sockets.ts";
import type { WorkloadDns } from "./workload-dns.ts";

export interface ProxyContext {
  readonly inputs: ProxyInputs;
  readonly metrics: TrafficMetrics;
  readonly local: LocalWorkload;
  readonly sockets: PodSockets;
  readonly client: HboneClient;
  readonly tracker: ConnectionTracker;
  readonly active: ActiveConnections;
  readonly workloadDns: WorkloadDns;
  readonly rng: Rng;
  /** Whether the capture listeners have IP_TRANSPARENT (so connects may spoof the client). */
  readonly transparent: () => boolean;
  /** Aborted when the proxy stops. */
  readonly stopped: AbortSignal;
}

/** The peer of an accepted socket, with a canonical IP. */
export function peerOf(socket: Socket): SocketAddr {
  const raw = socket.remoteAddress ?? "";
  return { ip: canonicalIp(raw) ?? raw, port: socket.remotePort ?? 0 };
}

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The response flag a failed upstream leg ends with (INTEROP §6.1): a refused CONNECT's 401 is a
 * policy denial; TLS, identity and HTTP/2 failures have their own flags; a TCP connect timeout on
 * HBONE is flagged NETWORK_POLICY (something likely blocks port 15008); the rest is CONNECT.
 */
export function responseFlagFor(err: unknown): ResponseFlag {
  if (isHboneError(err)) {
    switch (err.code) {
      case "HBONE_STATUS":
        return err.status === 401 ? "DENY" : "CONNECT";
      case "HBONE_CONNECT_TIMEOUT":
        return "NETWORK_POLICY";
      case "HBONE_TLS_FAILED":
        return "TLS_FAILURE";
      case "HBONE_IDENTITY_MISMATCH":
      case "HBONE_CERTIFICATE":
        return "IDENTITY_ERROR";
      case "HBONE_ALPN":
        return "H2_HANDSHAKE_FAILURE";
      case "HBONE_ABORTED":
      case "HBONE_CLOSED":
        return "-";
      case "HBONE_CONNECT_FAILED":
      case "HBONE_STREAM_FAILED":
        return "CONNECT";
    }
  }
  if (err instanceof AmbientError && err.code === "ECONNABORTED") return "-";
  return errnoCode(err) === "EPROXYSTOPPED" ? "-" : "CONNECT";
}

/** Ends an accepted client socket after a failure: a reset, as ztunnel's dropped stream does. */
export function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
