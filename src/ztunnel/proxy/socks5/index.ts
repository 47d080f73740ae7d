/**
 * ztunnel's SOCKS5 front end (port 15080, opt-in): the handshake state machine and the server
 * that hands each CONNECT to the outbound flow.
 */
export { isValidHostname, Socks5Parser } from "./parser.ts";
export type { Socks5Handler, Socks5Target } from "./parser.ts";
export {
  encodeReply,
  METHOD_NO_AUTH,
  METHOD_NONE_ACCEPTABLE,
  replyCodeFor,
  SOCKS5_REPLY,
} from "./reply.ts";
export type { Socks5ReplyCode } from "./reply.ts";
export { Socks5Server } from "./server.ts";
export type {
  Socks5Destination,
  Socks5Info,
  Socks5Options,
  Socks5Outbound,
  Socks5Resolver,
} from "./server.ts";
