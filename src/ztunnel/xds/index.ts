/**
 * ztunnel's view of the mesh from xDS: the handlers that apply Address and Authorization
 * resources to the ProxyState, the xDS metrics, and static mode's local config.
 */
export { addressHandler, authorizationHandler } from "./handlers.ts";
export { XDS_METRIC_NAMES, createXdsMetrics } from "./metrics.ts";
export { loadLocalXds, type LoadedLocalXds } from "./local.ts";
export { createZtunnelXdsClient } from "./client.ts";
