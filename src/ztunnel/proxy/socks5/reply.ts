/**
 * SOCKS5 replies (RFC 1928 §6). ztunnel always reports the bound address as 0.0.0.0:0; clients
 * ignore it for CONNECT.
 */
import { errnoCode } from "../../../lib/errors.ts";

export const SOCKS5_REPLY = {
  succeeded: 0,
  generalFailure: 1,
  notAllowed: 2,
  networkUnreachable: 3,
  hostUnreachable: 4,
  connectionRefused: 5,
  ttlExpired: 6,
  commandNotSupported: 7,
  addressTypeNotSupported: 8,
} as const;

export type Socks5ReplyCode = (typeof SOCKS5_REPLY)[keyof typeof SOCKS5_REPLY];

/** `05 00`: no authentication required (the only method ztunnel accepts). */
export const METHOD_NO_AUTH = Buffer.from([0x05, 0x00]);
/** `05 FF`: no acceptable method; the client must close. */
export const METHOD_NONE_ACCEPTABLE = Buffer.from([0x05, 0xff]);

const replies = new Map<number, Buffer>();

/** `VER REP RSV ATYP=1 BND.ADDR=0.0.0.0 BND.PORT=0` (shared, never mutated). */
export function encodeReply(code: Socks5ReplyCode): Buffer {
  let b = replies.get(code);
  if (b === undefined) {
    b = Buffer.from([0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
    replies.set(code, b);
  }
  return b;
}

function isReplyCode(v: unknown): v is Socks5ReplyCode {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 8;
}

/**
 * The reply for a failure to reach the target: a reply code as is, else from the errno
 * (ECONNREFUSED -> 5, ENETUNREACH -> 3, EHOSTUNREACH/ETIMEDOUT/ENOTFOUND -> 4, EACCES/EPERM -> 2),
 * else general failure.
 */
export function replyCodeFor(reason: unknown): Socks5ReplyCode {
  if (isReplyCode(reason)) return reason;
  switch (errnoCode(reason) ?? "") {
    case "ECONNREFUSED":
      return SOCKS5_REPLY.connectionRefused;
    case "ENETUNREACH":
      return SOCKS5_REPLY.networkUnreachable;
    case "EHOSTUNREACH":
    case "EHOSTDOWN":
    case "ETIMEDOUT":
    case "ENOTFOUND":
      return SOCKS5_REPLY.hostUnreachable;
    case "EACCES":
    case "EPERM":
      return SOCKS5_REPLY.notAllowed;
    default:
      return SOCKS5_REPLY.generalFailure;
  }
}
