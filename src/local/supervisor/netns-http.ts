/**
 * HTTP requests into a network namespace from the host: the socket is made inside the namespace
 * (one native call; this thread never changes namespace) and handed to Node's HTTP client. How
 * `up`, `status` and the supervisor reach endpoints that listen only inside the cluster (the
 * control plane's /ready, ztunnel's admin on 127.0.0.1:15000) without a `curl` per check.
 */
import { request, type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import { Socket } from "node:net";
import { closeFd, createNetnsSocket, openNetns } from "../../lib/net/index.ts";

export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface NetnsRequest {
  /** `/run/netns/<name>`. */
  readonly netns: string;
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly method?: string;
  readonly timeoutMs?: number;
}

/** One request; rejects on connection errors and timeouts (with the address in the message). */
export function netnsHttp(r: NetnsRequest): Promise<HttpAnswer> {
  const nsFd = openNetns(r.netns);
  let fd: number;
  try {
    fd = createNetnsSocket({ netns: nsFd, protocol: "tcp", family: 4 }).fd;
  } finally {
    closeFd(nsFd);
  }
  const socket = new Socket({ fd, readable: true, writable: true });
  return new Promise((resolve, reject) => {
    const where = `http://${r.host}:${r.port}${r.path} in ${r.netns}`;
    const req = request(
      {
        host: r.host,
        port: r.port,
        path: r.path,
        method: r.method ?? "GET",
        createConnection: () => socket.connect(r.port, r.host),
        timeout: r.timeoutMs ?? 3000,
        headers: { connection: "close" },
      },
      (res) => collect(res, resolve, reject),
    );
    req.on("timeout", () => req.destroy(new Error(`${where}: no answer in time`)));
    req.on("error", (err) => {
      socket.destroy();
      reject(new Error(`${where}: ${err.message}`, { cause: err }));
    });
    req.end();
  });
}

export interface UnixRequest {
  readonly socket: string;
  readonly path: string;
  readonly method?: string;
  readonly body?: unknown;
  readonly timeoutMs?: number;
}

/** A request on a unix socket (the API server's), JSON body when given. */
export function unixHttp(r: UnixRequest): Promise<HttpAnswer> {
  const payload = r.body === undefined ? undefined : JSON.stringify(r.body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: r.socket,
        path: r.path,
        method: r.method ?? "GET",
        timeout: r.timeoutMs ?? 5000,
        headers:
          payload === undefined
            ? {}
            : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      },
      (res) => collect(res, resolve, reject),
    );
    req.on("timeout", () => req.destroy(new Error(`${r.socket}: no answer in time`)));
    req.on("error", (err) =>
      reject(new Error(`${r.socket}${r.path}: ${err.message}`, { cause: err })),
    );
    req.end(payload);
  });
}

function collect(
  res: IncomingMessage,
  resolve: (a: HttpAnswer) => void,
  reject: (e: Error) => void,
): void {
  const chunks: Buffer[] = [];
  res.on("data", (c: Buffer) => chunks.push(c));
  res.on("error", reject);
  res.on("end", () =>
    resolve({
      status: res.statusCode ?? 0,
      headers: res.headers,
      body: Buffer.concat(chunks).toString("utf8"),
    }),
  );
}
