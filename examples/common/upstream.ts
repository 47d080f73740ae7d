/**
 * GET requests from one sample app to another (productpage → details, reviews → ratings) with a
 * deadline, a body size cap and pooled keep-alive connections. Failures are values: the caller
 * decides how to degrade.
 */
import http from "node:http";

export type UpstreamResult =
  | { readonly ok: true; readonly status: number; readonly body: string }
  | { readonly ok: false; readonly reason: string };

export interface GetOptions {
  readonly headers: http.OutgoingHttpHeaders;
  readonly timeoutMs: number;
  readonly agent: http.Agent;
}

// Answers between the sample services are a few KiB; anything far larger is a bug upstream.
const MAX_BODY = 1024 * 1024;

export function createAgent(): http.Agent {
  // LIFO keeps reusing the most recently used (warm) connection instead of cycling all of them.
  return new http.Agent({ keepAlive: true, maxSockets: 256, scheduling: "lifo" });
}

function errorCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
    ? err.code
    : undefined;
}

function once(url: URL, opts: GetOptions): Promise<UpstreamResult & { staleSocket?: boolean }> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: UpstreamResult & { staleSocket?: boolean }): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const req = http.get(url, { headers: opts.headers, agent: opts.agent }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) {
          req.destroy();
          finish({ ok: false, reason: `response from ${url.host} larger than ${MAX_BODY} bytes` });
          return;
        }
        chunks.push(c);
      });
      res.on("end", () => {
        finish({ ok: true, status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() });
      });
      res.on("error", (err) => finish({ ok: false, reason: `${url.host}: ${err.message}` }));
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish({ ok: false, reason: `${url.host} did not answer within ${opts.timeoutMs} ms` });
    }, opts.timeoutMs);
    req.on("error", (err) => {
      const code = errorCode(err);
      finish({
        ok: false,
        reason: `${url.host}: ${code ?? err.message}`,
        // A kept-alive connection the server closed meanwhile: safe to retry a GET once.
        staleSocket: req.reusedSocket && (code === "ECONNRESET" || code === "EPIPE"),
      });
    });
  });
}

export async function httpGet(url: string, opts: GetOptions): Promise<UpstreamResult> {
  const u = new URL(url);
  const first = await once(u, opts);
  if (first.ok || first.staleSocket !== true) return first;
  return once(u, opts);
}
