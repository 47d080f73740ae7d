/**
 * httpbin's endpoints, answering in httpbin's JSON shapes. Handlers work on HTTP/1.1 and HTTP/2
 * alike (they only use what both compatibility APIs share).
 */
import { randomUUID } from "node:crypto";
import type { Req, Res, Handler } from "../common/http-app.ts";
import { peerAddress } from "../common/http-app.ts";
import { closeIfHttp1, readBody, sendBody, sendJson, splitTarget } from "../common/respond.ts";
import { SeededBytes, randomBytesFor } from "./random-bytes.ts";
import { parseStatusCodes, pickStatus } from "./status-codes.ts";

/** Limits that keep one request from tying up the app; each is named in the 400 it causes. */
export const LIMITS = Object.freeze({
  maxDelaySeconds: 10,
  maxBytes: 10 * 1024 * 1024,
  maxStreamBytes: 100 * 1024 * 1024,
  maxStreamLines: 100,
  maxBody: 10 * 1024 * 1024,
  maxRedirects: 20,
  maxChunkSize: 1024 * 1024,
});

// /stream-bytes default chunk: large enough that a transfer is not dominated by per-write cost.
const DEFAULT_CHUNK = 64 * 1024;

type Multi = Record<string, string | string[]>;

/** Query or form fields: one value stays a string, repeated names become arrays (httpbin). */
export function multiDict(params: Iterable<[string, string]>): Multi {
  const out: Multi = {};
  for (const [k, v] of params) {
    const prev = out[k];
    if (prev === undefined) out[k] = v;
    else if (Array.isArray(prev)) prev.push(v);
    else out[k] = [prev, v];
  }
  return out;
}

/** `content-type` → `Content-Type`. */
export function titleCase(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

/** Request headers as httpbin shows them: title-cased names, repeated values joined. */
export function showHeaders(req: Req): Record<string, string> {
  const out: Record<string, string> = {};
  const h = req.headers;
  for (const name in h) {
    if (name.startsWith(":")) continue;
    const v = h[name];
    if (v !== undefined) out[titleCase(name)] = Array.isArray(v) ? v.join(",") : v;
  }
  // HTTP/2 carries the host in :authority.
  const authority = h[":authority" as "host"];
  if (out["Host"] === undefined && typeof authority === "string") out["Host"] = authority;
  return out;
}

function hostOf(req: Req): string {
  return req.headers.host ?? req.headers[":authority" as "host"] ?? "";
}

function baseInfo(req: Req, query: URLSearchParams): Record<string, unknown> {
  return {
    args: multiDict(query),
    headers: showHeaders(req),
    origin: peerAddress(req.socket.remoteAddress),
    url: `http://${hostOf(req)}${req.url ?? "/"}`,
  };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The body as httpbin's `data`: text when it is UTF-8, else a base64 data URL. */
function bodyAsData(body: Buffer, contentType: string): string {
  try {
    return utf8.decode(body);
  } catch {
    return `data:${contentType || "application/octet-stream"};base64,${body.toString("base64")}`;
  }
}

async function bodyInfo(
  req: Req,
  body: Buffer,
): Promise<{ data: string; files: Multi; form: Multi; json: unknown }> {
  const contentType = req.headers["content-type"] ?? "";
  const mediaType = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  if (mediaType === "application/x-www-form-urlencoded") {
    return {
      data: "",
      files: {},
      form: multiDict(new URLSearchParams(body.toString())),
      json: null,
    };
  }
  if (mediaType === "multipart/form-data") {
    // The fetch API's multipart parser is built into Node; no package needed.
    const fd = await new Response(body, { headers: { "content-type": contentType } }).formData();
    const fields: [string, string][] = [];
    const files: [string, string][] = [];
    for (const [k, v] of fd) {
      if (typeof v === "string") fields.push([k, v]);
      else {
        const bytes = Buffer.from(await v.arrayBuffer());
        files.push([k, bodyAsData(bytes, v.type)]);
      }
    }
    return { data: "", files: multiDict(files), form: multiDict(fields), json: null };
  }
  const data = bodyAsData(body, contentType);
  let json: unknown = null;
  if (data !== "" && !data.startsWith("data:")) {
    try {
      json = JSON.parse(data);
    } catch {
      json = null;
    }
  }
  return { data, files: {}, form: {}, json };
}

function badRequest(res: Res, message: string): void {
  sendJson(res, 400, { error: message });
}

function methodNotAllowed(res: Res, allow: string): void {
  sendJson(res, 405, { error: "method not allowed" }, { allow });
}

/** /post, /put, /patch, /delete and /anything: echo the request with its parsed body. */
function echoRequest(
  req: Req,
  res: Res,
  query: URLSearchParams,
  withMethod: boolean,
): Promise<void> {
  return readBody(req, LIMITS.maxBody).then(async (b) => {
    if (!b.ok) {
      sendJson(res, b.status, { error: b.reason }, closeIfHttp1(req));
      return;
    }
    let parsed: Awaited<ReturnType<typeof bodyInfo>>;
    try {
      parsed = await bodyInfo(req, b.body);
    } catch (err) {
      badRequest(
        res,
        `could not parse the body: ${err instanceof Error ? err.message : String(err)}`,
      );
      return;
    }
    const base = baseInfo(req, query);
    sendJson(res, 200, {
      args: base["args"],
      data: parsed.data,
      files: parsed.files,
      form: parsed.form,
      headers: base["headers"],
      json: parsed.json,
      ...(withMethod ? { method: req.method } : {}),
      origin: base["origin"],
      url: base["url"],
    });
  });
}

function status(res: Res, spec: string): void {
  const parsed = parseStatusCodes(decodeURIComponent(spec));
  if (!parsed.ok) {
    badRequest(res, parsed.reason);
    return;
  }
  const code = pickStatus(parsed.choices, Math.random());
  const headers: Record<string, string> = {};
  if (code === 301 || code === 302 || code === 303 || code === 305 || code === 307) {
    headers["location"] = "/redirect/1";
  } else if (code === 401) {
    headers["www-authenticate"] = 'Basic realm="Fake Realm"';
  } else if (code === 407) {
    headers["proxy-authenticate"] = 'Basic realm="Fake Realm"';
  }
  if (code === 418) {
    sendBody(res, 418, "I'm a teapot\n", "text/plain; charset=utf-8", headers);
    return;
  }
  if (code === 204 || code === 304) {
    res.writeHead(code, headers);
    res.end();
    return;
  }
  sendBody(res, code, "", "text/plain; charset=utf-8", headers);
}

function parseNonNegative(text: string, integer: boolean): number | undefined {
  if (!(integer ? /^\d{1,12}$/ : /^\d{1,12}(?:\.\d{1,9})?$/).test(text)) return undefined;
  return Number(text);
}

function parseSeed(query: URLSearchParams): number | undefined | "bad" {
  const s = query.get("seed");
  if (s === null) return undefined;
  return /^\d{1,10}$/.test(s) ? Number(s) : "bad";
}

function delay(req: Req, res: Res, query: URLSearchParams, text: string): void {
  const seconds = parseNonNegative(text, false);
  if (seconds === undefined) {
    badRequest(res, `invalid delay "${text}": expected seconds, e.g. /delay/2 or /delay/0.5`);
    return;
  }
  if (seconds > LIMITS.maxDelaySeconds) {
    badRequest(res, `delay ${seconds}s is over the ${LIMITS.maxDelaySeconds}s limit`);
    return;
  }
  const timer = setTimeout(() => sendJson(res, 200, baseInfo(req, query)), seconds * 1000);
  // A client that gives up stops the timer rather than leaving it to write to a dead stream.
  res.once("close", () => clearTimeout(timer));
}

function bytes(res: Res, query: URLSearchParams, text: string): void {
  const n = parseNonNegative(text, true);
  const seed = parseSeed(query);
  if (n === undefined || seed === "bad") {
    badRequest(res, "expected /bytes/<count>[?seed=<integer>]");
    return;
  }
  if (n > LIMITS.maxBytes) {
    badRequest(res, `${n} bytes is over the ${LIMITS.maxBytes}-byte limit; use /stream-bytes`);
    return;
  }
  sendBody(res, 200, randomBytesFor(n, seed), "application/octet-stream");
}

/** Writes `total` bytes in chunks, waiting for 'drain' whenever the response buffer is full. */
function streamBytes(res: Res, query: URLSearchParams, text: string): void {
  const total = parseNonNegative(text, true);
  const seed = parseSeed(query);
  const chunkText = query.get("chunk_size");
  const chunkSize = chunkText === null ? DEFAULT_CHUNK : parseNonNegative(chunkText, true);
  if (total === undefined || seed === "bad" || chunkSize === undefined || chunkSize < 1) {
    badRequest(res, "expected /stream-bytes/<count>[?chunk_size=<bytes>][&seed=<integer>]");
    return;
  }
  if (total > LIMITS.maxStreamBytes || chunkSize > LIMITS.maxChunkSize) {
    badRequest(
      res,
      `limits: at most ${LIMITS.maxStreamBytes} bytes, chunks of at most ${LIMITS.maxChunkSize}`,
    );
    return;
  }
  res.writeHead(200, { "content-type": "application/octet-stream" });
  const seeded = seed === undefined ? undefined : new SeededBytes(seed);
  // Unseeded output reuses one random chunk: write() may still hold it, so it is never mutated.
  const fixed =
    seeded === undefined ? randomBytesFor(Math.min(chunkSize, total), undefined) : undefined;
  let remaining = total;
  let closed = false;
  res.once("close", () => {
    closed = true;
  });
  const pump = (): void => {
    while (remaining > 0 && !closed) {
      const n = Math.min(chunkSize, remaining);
      const chunk =
        seeded !== undefined ? seeded.fill(Buffer.allocUnsafe(n)) : fixed!.subarray(0, n);
      remaining -= n;
      if (!res.write(chunk)) {
        res.once("drain", pump);
        return;
      }
    }
    if (!closed) res.end();
  };
  pump();
}

function streamLines(req: Req, res: Res, query: URLSearchParams, text: string): void {
  const n = parseNonNegative(text, true);
  if (n === undefined) {
    badRequest(res, "expected /stream/<lines>");
    return;
  }
  const lines = Math.min(n, LIMITS.maxStreamLines);
  const base = baseInfo(req, query);
  res.writeHead(200, { "content-type": "application/json" });
  for (let i = 0; i < lines; i++) res.write(JSON.stringify({ id: i, ...base }) + "\n");
  res.end();
}

function redirect(res: Res, text: string): void {
  const n = parseNonNegative(text, true);
  if (n === undefined || n < 1 || n > LIMITS.maxRedirects) {
    badRequest(res, `expected /redirect/<n> with n from 1 to ${LIMITS.maxRedirects}`);
    return;
  }
  res.writeHead(302, { location: n === 1 ? "/get" : `/redirect/${n - 1}`, "content-length": 0 });
  res.end();
}

function responseHeaders(res: Res, query: URLSearchParams): void {
  const headers = multiDict(query);
  try {
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  } catch (err) {
    badRequest(res, `cannot set that header: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  sendJson(res, 200, { "Content-Type": "application/json", ...headers });
}

/** Streams the request body straight back, with the request's content type. */
function echoBody(req: Req, res: Res): void {
  const headers: Record<string, string> = {
    "content-type": req.headers["content-type"] ?? "application/octet-stream",
  };
  const length = req.headers["content-length"];
  if (length !== undefined) headers["content-length"] = length;
  res.writeHead(200, headers);
  req.pipe(res);
}

const INDEX = `httpbin-like sample (Ambient examples)

GET  /get /headers /ip /user-agent /uuid
ANY  /anything[/...]     POST /post  PUT /put  PATCH /patch  DELETE /delete
ANY  /status/<code>[,<code>[:weight]...]
ANY  /delay/<seconds>    (at most ${LIMITS.maxDelaySeconds})
GET  /bytes/<n>[?seed=]  (at most ${LIMITS.maxBytes})
GET  /stream-bytes/<n>[?chunk_size=&seed=]  (at most ${LIMITS.maxStreamBytes})
GET  /stream/<lines>     (at most ${LIMITS.maxStreamLines})
GET  /redirect/<n>  /response-headers?name=value
ANY  /echo               streams the request body back
HTTP/1.1 and HTTP/2 cleartext (prior knowledge) on the same port.
`;

export function httpbinHandler(): Handler {
  return (req, res) => {
    const { path, query } = splitTarget(req.url);
    const method = req.method ?? "GET";
    const isGet = method === "GET" || method === "HEAD";
    const slash = path.indexOf("/", 1);
    const head = slash === -1 ? path : path.slice(0, slash);
    const rest = slash === -1 ? undefined : path.slice(slash + 1);

    switch (head) {
      case "/":
        if (rest === undefined) sendBody(res, 200, INDEX, "text/plain; charset=utf-8");
        else sendJson(res, 404, { error: "not found" });
        return;
      case "/get":
      case "/headers":
      case "/ip":
      case "/user-agent":
      case "/uuid":
        if (rest !== undefined) break;
        if (!isGet) {
          methodNotAllowed(res, "GET, HEAD");
          return;
        }
        if (head === "/get") sendJson(res, 200, baseInfo(req, query));
        else if (head === "/headers") sendJson(res, 200, { headers: showHeaders(req) });
        else if (head === "/ip")
          sendJson(res, 200, { origin: peerAddress(req.socket.remoteAddress) });
        else if (head === "/user-agent")
          sendJson(res, 200, { "user-agent": req.headers["user-agent"] ?? null });
        else sendJson(res, 200, { uuid: randomUUID() });
        return;
      case "/post":
      case "/put":
      case "/patch":
      case "/delete": {
        if (rest !== undefined) break;
        const want = head.slice(1).toUpperCase();
        if (method !== want) {
          methodNotAllowed(res, want);
          return;
        }
        return echoRequest(req, res, query, false);
      }
      case "/anything":
        return echoRequest(req, res, query, true);
      case "/status":
        if (rest === undefined || rest.includes("/")) break;
        status(res, rest);
        return;
      case "/delay":
        if (rest === undefined || rest.includes("/")) break;
        delay(req, res, query, rest);
        return;
      case "/bytes":
        if (rest === undefined || rest.includes("/")) break;
        bytes(res, query, rest);
        return;
      case "/stream-bytes":
        if (rest === undefined || rest.includes("/")) break;
        streamBytes(res, query, rest);
        return;
      case "/stream":
        if (rest === undefined || rest.includes("/")) break;
        streamLines(req, res, query, rest);
        return;
      case "/redirect":
        if (rest === undefined || rest.includes("/")) break;
        redirect(res, rest);
        return;
      case "/response-headers":
        if (rest !== undefined) break;
        responseHeaders(res, query);
        return;
      case "/echo":
        if (rest !== undefined) break;
        echoBody(req, res);
        return;
    }
    sendJson(res, 404, { error: "not found" });
  };
}
