/**
 * ztunnel's operator endpoints: admin (config_dump, logging, quitquitquit), metrics and
 * readiness servers, and the config_dump builder.
 */
export { adminHandler, type AdminDeps } from "./admin.ts";
export {
  buildConfigDump,
  configJson,
  policyJson,
  serviceJson,
  workloadJson,
  type ConfigDumpInput,
} from "./config-dump.ts";
export {
  send,
  startHttpServer,
  type HttpAnswer,
  type HttpHandler,
  type RunningHttpServer,
} from "./http.ts";
export { handleLogging, mergeLevelSpec } from "./logging.ts";
export { createZtunnelRegistry, metricsHandler } from "./metrics.ts";
