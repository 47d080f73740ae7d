/**
 * The small HTTP servers ztunnel runs in its own network namespace (admin, metrics, readiness):
 * listen, answer plain text, close without leaving sockets behind.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { AmbientError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log/index.ts";
import { formatListenAddress, type ListenAddress } from "../env-values.ts";

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
  readonly contentType?: string;
}

export type HttpHandler = (request: {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
}) => HttpAnswer | Promise<HttpAnswer>;

export interface RunningHttpServer {
  readonly name: string;
  /** Where it listens (the port is the real one when 0 was asked for). */
  readonly address: ListenAddress;
  close(): Promise<void>;
}

export function send(res: ServerResponse, answer: HttpAnswer): void {
  const body = Buffer.from(answer.body);
  res.writeHead(answer.status, {
    "content-type": answer.contentType ?? "text/plain; charset=utf-8",
    "content-length": body.byteLength,
  });
  res.end(body);
}

/** Starts `handler` on `address`; rejects naming the address when it cannot listen. */
export async function startHttpServer(
  name: string,
  address: ListenAddress,
  handler: HttpHandler,
  log: Logger,
): Promise<RunningHttpServer> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    // Bodies are never read: drain them so keep-alive connections stay usable.
    req.resume();
    Promise.resolve()
      .then(() =>
        handler({ method: req.method ?? "GET", path: url.pathname, query: url.searchParams }),
      )
      .then(
        (answer) => send(res, answer),
        (err: unknown) => {
          log.error(`${name} request failed`, {
            path: url.pathname,
            error: err instanceof Error ? err.message : String(err),
          });
          if (!res.headersSent) send(res, { status: 500, body: "internal error\n" });
          else res.destroy();
        },
      );
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) =>
      reject(
        new AmbientError(
          "ZTUNNEL_LISTEN",
          `the ${name} server cannot listen on ${formatListenAddress(address)}: ${err.message}`,
          { cause: err },
        ),
      );
    server.once("error", onError);
    server.listen({ host: address.host, port: address.port }, () => {
      server.off("error", onError);
      resolve();
    });
  });
  server.on("error", (err) => log.error(`${name} server error`, { error: err.message }));
  const bound = server.address() as AddressInfo;
  const actual = { host: address.host, port: bound.port };
  log.info(`${name} server listening`, { address: formatListenAddress(actual) });
  let closing: Promise<void> | undefined;
  return {
    name,
    address: actual,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
