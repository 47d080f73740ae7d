/**
 * HBONE's HTTP/2 and TLS parameters (INTEROP §1.1, §1.6), as ztunnel sets them, and their mapping
 * onto Node's http2/tls options. Components read the env (`HTTP2_STREAM_WINDOW_SIZE`, ...) in their
 * own config and pass the numbers here.
 */
import type { ClientSessionOptions, ServerSessionOptions } from "node:http2";
import type { SecureVersion } from "node:tls";
import type { CopyOptions } from "../net/copy.ts";

/** The HBONE port (inbound mTLS tunnel) on every mesh workload and waypoint. */
export const HBONE_PORT = 15008;

export interface Http2Tuning {
  /** Initial stream flow-control window (`HTTP2_STREAM_WINDOW_SIZE`). */
  readonly streamWindowSize: number;
  /** Connection flow-control window (`HTTP2_CONNECTION_WINDOW_SIZE`). */
  readonly connectionWindowSize: number;
  /** SETTINGS_MAX_FRAME_SIZE (`HTTP2_FRAME_SIZE`). */
  readonly frameSize: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE we accept. */
  readonly maxHeaderListSize: number;
  /** HTTP/2 PING interval; the first PING goes out one interval after the start. */
  readonly keepaliveIntervalMs: number;
  /** A PING not answered within this time tears the connection down. */
  readonly keepaliveTimeoutMs: number;
  /**
   * Node's per-session memory cap in MB (received-but-unread data, queued frames, headers). The
   * 10 MB default is below what 16 MiB windows and hundreds of streams legitimately hold and ends
   * sessions with ENHANCE_YOUR_CALM (NODE-NOTES); the windows themselves are the real bound.
   */
  readonly maxSessionMemoryMb: number;
}

export interface ServerTuning extends Http2Tuning {
  /** SETTINGS_MAX_CONCURRENT_STREAMS advertised by the server. */
  readonly maxConcurrentStreams: number;
}

export interface ClientTuning extends Http2Tuning {
  /** Streams per pooled connection before another is opened (`POOL_MAX_STREAMS_PER_CONNECTION`). */
  readonly maxStreamsPerConnection: number;
}

const MiB = 1024 * 1024;

const common = {
  streamWindowSize: 4 * MiB,
  connectionWindowSize: 16 * MiB,
  frameSize: 1 * MiB,
  keepaliveIntervalMs: 10_000,
  keepaliveTimeoutMs: 20_000,
  maxSessionMemoryMb: 64,
} as const;

export const defaultServerTuning: ServerTuning = Object.freeze({
  ...common,
  maxHeaderListSize: 64 * 1024,
  maxConcurrentStreams: 200,
});

export const defaultClientTuning: ClientTuning = Object.freeze({
  ...common,
  maxHeaderListSize: 16 * 1024,
  maxStreamsPerConnection: 100,
});

export function serverSessionOptions(t: ServerTuning): ServerSessionOptions {
  return {
    settings: {
      initialWindowSize: t.streamWindowSize,
      maxFrameSize: t.frameSize,
      maxHeaderListSize: t.maxHeaderListSize,
      maxConcurrentStreams: t.maxConcurrentStreams,
      enablePush: false,
    },
    maxSessionMemory: t.maxSessionMemoryMb,
  };
}

export function clientSessionOptions(t: ClientTuning): ClientSessionOptions {
  return {
    settings: {
      initialWindowSize: t.streamWindowSize,
      maxFrameSize: t.frameSize,
      maxHeaderListSize: t.maxHeaderListSize,
      enablePush: false,
    },
    // Until the server's SETTINGS arrive, assume it takes as many streams as we would open.
    peerMaxConcurrentStreams: t.maxStreamsPerConnection,
    maxSessionMemory: t.maxSessionMemoryMb,
  };
}

/**
 * How tunnel bytes are copied between the app socket and the HTTP/2 stream (see CopyOptions).
 * A larger allowance than the 64 KiB default of write() keeps a hop reading while earlier data
 * is framed, encrypted and sent, and coalescing turns the pieces HTTP/2 DATA arrives in into one
 * writev per turn of the event loop; together they doubled throughput and cut CPU per GB by a
 * quarter on the benchmark (BENCHMARKS.md). The allowance is per stream and per direction, so it
 * bounds what a peer that stops reading can make us hold: the server, which faces any client,
 * keeps 256 KiB (ztunnel's inbound send buffer is 400 KiB); the client, which serves its own
 * pod's connections, 1 MiB (ztunnel's outbound one is 4 MiB).
 */
export const serverCopyOptions: CopyOptions = Object.freeze({
  highWaterMark: 256 * 1024,
  coalesce: true,
});

export const clientCopyOptions: CopyOptions = Object.freeze({
  highWaterMark: 1024 * 1024,
  coalesce: true,
});

export interface TlsPolicy {
  /** Also allow TLS 1.2 (ztunnel's `TLS12_ENABLED`), with ECDHE + AES-GCM suites only. */
  readonly tls12?: boolean;
  /** Key-exchange groups, e.g. `X25519MLKEM768` for `COMPLIANCE_POLICY=pqc`; default: OpenSSL's. */
  readonly ecdhCurve?: string;
}

const tls13Suites = ["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"];
const tls12Suites = [
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
];

export interface TlsVersionOptions {
  readonly minVersion: SecureVersion;
  readonly maxVersion: SecureVersion;
  readonly ciphers: string;
  readonly ecdhCurve?: string;
}

/** Protocol versions and cipher suites for `tls.createSecureContext`, both sides. */
export function tlsVersionOptions(p: TlsPolicy = {}): TlsVersionOptions {
  // Node takes TLS 1.3 suite names in `ciphers` alongside the 1.2 ones.
  const ciphers = (p.tls12 === true ? [...tls13Suites, ...tls12Suites] : tls13Suites).join(":");
  return {
    minVersion: p.tls12 === true ? "TLSv1.2" : "TLSv1.3",
    maxVersion: "TLSv1.3",
    ciphers,
    ...(p.ecdhCurve !== undefined ? { ecdhCurve: p.ecdhCurve } : {}),
  };
}
