/**
 * HBONE: the mutual-TLS HTTP/2 CONNECT tunnel between ztunnels and waypoints (INTEROP §1).
 * `HboneServer` terminates tunnels (inbound, port 15008); `HboneClient` opens them through a
 * connection pool (outbound). Bytes are moved with `copyBidirectional` from `../net/copy.ts`.
 */
export {
  canonicalIPv6,
  formatAuthority,
  parseAuthority,
  socketAddress,
  type Authority,
} from "./authority.ts";
export {
  HboneClient,
  type CertificateProvider,
  type ConnectOptions,
  type HboneClientOptions,
  type Tunnel,
} from "./client.ts";
export { defaultDialer, type DialTarget, type Dialer } from "./connection.ts";
export { HboneError, isHboneError, type HboneErrorCode } from "./errors.ts";
export {
  acceptTraceparent,
  formatBaggage,
  formatForwarded,
  newTraceparent,
  parseBaggage,
  parseForwarded,
  type Forwarded,
} from "./headers.ts";
export { type HbonePoolStats } from "./pool.ts";
export { PoolState, poolKeyId, type PoolKey, type PooledConnection } from "./pool-state.ts";
export { parseConnectRequest, type BadRequest, type ConnectRequest } from "./request.ts";
export {
  HboneServer,
  type Address,
  type HboneServerOptions,
  type HboneServerStats,
  type InboundDecision,
  type InboundHook,
  type InboundRequest,
  type ServerCertificate,
} from "./server.ts";
export {
  HBONE_PORT,
  clientCopyOptions,
  clientSessionOptions,
  defaultClientTuning,
  defaultServerTuning,
  serverCopyOptions,
  serverSessionOptions,
  tlsVersionOptions,
  type ClientTuning,
  type Http2Tuning,
  type ServerTuning,
  type TlsPolicy,
} from "./settings.ts";
