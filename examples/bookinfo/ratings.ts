/**
 * bookinfo `ratings`: star ratings per reviewer.
 *
 *   GET  /ratings/<id>   → {"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}
 *   POST /ratings/<id>   body {"Reviewer1":3} → stores and returns the product's ratings
 *   GET  /health         → {"status":"Ratings is healthy"}
 *
 * Env: PORT (9080), HOST, ACCESS_LOG, SHUTDOWN_GRACE_MS.
 */
import { EnvReader, runMain, serverSettings } from "../common/env.ts";
import type { ServerSettings } from "../common/env.ts";
import { listenHttp } from "../common/http-app.ts";
import type { Handler, RunningHttpApp } from "../common/http-app.ts";
import { AppLog } from "../common/log.ts";
import { closeIfHttp1, readBody, sendJson, splitTarget } from "../common/respond.ts";
import { onShutdown } from "../common/shutdown.ts";
import { DEFAULT_RATINGS, parseId } from "./catalog.ts";

export type RatingsConfig = ServerSettings;

// Posted ratings live in memory; the cap keeps a loop of POSTs from growing the process forever.
const MAX_STORED_PRODUCTS = 1000;
const MAX_POST_BODY = 16 * 1024;

export function loadRatingsConfig(env: NodeJS.ProcessEnv): RatingsConfig {
  const r = new EnvReader(env);
  const config = Object.freeze(serverSettings(r, 9080));
  r.done("ratings");
  return config;
}

/** Validates a posted ratings object: reviewer name → whole stars 1..5. */
export function parseRatings(text: string): Record<string, number> | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return "body is not JSON";
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    return 'expected an object such as {"Reviewer1": 5}';
  }
  const out: Record<string, number> = {};
  for (const [k, stars] of Object.entries(v)) {
    if (!Number.isInteger(stars) || (stars as number) < 1 || (stars as number) > 5) {
      return `rating of ${k} must be a whole number of stars from 1 to 5`;
    }
    out[k] = stars as number;
  }
  return out;
}

export function ratingsHandler(): Handler {
  const stored = new Map<number, Record<string, number>>();
  return (req, res) => {
    const { path } = splitTarget(req.url);
    if (path === "/health" || path === "/healthz") {
      sendJson(res, 200, { status: "Ratings is healthy" });
      return;
    }
    const m = /^\/ratings\/([^/]+)$/.exec(path);
    if (m === null) {
      sendJson(res, 404, { error: "not found" });
      return;
    }
    const id = parseId(m[1]);
    if (id === undefined) {
      sendJson(res, 400, { error: "please provide numeric product ID" });
      return;
    }
    if (req.method === "GET" || req.method === "HEAD") {
      sendJson(res, 200, { id, ratings: stored.get(id) ?? DEFAULT_RATINGS });
      return;
    }
    if (req.method !== "POST") {
      sendJson(res, 405, { error: "method not allowed" }, { allow: "GET, HEAD, POST" });
      return;
    }
    return readBody(req, MAX_POST_BODY).then((body) => {
      if (!body.ok) {
        sendJson(res, body.status, { error: body.reason }, closeIfHttp1(req));
        return;
      }
      const parsed = parseRatings(body.body.toString());
      if (typeof parsed === "string") {
        sendJson(res, 400, { error: parsed });
        return;
      }
      if (!stored.has(id) && stored.size >= MAX_STORED_PRODUCTS) {
        sendJson(res, 507, {
          error: `ratings are kept for at most ${MAX_STORED_PRODUCTS} products`,
        });
        return;
      }
      const merged = { ...(stored.get(id) ?? DEFAULT_RATINGS), ...parsed };
      stored.set(id, merged);
      sendJson(res, 200, { id, ratings: merged });
    });
  };
}

export function startRatings(config: RatingsConfig, log: AppLog): Promise<RunningHttpApp> {
  return listenHttp({ log, host: config.host, port: config.port, handler: ratingsHandler() });
}

if (import.meta.main) {
  runMain(async () => {
    const config = loadRatingsConfig(process.env);
    const log = new AppLog("ratings", { access: config.accessLog });
    const app = await startRatings(config, log);
    onShutdown(log, config.graceMs, () => app.close(config.graceMs));
  });
}
