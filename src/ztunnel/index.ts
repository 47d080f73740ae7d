/**
 * ztunnel, the node proxy of ambient mode: its public face for the CLI and tests.
 *
 *   const code = await runZtunnel({ overrides: envFromFlags(args).value, proxies });
 *   // or, embedded: const app = await ZtunnelApp.start({ config: loadConfig(env), proxies });
 */
export {
  ZtunnelApp,
  type DedicatedProxyOptions,
  type ProxyFactory,
  type ZtunnelAddresses,
  type ZtunnelAppOptions,
} from "./app.ts";
export {
  loadConfig,
  parseConfig,
  type Env,
  type LoadConfigOptions,
  type LocalXdsSource,
  type ProxyMode,
  type RootCertSource,
  type TokenSource,
  type ZtunnelConfig,
} from "./config.ts";
export { ZTUNNEL_FLAGS, envFromFlags, formatFlagsHelp, type FlagSpec } from "./flags.ts";
export { runZtunnel, type RunOptions } from "./main.ts";
export type { AddressDemand, CertificateSource, ProxyConfig, ProxyInputs } from "./proxy/inputs.ts";
export { Readiness, readinessResponse, type ReadinessReport } from "./readiness.ts";
