/**
 * The HBONE server (ztunnel inbound on port 15008, and any waypoint): mutual TLS 1.3 with ALPN
 * `h2`, a client certificate that chains to the mesh roots and carries a SPIFFE identity of our
 * trust domain, then HTTP/2 with one CONNECT stream per tunnelled TCP connection (INTEROP §1).
 *
 * For each stream the caller's hook decides — policy check and upstream connect — before the
 * server answers (INTEROP §1.5): a refusal (400/401/503) or an accepted upstream Duplex, after
 * which the server answers 200 and copies bytes both ways until both sides are done.
 *
 * Connections come from `listen()` (a port, or a listening fd ztunnel created in a pod's network
 * namespace) or are handed over one by one with `handleConnection(socket)`.
 */
import * as http2 from "node:http2";
import * as net from "node:net";
import type { Duplex } from "node:stream";
import * as tls from "node:tls";
import { LogOutput, type Logger } from "../log/index.ts";
import {
  copyBidirectional,
  type CopyHandle,
  type CopyOptions,
  type CopyResult,
} from "../net/copy.ts";
import { formatIdentity, type Identity, type WorkloadCertificate } from "../identity/index.ts";
import { startKeepalive } from "./keepalive.ts";
import { parseConnectRequest, type ConnectRequest } from "./request.ts";
import {
  defaultServerTuning,
  serverCopyOptions,
  serverSessionOptions,
  type ServerTuning,
  type TlsPolicy,
} from "./settings.ts";
import { describeIdentities, peerIdentities, PerCertificate, secureContextOptions } from "./tls.ts";

export interface Address {
  readonly ip: string;
  readonly port: number;
}

/** What the hook knows about one CONNECT stream. */
export interface InboundRequest extends ConnectRequest {
  /** The client's identity (SPIFFE URI SAN of its certificate, in our trust domain). */
  readonly peerIdentity: Identity;
  /** The identity whose certificate this server presented on the connection. */
  readonly localIdentity: Identity;
  /** TCP peer address of the HBONE connection. */
  readonly peerAddress: Address;
  /** Local address the HBONE connection arrived on. */
  readonly localAddress: Address;
  /** Aborted when the client resets the stream or the connection ends before the decision. */
  readonly signal: AbortSignal;
}

export type InboundDecision =
  | {
      readonly kind: "refuse";
      /** 400 bad request, 401 denied by policy, 503 upstream unavailable / unknown workload. */
      readonly status: 400 | 401 | 503;
      /** For logs; not sent to the client. */
      readonly reason: string;
    }
  | {
      readonly kind: "accept";
      /** The connected upstream (the app socket, or anything Duplex). Owned by the server now. */
      readonly upstream: Duplex;
      /** Extra headers on the 200, e.g. `baggage` describing the destination workload. */
      readonly responseHeaders?: http2.OutgoingHttpHeaders;
      /**
       * Called when bytes start to flow, with the live copy: byte counts so far (telemetry) and
       * `abort()` to cut the tunnel (e.g. a policy change now denies it). A tunnel whose streams
       * were already gone may have completed (onComplete) by then.
       */
      readonly onStart?: (copy: CopyHandle) => void;
      /** Called once when the tunnel is over, with byte counts (telemetry). */
      readonly onComplete?: (result: CopyResult) => void;
    };

/** Decides a CONNECT before the server answers. May be async; a throw answers 503. */
export type InboundHook = (req: InboundRequest) => InboundDecision | Promise<InboundDecision>;

/**
 * The certificate the server presents: a fixed one (replaceable with `setCertificate`) or one
 * looked up per connection from the local address it arrived on (a shared listener serving
 * several workloads), possibly fetched on demand.
 */
export type ServerCertificate =
  WorkloadCertificate | ((local: Address) => WorkloadCertificate | Promise<WorkloadCertificate>);

export interface HboneServerOptions {
  readonly certificate: ServerCertificate;
  readonly hook: InboundHook;
  readonly tuning?: Partial<ServerTuning>;
  readonly tls?: TlsPolicy;
  /** A TLS handshake not finished in this time is dropped. Default 10 s. */
  readonly handshakeTimeoutMs?: number;
  /** TCP keepalive idle time on accepted connections (ztunnel: 180 s). */
  readonly tcpKeepaliveMs?: number;
  /** How accepted tunnels copy bytes (buffering, write coalescing); default `serverCopyOptions`. */
  readonly copy?: CopyOptions;
  readonly logger?: Logger;
}

export interface HboneServerStats {
  /** HTTP/2 connections (past the TLS handshake and identity checks) currently open. */
  readonly connections: number;
  /** TCP connections currently open (in the handshake or carrying HTTP/2). */
  readonly sockets: number;
  /** CONNECT streams currently open (deciding or tunnelling). */
  readonly streams: number;
  /** Connections accepted since the start (TCP). */
  readonly accepted: number;
}

interface Conn {
  readonly session: http2.ServerHttp2Session;
  readonly peerIdentity: Identity;
  readonly localIdentity: Identity;
  readonly peerAddress: Address;
  readonly localAddress: Address;
}

/** The abort reason when a stream closes before its hook decided (one object, no stack). */
const streamClosed = Object.freeze({ reason: "the HBONE stream closed before the decision" });

const silentLogger = new LogOutput({
  spec: { defaultLevel: "off", scopes: new Map() },
}).logger("hbone");

function addressOf(ip: string | undefined, port: number | undefined): Address {
  return { ip: ip ?? "", port: port ?? 0 };
}

export class HboneServer {
  readonly #hook: InboundHook;
  readonly #tuning: ServerTuning;
  readonly #sessionOptions: http2.ServerSessionOptions;
  readonly #policy: TlsPolicy;
  readonly #handshakeTimeoutMs: number;
  readonly #tcpKeepaliveMs: number;
  readonly #log: Logger;
  readonly #copyOptions: CopyOptions;
  #certificate: ServerCertificate;
  /** One tls.Server (one SecureContext) per certificate; rotation adds a new one. */
  readonly #tlsServers: PerCertificate<tls.Server, WorkloadCertificate>;
  readonly #listeners = new Set<net.Server>();
  /** Every accepted TCP socket until it closes (TLS wraps it in place, so it lives as long). */
  readonly #sockets = new Set<net.Socket>();
  readonly #conns = new Set<Conn>();
  #streams = 0;
  #accepted = 0;
  #draining = false;
  #closed = false;

  constructor(opts: HboneServerOptions) {
    this.#hook = opts.hook;
    this.#tuning = { ...defaultServerTuning, ...opts.tuning };
    this.#sessionOptions = serverSessionOptions(this.#tuning);
    this.#policy = opts.tls ?? {};
    this.#handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
    this.#tcpKeepaliveMs = opts.tcpKeepaliveMs ?? 180_000;
    this.#log = opts.logger ?? silentLogger;
    this.#copyOptions = opts.copy ?? serverCopyOptions;
    this.#certificate = opts.certificate;
    this.#tlsServers = new PerCertificate<tls.Server, WorkloadCertificate>(
      (cert) => this.#makeTlsServer(cert),
      { max: 64 },
    );
  }

  /**
   * Replaces the fixed certificate (rotation). New connections present the new one; open
   * connections keep theirs and are not dropped.
   */
  setCertificate(cert: WorkloadCertificate): void {
    this.#certificate = cert;
  }

  /**
   * Listens on a port, or adopts a listening fd (`{ fd }`, e.g. created in a pod's network
   * namespace). Resolves the bound address. Several servers may share a port with `reusePort`.
   */
  async listen(options: net.ListenOptions | { readonly fd: number }): Promise<net.AddressInfo> {
    const server = net.createServer({ noDelay: true, pauseOnConnect: false }, (socket) =>
      this.handleConnection(socket),
    );
    this.#listeners.add(server);
    server.on("close", () => this.#listeners.delete(server));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", (err) => this.#log.error("HBONE listener failed", { error: err.message }));
    return server.address() as net.AddressInfo;
  }

  /** Serves one accepted TCP connection (from a listener ztunnel owns). */
  handleConnection(socket: net.Socket): void {
    this.#accepted++;
    if (this.#draining || this.#closed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, this.#tcpKeepaliveMs);
    // Owner of the raw socket's errors until TLS takes the socket over.
    socket.on("error", (err) => this.#log.debug("HBONE connection error", { error: err.message }));
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    const local = addressOf(socket.localAddress, socket.localPort);
    const c = this.#certificate;
    if (typeof c !== "function") {
      this.#startTls(socket, c);
      return;
    }
    let cert: WorkloadCertificate | Promise<WorkloadCertificate>;
    try {
      cert = c(local);
    } catch (err) {
      this.#noCertificate(socket, local, err);
      return;
    }
    if (cert instanceof Promise) {
      // A certificate fetched on demand counts against the handshake time.
      const timer = setTimeout(
        () => this.#noCertificate(socket, local, new Error("certificate not ready in time")),
        this.#handshakeTimeoutMs,
      );
      cert.then(
        (v) => {
          clearTimeout(timer);
          this.#startTls(socket, v);
        },
        (err: unknown) => {
          clearTimeout(timer);
          this.#noCertificate(socket, local, err);
        },
      );
    } else {
      this.#startTls(socket, cert);
    }
  }

  #noCertificate(socket: net.Socket, local: Address, err: unknown): void {
    this.#log.warn("no certificate to serve HBONE connection; closing it", {
      local: `${local.ip}:${local.port}`,
      error: err instanceof Error ? err.message : String(err),
    });
    socket.destroy();
  }

  #startTls(socket: net.Socket, cert: WorkloadCertificate): void {
    if (socket.destroyed) return;
    if (this.#draining || this.#closed) {
      socket.destroy();
      return;
    }
    this.#tlsServers.get(cert).emit("connection", socket);
  }

  #makeTlsServer(cert: WorkloadCertificate): tls.Server {
    const server = tls.createServer({
      ...secureContextOptions(cert, this.#policy),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ["h2"],
      handshakeTimeout: this.#handshakeTimeoutMs,
    });
    const trustDomain = cert.identity.trustDomain;
    server.on("secureConnection", (s: tls.TLSSocket) =>
      this.#onSecure(s, cert.identity, trustDomain),
    );
    server.on("tlsClientError", (err: Error, s: tls.TLSSocket) => {
      this.#log.debug("HBONE TLS handshake failed", {
        peer: `${s.remoteAddress ?? "?"}:${s.remotePort ?? 0}`,
        error: err.message,
      });
    });
    return server;
  }

  #onSecure(socket: tls.TLSSocket, localIdentity: Identity, trustDomain: string): void {
    const peer = addressOf(socket.remoteAddress, socket.remotePort);
    const refuse = (why: string): void => {
      this.#log.warn("HBONE connection refused", { peer: `${peer.ip}:${peer.port}`, reason: why });
      socket.destroy();
    };
    if (this.#draining || this.#closed) return refuse("server is draining");
    if (socket.alpnProtocol !== "h2") {
      return refuse(`client did not negotiate ALPN h2 (got ${String(socket.alpnProtocol)})`);
    }
    const ids = peerIdentities(socket.getPeerX509Certificate());
    const peerIdentity = ids.find((id) => id.trustDomain === trustDomain);
    if (peerIdentity === undefined) {
      return refuse(
        `client certificate has ${describeIdentities(ids)}; expected an identity in trust domain ${trustDomain}`,
      );
    }
    const session = http2.performServerHandshake(socket, this.#sessionOptions);
    const conn: Conn = {
      session,
      peerIdentity,
      localIdentity,
      peerAddress: peer,
      localAddress: addressOf(socket.localAddress, socket.localPort),
    };
    this.#conns.add(conn);
    session.setLocalWindowSize(this.#tuning.connectionWindowSize);
    startKeepalive(session, {
      intervalMs: this.#tuning.keepaliveIntervalMs,
      timeoutMs: this.#tuning.keepaliveTimeoutMs,
      onTimeout: () => {
        this.#log.debug("HBONE keepalive timed out; closing connection", {
          peer: formatIdentity(peerIdentity),
        });
        session.destroy();
      },
    });
    session.on("stream", (stream, headers) => this.#onStream(conn, stream, headers));
    session.on("error", (err: Error) =>
      this.#log.debug("HBONE connection failed", {
        peer: formatIdentity(peerIdentity),
        error: err.message,
      }),
    );
    session.once("close", () => this.#conns.delete(conn));
  }

  #onStream(conn: Conn, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    this.#streams++;
    // The abort signal is made only if the hook asks for it: an AbortController (and the
    // DOMException of its default reason) per stream cost a few percent of a proxy's CPU.
    let controller: AbortController | undefined;
    stream.once("close", () => {
      this.#streams--;
      controller?.abort(streamClosed);
    });
    // Owner of the stream's errors until the copy takes over (then both listen; harmless).
    stream.on("error", (err) =>
      this.#log.debug("HBONE stream error", { error: err.message, id: stream.id ?? 0 }),
    );
    const parsed = parseConnectRequest(headers);
    if (!parsed.ok) {
      this.#refuse(stream, parsed.reason.status, parsed.reason.reason, conn);
      return;
    }
    const req: InboundRequest = {
      ...parsed.value,
      peerIdentity: conn.peerIdentity,
      localIdentity: conn.localIdentity,
      peerAddress: conn.peerAddress,
      localAddress: conn.localAddress,
      get signal(): AbortSignal {
        if (controller === undefined) {
          controller = new AbortController();
          if (stream.closed || stream.destroyed) controller.abort(streamClosed);
        }
        return controller.signal;
      },
    };
    let decision: InboundDecision | Promise<InboundDecision>;
    try {
      decision = this.#hook(req);
    } catch (err) {
      this.#hookFailed(stream, conn, err);
      return;
    }
    if (decision instanceof Promise) {
      decision.then(
        (d) => this.#apply(stream, conn, d),
        (err: unknown) => this.#hookFailed(stream, conn, err),
      );
    } else {
      this.#apply(stream, conn, decision);
    }
  }

  #hookFailed(stream: http2.ServerHttp2Stream, conn: Conn, err: unknown): void {
    this.#log.error("HBONE inbound hook failed; answering 503", {
      error: err instanceof Error ? err.message : String(err),
    });
    this.#refuse(stream, 503, "internal error", conn);
  }

  #apply(stream: http2.ServerHttp2Stream, conn: Conn, d: InboundDecision): void {
    if (d.kind === "refuse") {
      this.#refuse(stream, d.status, d.reason, conn);
      return;
    }
    const { upstream } = d;
    if (stream.destroyed || stream.closed) {
      // The client gave up while we decided: the upstream we made is no longer wanted.
      upstream.destroy();
      return;
    }
    stream.respond({ ...d.responseHeaders, ":status": 200 });
    const onComplete = d.onComplete;
    const copy = copyBidirectional(
      stream,
      upstream,
      (result) => {
        if (result.error !== undefined) {
          this.#log.debug("HBONE tunnel failed", {
            peer: formatIdentity(conn.peerIdentity),
            error: result.error.message,
          });
        }
        onComplete?.(result);
      },
      this.#copyOptions,
    );
    d.onStart?.(copy);
  }

  #refuse(stream: http2.ServerHttp2Stream, status: number, reason: string, conn: Conn): void {
    this.#log.debug("HBONE CONNECT refused", {
      status,
      reason,
      peer: formatIdentity(conn.peerIdentity),
    });
    if (stream.destroyed || stream.closed) return;
    stream.respond({ ":status": status }, { endStream: true });
    // The answer is complete; RST_STREAM(NO_ERROR) frees the stream now instead of waiting for
    // the client to end its side (RFC 9113 §8.1), so a client cannot pile up refused streams.
    stream.close(http2.constants.NGHTTP2_NO_ERROR);
  }

  stats(): HboneServerStats {
    return {
      connections: this.#conns.size,
      sockets: this.#sockets.size,
      streams: this.#streams,
      accepted: this.#accepted,
    };
  }

  /** The listening addresses. */
  addresses(): net.AddressInfo[] {
    const out: net.AddressInfo[] = [];
    for (const l of this.#listeners) {
      const a = l.address();
      if (a !== null && typeof a === "object") out.push(a);
    }
    return out;
  }

  #stopListening(): void {
    for (const l of this.#listeners) l.close();
  }

  /**
   * Graceful drain: stop accepting, send GOAWAY on every connection, let open streams finish, and
   * force-close whatever is left after `deadlineMs`. Resolves when every connection is closed.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.#draining = true;
    this.#stopListening();
    // Handshakes in progress are refused when they complete (or time out).
    const sessions = [...this.#conns].map((c) => c.session);
    if (sessions.length === 0) return;
    const closed = sessions.map((s) =>
      s.closed && s.destroyed ? Promise.resolve() : new Promise<void>((r) => s.once("close", r)),
    );
    for (const s of sessions) {
      if (!s.closed) s.close();
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"deadline">((r) => {
      timer = setTimeout(() => r("deadline"), deadlineMs);
    });
    const outcome = await Promise.race([Promise.all(closed).then(() => "done" as const), deadline]);
    clearTimeout(timer);
    if (outcome === "deadline") {
      this.#log.info("HBONE drain deadline reached; closing remaining connections", {
        connections: this.#conns.size,
        streams: this.#streams,
      });
      for (const s of sessions) s.destroy();
      await Promise.all(closed);
    }
  }

  /** Closes everything now: listeners, handshakes, connections and their streams. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stopListening();
    const sessions = [...this.#conns].map((c) => c.session);
    const closed = sessions.map((s) =>
      s.destroyed ? Promise.resolve() : new Promise<void>((r) => s.once("close", r)),
    );
    for (const s of sessions) s.destroy();
    for (const s of this.#sockets) s.destroy();
    await Promise.all(closed);
  }
}
