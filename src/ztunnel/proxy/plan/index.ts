/**
 * ztunnel's decision planners: pure functions from (state, connection facts) to a plan value.
 * No sockets, timers or I/O; the proxies execute the plans.
 */
export {
  DEFAULT_ILLEGAL_PORTS,
  HBONE_PORT,
  formatAddr,
  seededRng,
  type ResponseFlag,
  type Rng,
  type SocketAddr,
} from "./common.ts";
export {
  planOutbound,
  type DoubleHboneInner,
  type OutboundConfig,
  type OutboundConnect,
  type OutboundInput,
  type OutboundNeedsDns,
  type OutboundPassthrough,
  type OutboundPlan,
  type OutboundRefusalCode,
  type OutboundRefused,
} from "./outbound.ts";
export {
  guessInboundService,
  parseAuthority,
  planInbound,
  planInboundPlaintext,
  type HboneTarget,
  type InboundAccept,
  type InboundConfig,
  type InboundInput,
  type InboundPlaintextAccept,
  type InboundPlaintextInput,
  type InboundPlaintextPlan,
  type InboundPlaintextRefused,
  type InboundPlan,
  type InboundRefusalCode,
  type InboundRefused,
  type TunnelRequest,
} from "./inbound.ts";
export { localityRank, type DnsLookup, type ResolutionMode, type Upstream } from "./upstream.ts";
