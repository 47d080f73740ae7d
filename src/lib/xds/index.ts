/**
 * Delta ADS (envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources):
 * the protocol machinery the control plane (XdsServer) and ztunnel/waypoint (XdsClient) share.
 * The control plane plugs in resources and per-proxy views; proxies plug in per-type handlers.
 */
export { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, WORKLOAD_TYPE_URL } from "./type-urls.ts";
export {
  buildProxyNode,
  parseProxyInfo,
  proxyMetadataFromEnv,
  proxyNodeId,
  type NodeInit,
  type ProxyInfo,
  type ProxyNodeOptions,
} from "./node.ts";
export { formatRejections, parseRejections, type Rejection } from "./nack.ts";
export {
  Backoff,
  DEFAULT_INITIAL_BACKOFF_MS,
  DEFAULT_MAX_BACKOFF_MS,
  type BackoffOptions,
} from "./backoff.ts";

// Server
export { XdsServer, DEFAULT_DEBOUNCE_MS, DEFAULT_MAX_DELAY_MS } from "./server/server.ts";
export {
  contentVersion,
  storeResource,
  type ResourceInput,
  type ResourcePayload,
  type StoredResource,
} from "./server/resource.ts";
export { ResourceStore, type ResourceProvider } from "./server/store.ts";
export type { RejectedResource, SessionDebug } from "./server/session.ts";
export type {
  AckEvent,
  Authenticate,
  AuthenticateContext,
  AuthorizeProxy,
  CallAuthContext,
  ConnectionDebug,
  ConnectionEvent,
  DisconnectEvent,
  NackEvent,
  PushEvent,
  RefusedEvent,
  Select,
  SelectContext,
  TypeRegistration,
  TypeStats,
  XdsServerObserver,
  XdsServerOptions,
  XdsServerStats,
} from "./server/types.ts";

// Client
export {
  XdsClient,
  DEFAULT_CLUSTER_ID,
  DEFAULT_LOOKUP_TIMEOUT_MS,
  DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
} from "./client/client.ts";
export type { TypeHandler, XdsBatch, XdsUpdate } from "./client/handler.ts";
export {
  channelCredentials,
  parseXdsAddress,
  type XdsTarget,
  type XdsTlsOptions,
} from "./client/credentials.ts";
export { classifyTermination, type TerminationReason } from "./client/termination.ts";
export type {
  ClientAckEvent,
  ClientDebug,
  ClientNackEvent,
  ClientState,
  ClientTypeDebug,
  LookupOutcome,
  MessageEvent,
  TerminationEvent,
  XdsClientObserver,
  XdsClientOptions,
} from "./client/types.ts";
