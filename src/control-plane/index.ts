/**
 * The control plane (istiod's role): configuration in, `istio.workload.Address` and
 * `istio.security.Authorization` out over Delta ADS, workload certificates signed by the CA
 * service — both on the gRPC TLS port (15012) — and metrics/debug on HTTP (15014).
 *
 *   const plane = await ControlPlane.start(loadConfig(["--config-dir", dir]));
 *   plane.grpcPort; plane.rootCertPem; plane.nodeTokenPath("node-a");
 *   await plane.stop();
 */
export { ControlPlane, type ControlPlaneInputs } from "./app.ts";
export {
  FLAGS,
  flagHelp,
  loadConfig,
  parseDuration,
  type ConfigSourceSetting,
  type ControlPlaneConfig,
  type HostPort,
} from "./config.ts";
export { runControlPlane } from "./main.ts";
export { LocalTokenAuthority, TOKEN_ISSUER, NODE_TOKEN_TTL_SECONDS } from "./auth/local-tokens.ts";
export type { Caller } from "./auth/caller.ts";
export type { GatewayStatusAddress, WaypointDeployer } from "./status/waypoint-status.ts";
