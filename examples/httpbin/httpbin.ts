/**
 * httpbin-like sample: an HTTP request-and-response service for trying routing, policy, faults
 * and telemetry. Speaks HTTP/1.1 and HTTP/2 cleartext (prior knowledge) on one port. See
 * routes.ts for the endpoints.
 *
 * Env: PORT (8080; the Service exposes 8000 like Istio's sample), HOST, H2C (true), ACCESS_LOG,
 * SHUTDOWN_GRACE_MS.
 */
import { EnvReader, runMain, serverSettings } from "../common/env.ts";
import type { ServerSettings } from "../common/env.ts";
import { listenHttp } from "../common/http-app.ts";
import type { RunningHttpApp } from "../common/http-app.ts";
import { AppLog } from "../common/log.ts";
import { onShutdown } from "../common/shutdown.ts";
import { httpbinHandler } from "./routes.ts";

export interface HttpbinConfig extends ServerSettings {
  readonly h2c: boolean;
}

export function loadHttpbinConfig(env: NodeJS.ProcessEnv): HttpbinConfig {
  const r = new EnvReader(env);
  const config: HttpbinConfig = { ...serverSettings(r, 8080), h2c: r.bool("H2C", true) };
  r.done("httpbin");
  return Object.freeze(config);
}

export function startHttpbin(config: HttpbinConfig, log: AppLog): Promise<RunningHttpApp> {
  return listenHttp({
    log,
    host: config.host,
    port: config.port,
    handler: httpbinHandler(),
    h2c: config.h2c,
  });
}

if (import.meta.main) {
  runMain(async () => {
    const config = loadHttpbinConfig(process.env);
    const log = new AppLog("httpbin", { access: config.accessLog });
    const app = await startHttpbin(config, log);
    onShutdown(log, config.graceMs, () => app.close(config.graceMs));
  });
}
