/**
 * client sample: the "sleep"/"curl" pod of Istio's samples. It stays up and does nothing, so that
 * commands can run in its pod's network namespace, e.g.
 *
 *   ambient exec bookinfo/client -- curl -s http://productpage:9080/productpage
 *
 * SIGTERM or SIGINT ends it at once with status 0.
 *
 * Optionally it also sends steady demo traffic: with TARGET_URL set it GETs that URL every
 * INTERVAL_MS (1000) and logs one line per request (status and time taken).
 */
import http from "node:http";
import { EnvReader, runMain } from "../common/env.ts";
import { AppLog } from "../common/log.ts";

export interface ClientConfig {
  readonly targetUrl: string | undefined;
  readonly intervalMs: number;
}

export function loadClientConfig(env: NodeJS.ProcessEnv): ClientConfig {
  const r = new EnvReader(env);
  const target = r.string("TARGET_URL", "");
  const config: ClientConfig = {
    targetUrl: target === "" ? undefined : r.httpUrl("TARGET_URL", target),
    intervalMs: r.int("INTERVAL_MS", 1000, 10, 3_600_000),
  };
  r.done("client");
  return Object.freeze(config);
}

function probe(url: string, timeoutMs: number, log: AppLog, agent: http.Agent): Promise<void> {
  return new Promise((resolve) => {
    const start = performance.now();
    const ms = (): number => Math.round((performance.now() - start) * 10) / 10;
    const req = http.get(url, { agent, timeout: timeoutMs }, (res) => {
      res.resume();
      res.once("end", () => {
        log.access("request", { url, status: res.statusCode, duration_ms: ms() });
        resolve();
      });
      res.once("error", () => resolve());
    });
    req.once("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.once("error", (err) => {
      log.access("request", { url, error: err.message, duration_ms: ms() });
      resolve();
    });
  });
}

if (import.meta.main) {
  runMain(() => {
    const config = loadClientConfig(process.env);
    const log = new AppLog("client");
    // Nothing else keeps the event loop alive when there is no traffic to send.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    const stop = (signal: NodeJS.Signals): void => {
      clearInterval(keepAlive);
      log.info("exiting", { signal });
      log.flush();
      process.exit(0);
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    log.info("ready", { pid: process.pid, target: config.targetUrl ?? "none" });

    const target = config.targetUrl;
    if (target !== undefined) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      let inFlight = false;
      setInterval(() => {
        // One request at a time: a slow target gets fewer requests, never a pile-up.
        if (inFlight) return;
        inFlight = true;
        void probe(target, Math.max(config.intervalMs, 5000), log, agent).then(() => {
          inFlight = false;
        });
      }, config.intervalMs);
    }
  });
}
