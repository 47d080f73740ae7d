/**
 * Requests to the Kubernetes API server: JSON calls and line-delimited watch streams. The
 * connection settings (server, TLS material, tokens, exec credential plugins, proxies) come from
 * `@kubernetes/client-node`'s KubeConfig; the requests themselves are plain node:http(s) so list
 * and watch results stay raw JSON (the generated clients turn timestamps into Dates and drop
 * fields they do not know) and so watches control their own query (`allowWatchBookmarks`,
 * `timeoutSeconds`) and timeouts.
 */
import { request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";

export interface KubeResponse {
  readonly status: number;
  readonly body: unknown;
}

/** A Kubernetes `Status` object's useful parts, from an error response or an ERROR event. */
export function statusOf(body: unknown): { code?: number; reason?: string; message?: string } {
  if (body === null || typeof body !== "object") return {};
  const b = body as Record<string, unknown>;
  return {
    ...(typeof b["code"] === "number" ? { code: b["code"] } : {}),
    ...(typeof b["reason"] === "string" ? { reason: b["reason"] } : {}),
    ...(typeof b["message"] === "string" ? { message: b["message"] } : {}),
  };
}

export class KubeHttp {
  readonly #kc: KubeConfig;
  readonly #server: URL;

  constructor(kc: KubeConfig) {
    this.#kc = kc;
    const cluster = kc.getCurrentCluster();
    if (cluster === null) throw new Error("kubeconfig has no current cluster");
    this.#server = new URL(cluster.server);
  }

  async #options(
    method: string,
    path: string,
    query: Record<string, string>,
  ): Promise<{ url: URL; opts: RequestOptions }> {
    const url = new URL(this.#server.pathname.replace(/\/$/, "") + path, this.#server);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const opts: RequestOptions & { headers: Record<string, string> } = { method, headers: {} };
    // Token refresh, client certificates, exec plugins: the KubeConfig applies them per request.
    await this.#kc.applyToHTTPSOptions(opts);
    opts.headers["accept"] = "application/json";
    return { url, opts };
  }

  #send(url: URL, opts: RequestOptions, cb: (res: IncomingMessage) => void) {
    return url.protocol === "http:" ? httpRequest(url, opts, cb) : httpsRequest(url, opts, cb);
  }

  /** One JSON request; resolves with any HTTP status, rejects on network failure or timeout. */
  async call(
    method: string,
    path: string,
    opts: {
      query?: Record<string, string>;
      body?: unknown;
      contentType?: string;
      timeoutMs?: number;
      signal?: AbortSignal;
    } = {},
  ): Promise<KubeResponse> {
    const { url, opts: ro } = await this.#options(method, path, opts.query ?? {});
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    if (payload !== undefined) {
      const headers = ro.headers as Record<string, string>;
      headers["content-type"] = opts.contentType ?? "application/json";
      // Node frames DELETE (and GET) bodies only with an explicit length: without it the body
      // would reach the server as the start of a second request.
      headers["content-length"] = String(Buffer.byteLength(payload));
    }
    if (opts.signal) ro.signal = opts.signal;
    return new Promise((resolve, reject) => {
      const req = this.#send(url, ro, (res) => {
        res.setEncoding("utf8");
        let text = "";
        res.on("data", (c: string) => (text += c));
        res.on("end", () => {
          let body: unknown = text;
          try {
            body = text === "" ? undefined : JSON.parse(text);
          } catch {
            // Not JSON (a proxy's error page): keep the text for the message.
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on("error", reject);
      });
      req.setTimeout(opts.timeoutMs ?? 60_000, () =>
        req.destroy(new Error(`${method} ${path} timed out`)),
      );
      req.on("error", reject);
      req.end(payload);
    });
  }

  /**
   * Opens a watch and calls `onEvent` for each JSON line. Resolves with the HTTP status when the
   * stream ends (200 for a normal end, including a server timeout), or with the error body for a
   * non-200 answer; rejects on network failure, a malformed line, or `idleMs` without a byte.
   */
  async watch(
    path: string,
    query: Record<string, string>,
    onEvent: (event: unknown) => void,
    opts: { idleMs: number; signal: AbortSignal },
  ): Promise<KubeResponse> {
    const { url, opts: ro } = await this.#options("GET", path, { ...query, watch: "1" });
    ro.signal = opts.signal;
    return new Promise((resolve, reject) => {
      const req = this.#send(url, ro, (res) => {
        res.setEncoding("utf8");
        if (res.statusCode !== 200) {
          let text = "";
          res.on("data", (c: string) => (text += c));
          res.on("end", () => {
            let body: unknown = text;
            try {
              body = JSON.parse(text);
            } catch {
              // keep the text
            }
            resolve({ status: res.statusCode ?? 0, body });
          });
          return;
        }
        let buf = "";
        let failed = false;
        res.on("data", (chunk: string) => {
          buf += chunk;
          let nl;
          while (!failed && (nl = buf.indexOf("\n")) !== -1) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line === "") continue;
            let ev: unknown;
            try {
              ev = JSON.parse(line);
            } catch {
              failed = true;
              req.destroy(new Error(`watch ${path}: malformed event line`));
              return;
            }
            onEvent(ev);
          }
        });
        res.on("end", () => resolve({ status: 200, body: undefined }));
        res.on("error", reject);
        res.on("aborted", () => reject(new Error(`watch ${path}: stream cut`)));
      });
      // Bookmarks and the server's own timeout keep a healthy watch talking; silence means a
      // dead connection that TCP has not noticed.
      req.setTimeout(opts.idleMs, () =>
        req.destroy(new Error(`watch ${path}: no data for ${opts.idleMs} ms`)),
      );
      req.on("error", reject);
      req.end();
    });
  }
}
