/**
 * The HBONE client (ztunnel outbound): `connect()` opens a CONNECT tunnel to a destination through
 * the pool, sending the headers ztunnel sends (INTEROP §1.4), and resolves once the server
 * answered 200. The tunnel is a Duplex (the HTTP/2 stream); copy it with the app socket.
 */
import * as http2 from "node:http2";
import type { SecureContext } from "node:tls";
import {
  formatIdentity,
  parseIdentity,
  type Identity,
  type WorkloadCertificate,
} from "../identity/index.ts";
import { LogOutput, type Logger } from "../log/index.ts";
import { formatAuthority, parseAuthority, type Authority } from "./authority.ts";
import { defaultDialer, openConnection, type Dialer, type HboneConnection } from "./connection.ts";
import { HboneError } from "./errors.ts";
import { formatForwarded, newTraceparent, type Forwarded } from "./headers.ts";
import { HbonePool, type HbonePoolStats } from "./pool.ts";
import type { PoolKey } from "./pool-state.ts";
import { defaultClientTuning, type ClientTuning, type TlsPolicy } from "./settings.ts";
import { secureContextCache, type PerCertificate } from "./tls.ts";

/** The certificate of a source identity; ztunnel plugs in its certificate holders. */
export type CertificateProvider = (
  identity: Identity,
) => WorkloadCertificate | Promise<WorkloadCertificate>;

export interface HboneClientOptions {
  readonly certificates: CertificateProvider;
  /** Creates the TCP socket (default: `net.connect` with TCP_NODELAY and keepalive). */
  readonly dial?: Dialer;
  readonly tuning?: Partial<ClientTuning>;
  readonly tls?: TlsPolicy;
  /** TCP connect timeout (ztunnel: 10 s). */
  readonly connectTimeoutMs?: number;
  /** TLS handshake timeout. Default 10 s. */
  readonly handshakeTimeoutMs?: number;
  /** Pooled connections unused this long are closed (ztunnel: 5 min). */
  readonly idleTimeoutMs?: number;
  /** Handshakes per pool key in flight at once, once the key is known to work. Default 4. */
  readonly maxParallelConnects?: number;
  readonly logger?: Logger;
}

export interface ConnectOptions {
  /** The identity the client presents (the source workload's). */
  readonly source: Identity;
  /** Identities the server may present; the connection is refused if it presents none of them. */
  readonly expected: readonly Identity[];
  /** The peer's HBONE listener, `ip:port` (IPv6 bracketed), normally port 15008. */
  readonly destination: string;
  /** Local address to connect from (part of the pool key). */
  readonly sourceIp?: string;
  /** The CONNECT `:authority`: where the server should send the bytes. */
  readonly authority: string | Authority;
  /** `forwarded` header: the original client address and the intended service host. */
  readonly forwarded?: Forwarded | string;
  /** `baggage` header: this workload's metadata (see `formatBaggage`). */
  readonly baggage?: string;
  /** `traceparent`; default: a new random one for this connection. */
  readonly traceparent?: string;
  /** Any further request headers (e.g. `x-forwarded-network` on a double-HBONE inner CONNECT). */
  readonly headers?: http2.OutgoingHttpHeaders;
  /** Aborts waiting for a connection or for the answer. */
  readonly signal?: AbortSignal;
}

export interface Tunnel {
  /**
   * The tunnel's bytes both ways; END_STREAM is its FIN, RST_STREAM its reset. Stream errors are
   * not thrown (a listener is attached); a reset shows as 'close' with a non-zero `rstCode`, and
   * `copyBidirectional` reports it.
   */
  readonly stream: http2.ClientHttp2Stream;
  /** Headers of the server's 200 (e.g. `baggage` describing the destination workload). */
  readonly responseHeaders: http2.IncomingHttpHeaders;
  /** The `traceparent` sent. */
  readonly traceparent: string;
  /** The identity the server presented (one of the expected ones). */
  readonly peerIdentity: Identity;
  /** Id of the pooled connection the stream runs on. */
  readonly connectionId: number;
}

const silentLogger = new LogOutput({
  spec: { defaultLevel: "off", scopes: new Map() },
}).logger("hbone");

function hostPort(destination: string): { ip: string; port: number } {
  const a = parseAuthority(destination);
  if (!a.ok || a.value.kind !== "ip") {
    throw new HboneError(
      "HBONE_CONNECT_FAILED",
      `HBONE destination "${destination}" must be ip:port (IPv6 bracketed)`,
    );
  }
  return { ip: a.value.ip, port: a.value.port };
}

export class HboneClient {
  readonly #certificates: CertificateProvider;
  readonly #dial: Dialer;
  readonly #tuning: ClientTuning;
  readonly #contexts: PerCertificate<SecureContext>;
  readonly #connectTimeoutMs: number;
  readonly #handshakeTimeoutMs: number;
  readonly #log: Logger;
  readonly #pool: HbonePool;

  constructor(opts: HboneClientOptions) {
    this.#certificates = opts.certificates;
    this.#dial = opts.dial ?? defaultDialer();
    this.#tuning = { ...defaultClientTuning, ...opts.tuning };
    this.#contexts = secureContextCache(opts.tls);
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.#handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
    this.#log = opts.logger ?? silentLogger;
    this.#pool = new HbonePool({
      connect: (key) => this.#open(key),
      maxStreamsPerConnection: this.#tuning.maxStreamsPerConnection,
      ...(opts.idleTimeoutMs !== undefined ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
      ...(opts.maxParallelConnects !== undefined
        ? { maxParallelConnects: opts.maxParallelConnects }
        : {}),
      logger: this.#log,
    });
  }

  async #open(key: PoolKey): Promise<{ session: http2.ClientHttp2Session; info: HboneConnection }> {
    const source = parseIdentity(key.source);
    if (!source.ok) throw new HboneError("HBONE_CERTIFICATE", source.reason);
    const expected: Identity[] = [];
    for (const e of key.expected) {
      const id = parseIdentity(e);
      if (id.ok) expected.push(id.value);
    }
    let certificate: WorkloadCertificate;
    try {
      certificate = await this.#certificates(source.value);
    } catch (err) {
      throw new HboneError(
        "HBONE_CERTIFICATE",
        `no certificate for ${key.source}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
    const { ip, port } = hostPort(key.destination);
    const conn = await openConnection({
      destination: key.destination,
      target: { ip, port, sourceIp: key.sourceIp },
      certificate,
      expected,
      contexts: this.#contexts,
      dial: this.#dial,
      connectTimeoutMs: this.#connectTimeoutMs,
      handshakeTimeoutMs: this.#handshakeTimeoutMs,
      tuning: this.#tuning,
      log: this.#log,
    });
    return { session: conn.session, info: conn };
  }

  /**
   * Opens a tunnel: a pooled connection for (source, expected, destination, source IP), then a
   * CONNECT stream. Resolves when the server answered 200; any other answer rejects with an
   * `HboneError` of code `HBONE_STATUS` carrying the status.
   */
  async connect(o: ConnectOptions): Promise<Tunnel> {
    if (o.expected.length === 0) {
      throw new HboneError(
        "HBONE_IDENTITY_MISMATCH",
        `no expected identity for ${o.destination}: refusing to connect without verifying the server`,
      );
    }
    hostPort(o.destination);
    const key: PoolKey = {
      source: formatIdentity(o.source),
      expected: o.expected.map(formatIdentity),
      destination: o.destination,
      sourceIp: o.sourceIp,
    };
    const lease = await this.#pool.acquire(key, o.signal);
    const info = lease.info as HboneConnection;
    const traceparent = o.traceparent ?? newTraceparent();
    const authority = typeof o.authority === "string" ? o.authority : formatAuthority(o.authority);
    const headers: http2.OutgoingHttpHeaders = {
      ...o.headers,
      ":method": "CONNECT",
      ":authority": authority,
      traceparent,
    };
    if (o.forwarded !== undefined) {
      headers["forwarded"] =
        typeof o.forwarded === "string" ? o.forwarded : formatForwarded(o.forwarded);
    }
    if (o.baggage !== undefined && o.baggage !== "") headers["baggage"] = o.baggage;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = lease.session.request(headers, { endStream: false });
    } catch (err) {
      lease.release();
      throw new HboneError(
        "HBONE_STREAM_FAILED",
        `CONNECT ${authority} via ${o.destination}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
    stream.once("close", lease.release);
    return await new Promise<Tunnel>((resolve, reject) => {
      // The 'error' listener stays: until the caller wires the stream up (copyBidirectional owns
      // its errors then), a reset must not become an uncaught exception. The outcome is still
      // visible as the stream's close and rstCode.
      const cleanup = (): void => {
        stream.off("response", onResponse);
        stream.off("close", onClose);
        o.signal?.removeEventListener("abort", onAbort);
      };
      const onResponse = (h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader): void => {
        cleanup();
        const status = h[":status"] ?? 0;
        if (status === 200) {
          resolve({
            stream,
            responseHeaders: h,
            traceparent,
            peerIdentity: info.peerIdentity,
            connectionId: lease.connectionId,
          });
          return;
        }
        // We are done with the stream; nothing more will be sent either way.
        stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(
          new HboneError(
            "HBONE_STATUS",
            `CONNECT ${authority} via ${o.destination} was refused with status ${status}`,
            { status },
          ),
        );
      };
      let firstError: Error | undefined;
      const onError = (err: Error): void => {
        firstError ??= err;
      };
      const onClose = (): void => {
        cleanup();
        const why = !info.serverAnswered()
          ? `the server closed the connection right after the TLS handshake; it may have refused the client certificate of ${key.source} (untrusted root, expired, or another trust domain)`
          : (firstError?.message ?? `stream closed (code ${stream.rstCode ?? "?"})`);
        reject(
          new HboneError(
            "HBONE_STREAM_FAILED",
            `CONNECT ${authority} via ${o.destination} failed before an answer: ${why}`,
            { cause: firstError },
          ),
        );
      };
      const onAbort = (): void => {
        cleanup();
        stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(
          new HboneError("HBONE_ABORTED", "HBONE connect aborted", { cause: o.signal?.reason }),
        );
      };
      stream.once("response", onResponse);
      stream.on("error", onError);
      stream.once("close", onClose);
      if (o.signal !== undefined) {
        if (o.signal.aborted) onAbort();
        else o.signal.addEventListener("abort", onAbort, { once: true });
      }
    });
  }

  stats(): HbonePoolStats {
    return this.#pool.stats();
  }

  /** Closes every pooled connection (open tunnels are reset) and fails pending connects. */
  close(): Promise<void> {
    return this.#pool.close();
  }
}
