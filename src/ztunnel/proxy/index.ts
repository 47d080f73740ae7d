/**
 * ztunnel's data path (INTEROP §1, §2): per-pod proxies — outbound capture (15001), inbound HBONE
 * (15008), inbound plaintext (15006), DNS (15053), SOCKS5 (15080) — built from the one bundle of
 * `ProxyInputs`, with the pure planners in `plan/` and the L4 telemetry in `../telemetry`.
 *
 * Composition (ztunnel's root):
 *   const state = new InpodStateManager({ startProxy: (req) => startInpodProxy(inputs, req), ... });
 *   // dedicated mode (PROXY_MODE=dedicated): await startDedicatedProxy(inputs, { workloadInfo })
 *   // config_dump: handle.connections(); shutdown: handle.stop("graceful")
 */
import { closeFd, CURRENT_NETNS_PATH, openNetns } from "../../lib/net/index.ts";
import type { StartProxyRequest } from "../inpod/index.ts";
import type { WorkloadInfo } from "../state/index.ts";
import type { ProxyInputs } from "./inputs.ts";
import { WorkloadProxy, type ProxyStartOptions } from "./workload-proxy.ts";

export type { CertificateSource, ProxyConfig, ProxyInputs } from "./inputs.ts";
export {
  WorkloadProxy,
  type ProxyStartOptions,
  type WorkloadProxyStats,
  type WorkloadProxyTarget,
} from "./workload-proxy.ts";
export type { ConnectionsDump } from "./connection-tracker.ts";
export { encodeProxyHeaderV2, PP2_TYPE_PEER_IDENTITY } from "./proxy-protocol.ts";
export type { HostnameResolver } from "./workload-dns.ts";

/**
 * Starts the proxy of one enrolled pod inside its network namespace (the InpodStateManager's
 * `StartProxy`). The netns fd stays the caller's; it is not used once `stop()` has resolved.
 * Rejects, with nothing left open, if a listener cannot be made.
 */
export async function startInpodProxy(
  inputs: ProxyInputs,
  request: StartProxyRequest,
  options?: ProxyStartOptions,
): Promise<WorkloadProxy> {
  const proxy = new WorkloadProxy(inputs, request, options);
  await proxy.start();
  return proxy;
}

export interface DedicatedProxyRequest {
  /** `PROXY_WORKLOAD_INFO` (`namespace/name/serviceAccount`), parsed. */
  readonly workloadInfo: WorkloadInfo;
}

/**
 * Dedicated mode (`PROXY_MODE=dedicated`): ztunnel serves one workload from inside that
 * workload's own network namespace, so the listeners and connections are made right here. Same
 * proxy as in-pod mode, on ztunnel's own namespace.
 */
export async function startDedicatedProxy(
  inputs: ProxyInputs,
  request: DedicatedProxyRequest,
  options?: ProxyStartOptions,
): Promise<WorkloadProxy> {
  const fd = openNetns(CURRENT_NETNS_PATH);
  const info = request.workloadInfo;
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    closeFd(fd);
  };
  const proxy = new WorkloadProxy(
    inputs,
    {
      uid: `dedicated/${info.namespace}/${info.name}`,
      workloadInfo: info,
      netnsFd: fd,
      onStopped: release,
    },
    options,
  );
  await proxy.start();
  return proxy;
}
