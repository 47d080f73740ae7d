/**
 * The xDS client ztunnel runs (istio/ztunnel `xds/client.rs` configured by `app.rs`): Delta ADS to
 * `XDS_ADDRESS` over TLS with `XDS_ROOT_CA` (re-read per connection), `ALT_XDS_HOSTNAME`, the
 * `AUTH_TOKEN` bearer token (re-read per connection), `clusterid` and `XDS_HEADER_*`; the node
 * built from the pod's env and `ISTIO_META_*`; Address (on demand with `XDS_ON_DEMAND`) and
 * Authorization (always wildcard) applied to the ProxyState; the xDS metrics on the registry.
 */
import type { Registry } from "prom-client";
import type { LogOutput } from "../../lib/log/index.ts";
import type { Timers } from "../../lib/timers.ts";
import {
  XdsClient,
  buildProxyNode,
  type BackoffOptions,
  type XdsTlsOptions,
} from "../../lib/xds/index.ts";
import type { ZtunnelConfig } from "../config.ts";
import { readRootCert, tokenReader } from "../credentials.ts";
import type { ProxyState } from "../state/index.ts";
import { addressHandler, authorizationHandler } from "./handlers.ts";
import { createXdsMetrics } from "./metrics.ts";

export function createZtunnelXdsClient(options: {
  readonly address: string;
  readonly config: ZtunnelConfig;
  readonly state: ProxyState;
  readonly registry: Registry;
  readonly logOutput: LogOutput;
  readonly backoff?: BackoffOptions;
  readonly timers?: Timers;
}): XdsClient {
  const { config, state } = options;
  const log = options.logOutput.logger("xds");
  const altHostname = config.altXdsHostname;
  return new XdsClient({
    address: options.address,
    tls: async (): Promise<XdsTlsOptions> => {
      const rootCertsPem = await readRootCert(config.xdsRootCert, "XDS_ROOT_CA");
      return {
        ...(rootCertsPem !== undefined ? { rootCertsPem } : {}),
        ...(altHostname !== undefined ? { altHostname } : {}),
      };
    },
    token: tokenReader(config.auth),
    clusterId: config.clusterId,
    headers: config.xdsHeaders,
    node: buildProxyNode({
      // ztunnel announces 1.1.1.1 when it does not know its IP.
      instanceIp: config.instanceIp === "" ? "1.1.1.1" : config.instanceIp,
      podName: config.podName,
      podNamespace: config.podNamespace,
      nodeName: config.nodeName ?? "",
      metadata: config.proxyMetadata,
      jsonMetadata: config.jsonMetadata,
    }),
    onDemand: config.xdsOnDemand,
    handlers: [addressHandler(state, log), authorizationHandler(state)],
    observer: createXdsMetrics(options.registry),
    logger: log,
    ...(options.backoff !== undefined ? { backoff: options.backoff } : {}),
    ...(options.timers !== undefined ? { timers: options.timers } : {}),
  });
}
