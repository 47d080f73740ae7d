/**
 * Opens one HBONE client connection: TCP (through an injectable dialer), mutual TLS with the
 * source workload's certificate — no SNI, no session resumption, ALPN `h2`, the server chain
 * verified against the roots but no host-name check — then the server's SPIFFE identity checked
 * against the expected ones, then an HTTP/2 session with HBONE's settings and keepalive.
 */
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import { formatIdentity, type Identity, type WorkloadCertificate } from "../identity/index.ts";
import type { Logger } from "../log/index.ts";
import { HboneError } from "./errors.ts";
import { startKeepalive } from "./keepalive.ts";
import { clientSessionOptions, type ClientTuning } from "./settings.ts";
import { describeIdentities, peerIdentities, type PerCertificate } from "./tls.ts";

export interface DialTarget {
  /** Destination IP (never a name: in-pod sockets cannot resolve names). */
  readonly ip: string;
  readonly port: number;
  /** Local address to connect from, when the pool key has one. */
  readonly sourceIp: string | undefined;
}

/**
 * Creates the TCP socket of an HBONE connection, connecting or connected. ztunnel plugs in one
 * that creates the socket inside the source pod's network namespace with SO_MARK 1337.
 */
export type Dialer = (target: DialTarget) => net.Socket | Promise<net.Socket>;

/** `net.connect` with TCP_NODELAY and TCP keepalive (ztunnel: idle 180 s). */
export function defaultDialer(keepaliveMs = 180_000): Dialer {
  return (t) =>
    net.connect({
      host: t.ip,
      port: t.port,
      ...(t.sourceIp !== undefined ? { localAddress: t.sourceIp } : {}),
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: keepaliveMs,
    });
}

export interface OpenConnectionParams {
  /** `ip:port` of the peer's HBONE listener, for messages and the session's default authority. */
  readonly destination: string;
  readonly target: DialTarget;
  readonly certificate: WorkloadCertificate;
  /** Identities the server may present; any one of them is accepted. */
  readonly expected: readonly Identity[];
  readonly contexts: PerCertificate<tls.SecureContext>;
  readonly dial: Dialer;
  readonly connectTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  readonly tuning: ClientTuning;
  readonly log: Logger;
}

export interface HboneConnection {
  readonly session: http2.ClientHttp2Session;
  /** The identity the server presented (one of the expected). */
  readonly peerIdentity: Identity;
  /**
   * Whether the server's HTTP/2 SETTINGS arrived. A server that refuses the client after the TLS
   * handshake (TLS 1.3 checks the client certificate last) closes without ever sending them.
   */
  readonly serverAnswered: () => boolean;
}

function waitConnected(socket: net.Socket, p: OpenConnectionParams): Promise<void> {
  if (!socket.connecting && !socket.destroyed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      socket.destroy();
      reject(
        new HboneError(
          "HBONE_CONNECT_TIMEOUT",
          `connecting to ${p.destination} timed out after ${p.connectTimeoutMs} ms (maybe a NetworkPolicy is blocking HBONE port ${p.target.port})`,
        ),
      );
    }, p.connectTimeoutMs);
    const onConnect = (): void => {
      cleanup();
      resolve();
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(
        new HboneError(
          "HBONE_CONNECT_FAILED",
          `connecting to ${p.destination} failed: ${err.message}`,
          {
            cause: err,
          },
        ),
      );
    };
    const onClose = (): void => onError(new Error("socket closed"));
    function cleanup(): void {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("error", onError);
      socket.off("close", onClose);
    }
    socket.once("connect", onConnect);
    socket.once("error", onError);
    socket.once("close", onClose);
  });
}

function handshake(socket: net.Socket, p: OpenConnectionParams): Promise<tls.TLSSocket> {
  const secureContext = p.contexts.get(p.certificate);
  return new Promise((resolve, reject) => {
    const t = tls.connect({
      socket,
      secureContext,
      ALPNProtocols: ["h2"],
      // The chain must verify against the roots; the name does not matter, the SPIFFE identity
      // is checked below. No `servername`: HBONE sends no SNI. No `session`: no resumption.
      rejectUnauthorized: true,
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(() => {
      fail(new Error(`TLS handshake not finished after ${p.handshakeTimeoutMs} ms`));
    }, p.handshakeTimeoutMs);
    const onSecure = (): void => {
      cleanup();
      resolve(t);
    };
    const fail = (err: Error): void => {
      cleanup();
      t.destroy();
      reject(
        new HboneError(
          "HBONE_TLS_FAILED",
          `TLS handshake with ${p.destination} failed: ${err.message}`,
          { cause: err },
        ),
      );
    };
    const onClose = (): void => fail(new Error("connection closed during the handshake"));
    function cleanup(): void {
      clearTimeout(timer);
      t.off("secureConnect", onSecure);
      t.off("error", fail);
      t.off("close", onClose);
    }
    t.once("secureConnect", onSecure);
    t.once("error", fail);
    t.once("close", onClose);
  });
}

/** Opens a verified HBONE connection; rejects with an `HboneError` saying what went wrong. */
export async function openConnection(p: OpenConnectionParams): Promise<HboneConnection> {
  let socket: net.Socket;
  try {
    socket = await p.dial(p.target);
  } catch (err) {
    throw new HboneError(
      "HBONE_CONNECT_FAILED",
      `connecting to ${p.destination} failed: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  await waitConnected(socket, p);
  socket.setNoDelay(true);
  const t = await handshake(socket, p);
  if (t.alpnProtocol !== "h2") {
    t.destroy();
    throw new HboneError(
      "HBONE_ALPN",
      `${p.destination} did not negotiate HTTP/2 (ALPN h2; got ${String(t.alpnProtocol)}); is it an HBONE port?`,
    );
  }
  const presented = peerIdentities(t.getPeerX509Certificate());
  const expected = new Set(p.expected.map(formatIdentity));
  const peerIdentity = presented.find((id) => expected.has(formatIdentity(id)));
  if (peerIdentity === undefined) {
    t.destroy();
    throw new HboneError(
      "HBONE_IDENTITY_MISMATCH",
      `${p.destination} presented ${describeIdentities(presented)}, but the expected identities are ${[...expected].join(", ")}`,
    );
  }
  const session = http2.connect(`http://${p.destination}`, {
    ...clientSessionOptions(p.tuning),
    createConnection: () => t,
  });
  let answered = false;
  session.once("remoteSettings", () => {
    answered = true;
  });
  session.setLocalWindowSize(p.tuning.connectionWindowSize);
  startKeepalive(session, {
    intervalMs: p.tuning.keepaliveIntervalMs,
    timeoutMs: p.tuning.keepaliveTimeoutMs,
    onTimeout: () => {
      p.log.debug("HBONE keepalive timed out; closing connection", { peer: p.destination });
      session.destroy();
    },
  });
  return { session, peerIdentity, serverAnswered: () => answered };
}
