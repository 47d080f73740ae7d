/** Small response and request-body helpers shared by the sample apps' handlers. */
import type { OutgoingHttpHeaders } from "node:http";
import type { Req, Res } from "./http-app.ts";

export function sendBody(
  res: Res,
  status: number,
  body: string | Buffer,
  contentType: string,
  extra: OutgoingHttpHeaders = {},
): void {
  const buf = typeof body === "string" ? Buffer.from(body) : body;
  res.writeHead(status, { ...extra, "content-type": contentType, "content-length": buf.length });
  res.end(buf);
}

/** JSON with two-space indentation and a final newline, the way httpbin and bookinfo print it. */
export function sendJson(
  res: Res,
  status: number,
  value: unknown,
  extra: OutgoingHttpHeaders = {},
): void {
  sendBody(res, status, JSON.stringify(value, null, 2) + "\n", "application/json", extra);
}

export type BodyResult =
  | { readonly ok: true; readonly body: Buffer }
  | { readonly ok: false; readonly status: 413 | 400; readonly reason: string };

/** Reads a whole request body, refusing more than `limit` bytes. */
export function readBody(req: Req, limit: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > limit) {
      // Do not read a body we will refuse; the connection is closed after the answer.
      resolve({ ok: false, status: 413, reason: `request body over ${limit} bytes` });
      return;
    }
    req.on("data", (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > limit) {
        done = true;
        resolve({ ok: false, status: 413, reason: `request body over ${limit} bytes` });
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => {
      if (done) return;
      done = true;
      resolve({ ok: true, body: Buffer.concat(chunks) });
    });
    req.on("error", (err) => {
      if (done) return;
      done = true;
      resolve({ ok: false, status: 400, reason: `request body: ${err.message}` });
    });
  });
}

/** Splits a request target into its path and query. */
export function splitTarget(url: string | undefined): { path: string; query: URLSearchParams } {
  const target = url ?? "/";
  const q = target.indexOf("?");
  return q === -1
    ? { path: target, query: new URLSearchParams() }
    : { path: target.slice(0, q), query: new URLSearchParams(target.slice(q + 1)) };
}

/**
 * Headers for an answer sent before the request body was read: on HTTP/1.1 the connection must
 * close, or the unread body would be taken for the next request. HTTP/2 forbids the header.
 */
export function closeIfHttp1(req: Req): OutgoingHttpHeaders {
  return req.httpVersion.startsWith("2") ? {} : { connection: "close" };
}
