/**
 * The HTTP server under every sample app: listens, writes one access-log line per request, and
 * shuts down gracefully. With `h2c: true` the same port also speaks HTTP/2 cleartext with prior
 * knowledge (what `curl --http2-prior-knowledge`, `h2load` and gRPC clients send): the first bytes
 * of each connection decide which server gets it.
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Readable, Writable } from "node:stream";
import type { AppLog } from "./log.ts";

/** What handlers use of a request; both HTTP/1.1 and HTTP/2 compatibility requests fit. */
export interface Req extends Readable {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: http.IncomingHttpHeaders;
  readonly httpVersion: string;
  readonly socket: { readonly remoteAddress?: string | undefined };
}

/** What handlers use of a response; both HTTP/1.1 and HTTP/2 compatibility responses fit. */
export interface Res extends Writable {
  statusCode: number;
  readonly headersSent: boolean;
  setHeader(name: string, value: number | string | readonly string[]): unknown;
  writeHead(statusCode: number, headers?: http.OutgoingHttpHeaders): unknown;
}

/** A request handler; one that works asynchronously returns its promise, so failures are caught. */
export type Handler = (req: Req, res: Res) => void | Promise<void>;

export interface HttpAppOptions {
  readonly log: AppLog;
  /** Undefined listens on every address (IPv6 and IPv4 where available), as a pod should. */
  readonly host: string | undefined;
  readonly port: number;
  readonly handler: Handler;
  readonly h2c?: boolean;
}

export interface RunningHttpApp {
  readonly host: string;
  readonly port: number;
  /** Stops accepting, lets in-flight requests finish for up to graceMs, then cuts the rest. */
  close(graceMs: number): Promise<void>;
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
// Large HTTP/2 flow-control windows: Node's 64 KiB defaults cap a single stream's throughput
// (measured in NODE-NOTES.md), and httpbin is used for transfer tests.
const H2_STREAM_WINDOW = 4 * 1024 * 1024;
const H2_SESSION_WINDOW = 16 * 1024 * 1024;
const SNIFF_TIMEOUT_MS = 60_000;

/** Normalises IPv4-mapped IPv6 peers (`::ffff:198.18.0.5`) to the plain IPv4 form. */
export function peerAddress(addr: string | undefined): string {
  if (addr === undefined) return "unknown";
  return addr.startsWith("::ffff:") && addr.includes(".") ? addr.slice(7) : addr;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(", ") : v;
}

function withAccessLog(
  log: AppLog,
  handler: (req: Req, res: Res) => void,
): (req: Req, res: Res) => void {
  if (!log.accessEnabled) return handler;
  return (req, res) => {
    const start = performance.now();
    // Read now: an HTTP/2 request loses its socket once the session has closed.
    const peer = peerAddress(req.socket.remoteAddress);
    res.once("close", () => {
      log.access("request", {
        method: req.method,
        path: req.url,
        proto: `HTTP/${req.httpVersion}`,
        status: res.statusCode,
        duration_ms: Math.round((performance.now() - start) * 10) / 10,
        peer,
        request_id: headerValue(req.headers["x-request-id"]),
        user_agent: headerValue(req.headers["user-agent"]),
        aborted: res.writableFinished ? undefined : true,
      });
    });
    handler(req, res);
  };
}

function safely(log: AppLog, handler: Handler): (req: Req, res: Res) => void {
  return (req, res) => {
    // A bug in a handler answers 500 (or cuts the response) rather than taking the app down.
    const fail = (err: unknown): void => {
      log.error("handler failed", { path: req.url, error: String(err) });
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end("internal error\n");
      } else {
        res.destroy();
      }
    };
    try {
      const done = handler(req, res);
      if (done instanceof Promise) done.catch(fail);
    } catch (err) {
      fail(err);
    }
  };
}

export async function listenHttp(opts: HttpAppOptions): Promise<RunningHttpApp> {
  const handler = withAccessLog(opts.log, safely(opts.log, opts.handler));
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();

  const h1 = http.createServer({ noDelay: true }, handler);
  h1.on("clientError", (err: NodeJS.ErrnoException, socket: net.Socket) => {
    // Malformed requests get a 400 when the socket still allows it; resets are just closed.
    if (err.code === "ECONNRESET" || !socket.writable) socket.destroy();
    else socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
  });

  let front: net.Server;
  let h2: http2.Http2Server | undefined;
  if (opts.h2c === true) {
    h2 = http2.createServer({ settings: { initialWindowSize: H2_STREAM_WINDOW } }, handler);
    h2.on("session", (session: http2.ServerHttp2Session) => {
      sessions.add(session);
      session.once("close", () => sessions.delete(session));
      session.setLocalWindowSize(H2_SESSION_WINDOW);
    });
    const h2server = h2;
    front = net.createServer({ noDelay: true }, (socket) => sniff(socket, h1, h2server));
  } else {
    front = h1;
  }
  front.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    front.once("error", reject);
    const listenOpts: net.ListenOptions = { port: opts.port, backlog: 1024 };
    if (opts.host !== undefined) listenOpts.host = opts.host;
    front.listen(listenOpts, () => {
      front.off("error", reject);
      resolve();
    });
  });
  const addr = front.address() as net.AddressInfo;
  opts.log.info("listening", { host: addr.address, port: addr.port, h2c: opts.h2c === true });

  return {
    host: addr.address,
    port: addr.port,
    close(graceMs) {
      return new Promise<void>((resolve) => {
        const deadline = setTimeout(() => {
          for (const s of sessions) s.destroy();
          for (const s of sockets) s.destroy();
        }, graceMs);
        front.close(() => {
          clearTimeout(deadline);
          resolve();
        });
        h1.closeIdleConnections();
        for (const s of sessions) s.close();
      });
    },
  };
}

/**
 * Reads just enough of a new connection to tell the HTTP/2 preface from an HTTP/1.x request line,
 * puts the bytes back and hands the socket to the matching server.
 */
function sniff(socket: net.Socket, h1: http.Server, h2: http2.Http2Server): void {
  let seen: Buffer | undefined;
  const onError = (): void => {
    socket.destroy();
  };
  // A connection that never sends a byte would otherwise sit here forever.
  socket.setTimeout(SNIFF_TIMEOUT_MS, onError);
  const onData = (chunk: Buffer): void => {
    // The preface is 24 bytes; a client may send fewer in its first segment, so keep the few
    // bytes seen until they either differ from the preface or complete it.
    const data = seen === undefined ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(data.length, PREFACE.length);
    const isH2 = data.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (isH2 && n < PREFACE.length) {
      seen = data;
      return;
    }
    socket.off("data", onData);
    socket.off("error", onError);
    socket.setTimeout(0, onError);
    socket.pause();
    socket.unshift(data);
    if (isH2) {
      h2.emit("connection", socket);
    } else {
      h1.emit("connection", socket);
      // The HTTP/1 server reads through 'data' events; the explicit pause above must be undone.
      socket.resume();
    }
  };
  socket.on("error", onError);
  socket.on("data", onData);
}
