/**
 * The SOCKS5 handshake as a state machine over incoming chunks (RFC 1928, the subset ztunnel
 * serves, INTEROP §2.5). Chunk boundaries are arbitrary: fields are collected in a fixed scratch
 * buffer (a field is at most 255 bytes, so nothing grows), and a chunk may carry the greeting,
 * the request and the first application bytes at once.
 *
 *   greeting  VER=5 NMETHODS METHODS...        -> 05 00 when method 0 (no auth) is offered, else 05 FF
 *   request   VER=5 CMD=1 RSV ATYP ADDR PORT   -> CONNECT to an IPv4, IPv6 or domain target
 *
 * Errors: a greeting that is not version 5 is dropped without a reply (the peer is not a SOCKS5
 * client); other errors answer the reply code RFC 1928 defines (7 for BIND / UDP ASSOCIATE,
 * 8 for an unknown address type, 4 for a domain that cannot be a hostname, 1 otherwise).
 */
import { formatIp } from "../../../lib/net/index.ts";
import { encodeReply, METHOD_NONE_ACCEPTABLE, SOCKS5_REPLY } from "./reply.ts";

export type Socks5Target =
  | { readonly kind: "ip"; readonly ip: string; readonly family: 4 | 6; readonly port: number }
  | { readonly kind: "domain"; readonly hostname: string; readonly port: number };

export interface Socks5Handler {
  /** The greeting offered "no authentication": write `05 00` (METHOD_NO_AUTH). */
  onMethodSelected(): void;
  /** A CONNECT request is complete; `rest` holds the bytes after it in this chunk. */
  onRequest(target: Socks5Target, rest: Buffer): void;
  /** The handshake failed: write `reply` (may be empty) and close. */
  onReject(reply: Buffer, reason: string): void;
}

type State =
  | "greeting"
  | "methods"
  | "request"
  | "ipv4"
  | "ipv6"
  | "domain-length"
  | "domain"
  | "port"
  | "done";

const COMMANDS: Record<number, string> = { 1: "CONNECT", 2: "BIND", 3: "UDP ASSOCIATE" };
const LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** Whether `name` can be resolved as a hostname (1..253 chars, labels of 1..63 LDH chars). */
export function isValidHostname(name: string): boolean {
  const n = name.endsWith(".") ? name.slice(0, -1) : name;
  return n.length > 0 && n.length <= 253 && n.split(".").every((l) => LABEL.test(l));
}

export class Socks5Parser {
  #state: State = "greeting";
  readonly #scratch = Buffer.alloc(255);
  #need = 2;
  #have = 0;
  #host:
    { kind: "ip"; ip: string; family: 4 | 6 } | { kind: "domain"; hostname: string } | undefined;
  #consumed = 0;

  /** Handshake bytes consumed so far. */
  get consumed(): number {
    return this.#consumed;
  }

  get done(): boolean {
    return this.#state === "done";
  }

  /** Feeds a chunk; calls the handler as steps complete. After a request or a reject, ignores input. */
  push(chunk: Buffer, handler: Socks5Handler): void {
    let o = 0;
    while (o < chunk.length && this.#state !== "done") {
      const take = Math.min(this.#need - this.#have, chunk.length - o);
      chunk.copy(this.#scratch, this.#have, o, o + take);
      this.#have += take;
      o += take;
      this.#consumed += take;
      if (this.#have < this.#need) return;
      this.#have = 0;
      this.#field(handler);
      if (this.done && this.#host !== undefined) {
        const port = this.#scratch.readUInt16BE(0);
        const h = this.#host;
        const target: Socks5Target =
          h.kind === "ip"
            ? { kind: "ip", ip: h.ip, family: h.family, port }
            : { kind: "domain", hostname: h.hostname, port };
        handler.onRequest(target, chunk.subarray(o));
      }
    }
  }

  #reject(handler: Socks5Handler, reply: Buffer, reason: string): void {
    this.#state = "done";
    this.#host = undefined;
    handler.onReject(reply, reason);
  }

  #expect(state: State, need: number): void {
    this.#state = state;
    this.#need = need;
  }

  #field(handler: Socks5Handler): void {
    const s = this.#scratch;
    switch (this.#state) {
      case "greeting": {
        if (s[0] !== 5) {
          this.#reject(handler, Buffer.alloc(0), `not a SOCKS5 greeting (version byte ${s[0]})`);
          return;
        }
        const n = s[1] as number;
        if (n === 0) {
          this.#reject(
            handler,
            METHOD_NONE_ACCEPTABLE,
            "the greeting offers no authentication method",
          );
          return;
        }
        this.#expect("methods", n);
        return;
      }
      case "methods": {
        const offered = s.subarray(0, this.#need);
        if (!offered.includes(0)) {
          this.#reject(
            handler,
            METHOD_NONE_ACCEPTABLE,
            `no acceptable authentication method (offered ${[...offered].join(",")}; only 0, no authentication, is supported)`,
          );
          return;
        }
        this.#expect("request", 4);
        handler.onMethodSelected();
        return;
      }
      case "request": {
        if (s[0] !== 5) {
          this.#reject(
            handler,
            encodeReply(SOCKS5_REPLY.generalFailure),
            `request version byte ${s[0]} (5 expected)`,
          );
          return;
        }
        const cmd = s[1] as number;
        if (cmd !== 1) {
          this.#reject(
            handler,
            encodeReply(SOCKS5_REPLY.commandNotSupported),
            `command ${COMMANDS[cmd] ?? cmd} is not supported (only CONNECT)`,
          );
          return;
        }
        const atyp = s[3] as number;
        switch (atyp) {
          case 1:
            this.#expect("ipv4", 4);
            return;
          case 4:
            this.#expect("ipv6", 16);
            return;
          case 3:
            this.#expect("domain-length", 1);
            return;
          default:
            this.#reject(
              handler,
              encodeReply(SOCKS5_REPLY.addressTypeNotSupported),
              `address type ${atyp} is not supported`,
            );
            return;
        }
      }
      case "ipv4":
      case "ipv6": {
        const bytes = s.subarray(0, this.#need);
        let ip = formatIp(bytes) as string;
        let family: 4 | 6 = this.#state === "ipv4" ? 4 : 6;
        // An IPv4-mapped IPv6 target is the IPv4 address (as ztunnel canonicalises addresses).
        if (
          family === 6 &&
          bytes.subarray(0, 10).every((b) => b === 0) &&
          bytes[10] === 0xff &&
          bytes[11] === 0xff
        ) {
          ip = formatIp(bytes.subarray(12)) as string;
          family = 4;
        }
        this.#host = { kind: "ip", ip, family };
        this.#expect("port", 2);
        return;
      }
      case "domain-length": {
        const len = s[0] as number;
        if (len === 0) {
          this.#reject(handler, encodeReply(SOCKS5_REPLY.hostUnreachable), "empty domain name");
          return;
        }
        this.#expect("domain", len);
        return;
      }
      case "domain": {
        const hostname = s.toString("latin1", 0, this.#need);
        if (!isValidHostname(hostname)) {
          this.#reject(
            handler,
            encodeReply(SOCKS5_REPLY.hostUnreachable),
            `domain name ${JSON.stringify(hostname.slice(0, 80))} (${this.#need} bytes) is not a valid hostname`,
          );
          return;
        }
        this.#host = { kind: "domain", hostname };
        this.#expect("port", 2);
        return;
      }
      case "port":
        this.#state = "done";
        return;
      case "done":
        return;
    }
  }
}
