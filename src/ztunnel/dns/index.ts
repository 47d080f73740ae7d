/**
 * ztunnel's DNS proxy (port 15053): answers A/AAAA for mesh names from the proxy state and
 * forwards everything else to the upstream resolvers. One DnsProxy per client workload (pod).
 */
export { DnsProxy, isValidHostname } from "./server.ts";
export type { DnsClientSource, DnsProxyOptions, HostLookup } from "./server.ts";
export { DNS_TTL_SECONDS, resolveQuestion } from "./resolver.ts";
export type {
  DnsClient,
  DnsMatch,
  DnsRecord,
  DnsStateView,
  Resolution,
  ResolveOptions,
} from "./resolver.ts";
export { DnsMetrics, DNS_METRIC_NAMES } from "./metrics.ts";
export type { DnsProtocol } from "./metrics.ts";
export {
  DEFAULT_RESOLV_CONF_PATH,
  kubernetesSearchDomains,
  parseResolvConf,
  readResolvConf,
} from "./resolv-conf.ts";
export type { ResolvConf, UpstreamServer } from "./resolv-conf.ts";
export { Forwarder } from "./forwarder.ts";
export type {
  ForwarderOptions,
  ForwardFailure,
  ForwardResult,
  UpstreamSource,
} from "./forwarder.ts";
export { hostSocketFactory, netnsSocketFactory, ZTUNNEL_MARK } from "./socket-factory.ts";
export type { NetnsSocketFactoryOptions, UpstreamSocketFactory } from "./socket-factory.ts";
