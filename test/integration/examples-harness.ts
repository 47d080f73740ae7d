/**
 * Runs the sample apps of examples/ as child processes for the examples-*.test.ts files, the way
 * `ambient up` does (node <file> from the repository root, settings in env), and small HTTP/TCP
 * clients to talk to them.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import net from "node:net";
import { join } from "node:path";

export const repoRoot = join(import.meta.dirname, "..", "..");

export interface AppProcess {
  readonly child: ChildProcess;
  /** Ports from the app's `listening` lines, in order. */
  readonly ports: number[];
  /** Every stdout line so far. */
  readonly lines: string[];
  readonly stderr: () => string;
  /** Resolves with the first stdout line matching `re` (waits for it to appear). */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

const running = new Set<ChildProcess>();

// Backstop: if a test file dies early, do not leave sample apps behind.
process.once("exit", () => {
  for (const c of running) c.kill("SIGKILL");
});

/**
 * Starts `node <file> ...args` with HOST=127.0.0.1 and PORT=0 unless `env` says otherwise, and
 * waits for `listeners` listening lines (0 to not wait).
 */
export async function startApp(
  file: string,
  env: Record<string, string> = {},
  opts: { args?: readonly string[]; listeners?: number } = {},
): Promise<AppProcess> {
  const child = spawn(process.execPath, [file, ...(opts.args ?? [])], {
    cwd: repoRoot,
    env: { PATH: process.env["PATH"] ?? "", HOST: "127.0.0.1", PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  void exited.then(() => running.delete(child));

  const lines: string[] = [];
  const ports: number[] = [];
  // Conditions waited on; each is checked again whenever a stdout line arrives.
  const waiters = new Set<() => void>();
  let partial = "";
  let err = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (s: string) => {
    err += s;
  });
  child.stdout.on("data", (s: string) => {
    partial += s;
    let nl: number;
    while ((nl = partial.indexOf("\n")) !== -1) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      lines.push(line);
      const m = /\tlistening host=\S+ port=(\d+)/.exec(line);
      if (m) ports.push(Number(m[1]));
    }
    for (const w of [...waiters]) w();
  });

  function waitUntil<T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    const now = check();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(poll);
        child.off("exit", onExit);
      };
      const poll = (): void => {
        const v = check();
        if (v !== undefined) {
          done();
          resolve(v);
        }
      };
      const onExit = (): void => {
        done();
        reject(
          new Error(`${file} exited before ${what}; stdout:\n${lines.join("\n")}\nstderr:\n${err}`),
        );
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `${file}: no ${what} within ${timeoutMs} ms; stdout:\n${lines.join("\n")}\nstderr:\n${err}`,
          ),
        );
      }, timeoutMs);
      waiters.add(poll);
      child.once("exit", onExit);
    });
  }

  const app: AppProcess = {
    child,
    ports,
    lines,
    stderr: () => err,
    waitForLine(re, timeoutMs = 15_000) {
      return waitUntil(() => lines.find((l) => re.test(l)), `line matching ${re}`, timeoutMs);
    },
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      const [code] = await exited;
      clearTimeout(timer);
      return code;
    },
  };

  const want = opts.listeners ?? 1;
  try {
    await waitUntil(
      () => (ports.length >= want ? true : undefined),
      `${want} listening line(s)`,
      15_000,
    );
  } catch (e) {
    await app.stop(1000);
    throw e;
  }
  return app;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly text: string;
  json<T = Record<string, unknown>>(): T;
}

/** One HTTP/1.1 request on a fresh connection. */
export function request(
  port: number,
  path: string,
  opts: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string | Buffer } = {},
): Promise<HttpAnswer> {
  const headers: http.OutgoingHttpHeaders = { ...opts.headers };
  // Explicit framing: Node does not add one for a DELETE or OPTIONS body on its own.
  if (opts.body !== undefined) headers["content-length"] = Buffer.byteLength(opts.body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, path, method: opts.method ?? "GET", headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          const text = body.toString();
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text,
            json: <T>() => JSON.parse(text) as T,
          });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.setTimeout(20_000, () => req.destroy(new Error(`no answer to ${path} within 20 s`)));
    req.end(opts.body);
  });
}

/** A port nothing listens on (bound, then released). */
export async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
