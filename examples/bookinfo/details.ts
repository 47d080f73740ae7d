/**
 * bookinfo `details`: the book's metadata as JSON.
 *
 *   GET /details/<id>   → {"id":0,"author":...,"ISBN-13":...}
 *   GET /health         → {"status":"Details is healthy"}
 *
 * Env: PORT (9080), HOST, ACCESS_LOG, SHUTDOWN_GRACE_MS.
 */
import { EnvReader, runMain, serverSettings } from "../common/env.ts";
import type { ServerSettings } from "../common/env.ts";
import { listenHttp } from "../common/http-app.ts";
import type { Handler, RunningHttpApp } from "../common/http-app.ts";
import { AppLog } from "../common/log.ts";
import { sendJson, splitTarget } from "../common/respond.ts";
import { onShutdown } from "../common/shutdown.ts";
import { bookDetails, parseId } from "./catalog.ts";

export type DetailsConfig = ServerSettings;

export function loadDetailsConfig(env: NodeJS.ProcessEnv): DetailsConfig {
  const r = new EnvReader(env);
  const config = Object.freeze(serverSettings(r, 9080));
  r.done("details");
  return config;
}

export function detailsHandler(): Handler {
  return (req, res) => {
    const { path } = splitTarget(req.url);
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendJson(res, 405, { error: "method not allowed" }, { allow: "GET, HEAD" });
      return;
    }
    if (path === "/health" || path === "/healthz") {
      sendJson(res, 200, { status: "Details is healthy" });
      return;
    }
    const m = /^\/details\/([^/]+)$/.exec(path);
    if (m === null) {
      sendJson(res, 404, { error: "not found" });
      return;
    }
    const id = parseId(m[1]);
    if (id === undefined) {
      sendJson(res, 400, { error: "please provide numeric product id" });
      return;
    }
    sendJson(res, 200, bookDetails(id));
  };
}

export function startDetails(config: DetailsConfig, log: AppLog): Promise<RunningHttpApp> {
  return listenHttp({ log, host: config.host, port: config.port, handler: detailsHandler() });
}

if (import.meta.main) {
  runMain(async () => {
    const config = loadDetailsConfig(process.env);
    const log = new AppLog("details", { access: config.accessLog });
    const app = await startDetails(config, log);
    onShutdown(log, config.graceMs, () => app.close(config.graceMs));
  });
}
