/**
 * DNS messages as the proxy handles them: reading a query safely (anything a client sends must
 * end in an answer, an error answer or a silent drop — never an exception past this module), and
 * building responses: local answers (with truncation for UDP), error answers echoing the raw
 * question, and the checks on upstream responses. Encoding and decoding are dns-packet's; this
 * module only reads the fixed 12-byte header and walks the first name to find where the
 * question ends.
 */
import * as dnsPacket from "dns-packet";
import type { Answer } from "dns-packet";
import type { DnsRecord } from "./resolver.ts";

export const HEADER_BYTES = 12;
/** The UDP payload every DNS client accepts (RFC 1035); more needs EDNS. */
export const CLASSIC_UDP_PAYLOAD = 512;
/** The most we answer over UDP even if a client advertises more. */
export const MAX_UDP_PAYLOAD = 4096;

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;
export type Rcode = (typeof RCODE)[keyof typeof RCODE];
/** Extended rcode 16 (RFC 6891): the upper 8 bits travel in the OPT record. */
export const BADVERS = 16;

const QR = 0x8000;
const AA = 0x0400;
const TC = 0x0200;
const RD = 0x0100;
const RA = 0x0080;
const CD = 0x0010;
const OPCODE_MASK = 0x7800;

export interface Edns {
  readonly udpPayloadSize: number;
  readonly version: number;
  readonly dnssecOk: boolean;
}

export interface Query {
  readonly id: number;
  /** The header flags word as received (opcode, RD, CD are echoed). */
  readonly flags: number;
  /** Question name as decoded (no trailing dot; "." for the root). */
  readonly name: string;
  /** Type mnemonic (`A`, `AAAA`, `UNKNOWN_65280`, ...). */
  readonly type: string;
  readonly class: string;
  /** Offset just past the question section in the raw message. */
  readonly questionEnd: number;
  readonly edns: Edns | undefined;
}

export type ParsedQuery =
  | { readonly kind: "query"; readonly query: Query }
  /** Answer with `reply` (FORMERR / NOTIMP); `reason` is for logs. */
  | {
      readonly kind: "reject";
      readonly rcode: Rcode | typeof BADVERS;
      readonly reply: Buffer;
      readonly reason: string;
    }
  /** Send nothing. */
  | { readonly kind: "drop"; readonly reason: string };

/**
 * Offset just past the name at `offset`, or -1 if it is malformed or runs off the end. Only
 * walks the labels (a compression pointer ends the name); decoding is dns-packet's.
 */
export function skipName(buf: Buffer, offset: number): number {
  let o = offset;
  for (let labels = 0; labels < 128; labels++) {
    if (o >= buf.length) return -1;
    const len = buf[o] as number;
    if (len === 0) return o + 1;
    if ((len & 0xc0) === 0xc0) return o + 2 <= buf.length ? o + 2 : -1;
    if ((len & 0xc0) !== 0) return -1;
    o += 1 + len;
  }
  return -1;
}

/**
 * A response carrying only the header (and the raw question when `questionEnd` is given):
 * QR set, opcode, RD and CD echoed, RA set, counts for the echoed question only.
 */
export function errorResponse(raw: Buffer, rcode: Rcode, questionEnd?: number): Buffer {
  const end = questionEnd ?? HEADER_BYTES;
  const out = Buffer.alloc(end);
  raw.copy(out, 0, 0, end);
  const flags = raw.readUInt16BE(2);
  out.writeUInt16BE(QR | (flags & (OPCODE_MASK | RD | CD)) | RA | rcode, 2);
  out.writeUInt16BE(questionEnd === undefined ? 0 : 1, 4);
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  return out;
}

/** BADVERS: header rcode 0, OPT with extended rcode 1 (16 >> 4) and our version, 0. */
function badVersResponse(raw: Buffer, questionEnd: number): Buffer {
  const head = errorResponse(raw, RCODE.NOERROR, questionEnd);
  head.writeUInt16BE(1, 10);
  // OPT: root name, TYPE 41, CLASS = our UDP size, TTL = ext-rcode | version | flags, RDLEN 0.
  const opt = Buffer.alloc(11);
  opt.writeUInt16BE(41, 1);
  opt.writeUInt16BE(MAX_UDP_PAYLOAD, 3);
  opt[5] = BADVERS >> 4;
  return Buffer.concat([head, opt]);
}

/** Reads one query. Never throws. */
export function parseQuery(raw: Buffer): ParsedQuery {
  if (raw.length < HEADER_BYTES) return { kind: "drop", reason: "shorter than a DNS header" };
  const flags = raw.readUInt16BE(2);
  // Answering a response could start a loop between two servers; say nothing.
  if ((flags & QR) !== 0) return { kind: "drop", reason: "a response, not a query" };
  const opcode = (flags & OPCODE_MASK) >> 11;
  if (opcode !== 0) {
    return {
      kind: "reject",
      rcode: RCODE.NOTIMP,
      reply: errorResponse(raw, RCODE.NOTIMP),
      reason: `opcode ${opcode} is not supported`,
    };
  }
  const qdcount = raw.readUInt16BE(4);
  if (qdcount !== 1) {
    return {
      kind: "reject",
      rcode: RCODE.FORMERR,
      reply: errorResponse(raw, RCODE.FORMERR),
      reason: `${qdcount} questions (exactly 1 expected)`,
    };
  }
  const nameEnd = skipName(raw, HEADER_BYTES);
  if (nameEnd === -1 || nameEnd + 4 > raw.length) {
    return {
      kind: "reject",
      rcode: RCODE.FORMERR,
      reply: errorResponse(raw, RCODE.FORMERR),
      reason: "malformed question",
    };
  }
  const questionEnd = nameEnd + 4;
  let decoded: dnsPacket.DecodedPacket;
  try {
    decoded = dnsPacket.decode(raw);
  } catch (err) {
    return {
      kind: "reject",
      rcode: RCODE.FORMERR,
      reply: errorResponse(raw, RCODE.FORMERR),
      reason: `malformed message: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
  const q = decoded.questions?.[0];
  if (q === undefined) {
    return {
      kind: "reject",
      rcode: RCODE.FORMERR,
      reply: errorResponse(raw, RCODE.FORMERR),
      reason: "no question",
    };
  }
  const klass = q.class ?? "IN";
  if (klass !== "IN") {
    return {
      kind: "reject",
      rcode: RCODE.NOTIMP,
      reply: errorResponse(raw, RCODE.NOTIMP, questionEnd),
      reason: `class ${klass} is not served (only IN)`,
    };
  }
  let edns: Edns | undefined;
  for (const a of decoded.additionals ?? []) {
    if (a.type !== "OPT") continue;
    if (edns !== undefined) {
      return {
        kind: "reject",
        rcode: RCODE.FORMERR,
        reply: errorResponse(raw, RCODE.FORMERR, questionEnd),
        reason: "more than one OPT record",
      };
    }
    edns = {
      udpPayloadSize: a.udpPayloadSize,
      version: a.ednsVersion,
      dnssecOk: a.flag_do,
    };
  }
  if (edns !== undefined && edns.version > 0) {
    return {
      kind: "reject",
      rcode: BADVERS,
      reply: badVersResponse(raw, questionEnd),
      reason: `EDNS version ${edns.version} (only 0 is supported)`,
    };
  }
  return {
    kind: "query",
    query: {
      id: decoded.id ?? 0,
      flags,
      name: q.name,
      type: q.type,
      class: klass,
      questionEnd,
      edns,
    },
  };
}

/** The largest UDP response `query`'s sender accepts. */
export function udpLimit(query: Query): number {
  if (query.edns === undefined) return CLASSIC_UDP_PAYLOAD;
  return Math.min(Math.max(query.edns.udpPayloadSize, CLASSIC_UDP_PAYLOAD), MAX_UDP_PAYLOAD);
}

/**
 * A local answer: authoritative, recursion available, the question echoed, the records, and an
 * OPT record when the query had one. With `maxBytes` (UDP), records that do not fit are dropped
 * from the end and TC is set, so the client retries over TCP.
 */
export function answerResponse(
  query: Query,
  records: readonly DnsRecord[],
  maxBytes?: number,
): Buffer {
  const additionals: Answer[] = [];
  if (query.edns !== undefined) {
    additionals.push({
      name: ".",
      type: "OPT",
      udpPayloadSize: Math.min(
        Math.max(query.edns.udpPayloadSize, CLASSIC_UDP_PAYLOAD),
        MAX_UDP_PAYLOAD,
      ),
      extendedRcode: 0,
      ednsVersion: 0,
      flags: query.edns.dnssecOk ? dnsPacket.DNSSEC_OK : 0,
      flag_do: query.edns.dnssecOk,
      options: [],
    });
  }
  const answers: Answer[] = records.map((r) => ({
    name: r.name,
    type: r.type,
    ttl: r.ttl,
    class: "IN",
    data: r.data,
  }));
  const packet: dnsPacket.Packet = {
    type: "response",
    id: query.id,
    flags: AA | (query.flags & (RD | CD)) | RA,
    questions: [{ name: query.name, type: query.type as dnsPacket.RecordType, class: "IN" }],
    answers,
    additionals,
  };
  if (maxBytes !== undefined && dnsPacket.encodingLength(packet) > maxBytes) {
    packet.flags = (packet.flags ?? 0) | TC;
    while (answers.length > 0 && dnsPacket.encodingLength(packet) > maxBytes) answers.pop();
  }
  return dnsPacket.encode(packet);
}

/** Whether the question sections are the same (names compared case-insensitively). */
function sameQuestion(a: Buffer, aEnd: number, b: Buffer): boolean {
  if (b.length < aEnd) return false;
  for (let i = HEADER_BYTES; i < aEnd; i++) {
    let x = a[i] as number;
    let y = b[i] as number;
    if (x >= 65 && x <= 90) x += 32;
    if (y >= 65 && y <= 90) y += 32;
    if (x !== y) return false;
  }
  return true;
}

/**
 * Whether `response` answers the query we sent (`sent`, with id `id`): a response with that id,
 * and — when it echoes a question — the same question. Anything else is ignored (a late answer
 * to an earlier attempt, or spoofing).
 */
export function isResponseTo(
  response: Buffer,
  sent: Buffer,
  questionEnd: number,
  id: number,
): boolean {
  if (response.length < HEADER_BYTES) return false;
  if (response.readUInt16BE(0) !== id) return false;
  if ((response.readUInt16BE(2) & QR) === 0) return false;
  const qd = response.readUInt16BE(4);
  if (qd === 0) return true;
  return qd === 1 && sameQuestion(sent, questionEnd, response);
}

export function isTruncated(response: Buffer): boolean {
  return response.length >= HEADER_BYTES && (response.readUInt16BE(2) & TC) !== 0;
}

export function rcodeOf(response: Buffer): number {
  return response.length >= HEADER_BYTES ? response.readUInt16BE(2) & 0x000f : -1;
}

/** A copy of `raw` with another message id. */
export function withId(raw: Buffer, id: number): Buffer {
  const out = Buffer.from(raw);
  out.writeUInt16BE(id, 0);
  return out;
}

/**
 * An empty truncated response to `raw` (header and question, TC set): for an upstream answer
 * too big for the client's UDP limit, so the client retries over TCP.
 */
export function truncatedResponse(raw: Buffer, questionEnd: number): Buffer {
  const out = errorResponse(raw, RCODE.NOERROR, questionEnd);
  out.writeUInt16BE(out.readUInt16BE(2) | TC, 2);
  return out;
}

/**
 * The addresses of type `type` in a response's answer section (first one first), or the reason
 * there are none. Used by callers that need an IP rather than a message (SOCKS5).
 */
export function addressesIn(
  response: Buffer,
  type: "A" | "AAAA",
): { ok: true; addresses: string[] } | { ok: false; rcode: number } {
  let decoded: dnsPacket.DecodedPacket;
  try {
    decoded = dnsPacket.decode(response);
  } catch {
    return { ok: false, rcode: RCODE.SERVFAIL };
  }
  const rcode = rcodeOf(response);
  const addresses: string[] = [];
  for (const a of decoded.answers ?? []) {
    if (a.type === type && typeof a.data === "string") addresses.push(a.data);
  }
  if (addresses.length === 0) return { ok: false, rcode };
  return { ok: true, addresses };
}
