/**
 * Forwards a query ztunnel does not answer to the upstream resolvers and returns their answer
 * as received. The client's bytes are sent unchanged except for the message id: each exchange
 * uses a fresh random id and its own socket (a fresh ephemeral port), and only a response from
 * that server with that id and the same question is accepted, which makes forged answers hard.
 * The caller puts the client's id back.
 *
 * Per attempt: UDP first; a truncated UDP answer is retried over TCP when the client asked over
 * TCP (a UDP client gets the truncated answer and retries over TCP itself). Attempts go round
 * the servers in order; when all fail the caller answers SERVFAIL.
 */
import { randomInt } from "node:crypto";
import type { Socket as UdpSocket } from "node:dgram";
import type { Socket } from "node:net";
import { errnoCode } from "../../lib/errors.ts";
import { ipFamilyOf } from "../../lib/net/index.ts";
import { isResponseTo, isTruncated } from "./message.ts";
import type { DnsProtocol } from "./metrics.ts";
import type { UpstreamServer } from "./resolv-conf.ts";
import type { UpstreamSocketFactory } from "./socket-factory.ts";
import { DnsTcpDecoder, frame } from "./tcp-framing.ts";

export type UpstreamSource = readonly UpstreamServer[] | (() => readonly UpstreamServer[]);

export interface ForwarderOptions {
  readonly upstreams: UpstreamSource;
  readonly socketFactory: UpstreamSocketFactory;
  /** Per attempt; default 2000 ms. */
  readonly timeoutMs?: number | undefined;
  /** Tries in all, round the servers; default 2 (so a client's usual 5 s timeout is not exceeded). */
  readonly attempts?: number | undefined;
}

export type ForwardFailure = "no-upstream" | "timeout" | "network-error";

export type ForwardResult =
  | {
      readonly ok: true;
      /** The upstream's message, carrying the upstream id. */
      readonly response: Buffer;
      readonly server: UpstreamServer;
      readonly protocol: DnsProtocol;
    }
  | { readonly ok: false; readonly reason: ForwardFailure; readonly detail: string };

class ExchangeError extends Error {
  readonly reason: ForwardFailure;
  constructor(reason: ForwardFailure, message: string) {
    super(message);
    this.reason = reason;
  }
}

export class Forwarder {
  readonly #upstreams: UpstreamSource;
  readonly #factory: UpstreamSocketFactory;
  readonly #timeoutMs: number;
  readonly #attempts: number;

  constructor(options: ForwarderOptions) {
    this.#upstreams = options.upstreams;
    this.#factory = options.socketFactory;
    this.#timeoutMs = options.timeoutMs ?? 2000;
    this.#attempts = Math.max(1, options.attempts ?? 2);
  }

  servers(): readonly UpstreamServer[] {
    return typeof this.#upstreams === "function" ? this.#upstreams() : this.#upstreams;
  }

  /**
   * Sends `raw` (a query whose question ends at `questionEnd`) upstream. `clientProtocol` decides
   * whether a truncated UDP answer is retried over TCP.
   */
  async forward(
    raw: Buffer,
    questionEnd: number,
    clientProtocol: DnsProtocol,
  ): Promise<ForwardResult> {
    const servers = this.servers();
    if (servers.length === 0) {
      return {
        ok: false,
        reason: "no-upstream",
        detail: "no upstream nameservers configured (check the nameserver lines of resolv.conf)",
      };
    }
    let last: ExchangeError = new ExchangeError("timeout", "no attempt made");
    for (let attempt = 0; attempt < this.#attempts; attempt++) {
      const server = servers[attempt % servers.length] as UpstreamServer;
      try {
        const udp = await this.#exchange("udp", server, raw, questionEnd);
        if (clientProtocol === "tcp" && isTruncated(udp)) {
          const tcp = await this.#exchange("tcp", server, raw, questionEnd);
          return { ok: true, response: tcp, server, protocol: "tcp" };
        }
        return { ok: true, response: udp, server, protocol: "udp" };
      } catch (err) {
        last =
          err instanceof ExchangeError
            ? err
            : new ExchangeError(
                "network-error",
                `${server.address}:${server.port}: ${String(err)}`,
              );
      }
    }
    return { ok: false, reason: last.reason, detail: last.message };
  }

  #exchange(
    protocol: DnsProtocol,
    server: UpstreamServer,
    raw: Buffer,
    questionEnd: number,
  ): Promise<Buffer> {
    const id = randomInt(0, 0x10000);
    const sent = Buffer.from(raw);
    sent.writeUInt16BE(id, 0);
    const family = ipFamilyOf(server.address);
    const where = `${server.address}:${server.port}/${protocol}`;
    if (family === undefined) {
      return Promise.reject(new ExchangeError("network-error", `${where}: not an IP address`));
    }
    return protocol === "udp"
      ? this.#udp(family, server, sent, questionEnd, id, where)
      : this.#tcp(family, server, sent, questionEnd, id, where);
  }

  #udp(
    family: 4 | 6,
    server: UpstreamServer,
    sent: Buffer,
    questionEnd: number,
    id: number,
    where: string,
  ): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      let sock: UdpSocket;
      try {
        sock = this.#factory.udp(family);
      } catch (err) {
        reject(
          new ExchangeError("network-error", `${where}: cannot create a socket: ${String(err)}`),
        );
        return;
      }
      let done = false;
      const finish = (err: ExchangeError | undefined, response?: Buffer) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        try {
          sock.close();
        } catch {
          // Already closed.
        }
        if (err !== undefined) reject(err);
        else resolve(response as Buffer);
      };
      const timer = setTimeout(
        () =>
          finish(new ExchangeError("timeout", `${where}: no answer within ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
      sock.on("error", (err) =>
        finish(new ExchangeError("network-error", `${where}: ${errnoCode(err) ?? err.message}`)),
      );
      // A connected socket only receives datagrams from the server, and reports ICMP errors.
      sock.on("message", (msg) => {
        if (isResponseTo(msg, sent, questionEnd, id)) finish(undefined, msg);
      });
      sock.connect(server.port, server.address, () => {
        sock.send(sent, (err) => {
          if (err)
            finish(
              new ExchangeError("network-error", `${where}: ${errnoCode(err) ?? err.message}`),
            );
        });
      });
    });
  }

  #tcp(
    family: 4 | 6,
    server: UpstreamServer,
    sent: Buffer,
    questionEnd: number,
    id: number,
    where: string,
  ): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      let sock: Socket;
      try {
        sock = this.#factory.tcp(family);
      } catch (err) {
        reject(
          new ExchangeError("network-error", `${where}: cannot create a socket: ${String(err)}`),
        );
        return;
      }
      let done = false;
      const decoder = new DnsTcpDecoder();
      const finish = (err: ExchangeError | undefined, response?: Buffer) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.destroy();
        if (err !== undefined) reject(err);
        else resolve(response as Buffer);
      };
      const timer = setTimeout(
        () =>
          finish(new ExchangeError("timeout", `${where}: no answer within ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
      const onMessage = (msg: Buffer) => {
        if (isResponseTo(msg, sent, questionEnd, id)) finish(undefined, Buffer.from(msg));
      };
      sock.on("error", (err) =>
        finish(new ExchangeError("network-error", `${where}: ${errnoCode(err) ?? err.message}`)),
      );
      sock.on("data", (chunk: Buffer) => {
        if (!decoder.push(chunk, onMessage))
          finish(new ExchangeError("network-error", `${where}: empty message`));
      });
      sock.on("end", () =>
        finish(new ExchangeError("network-error", `${where}: closed without an answer`)),
      );
      sock.connect(server.port, server.address, () => {
        sock.write(frame(sent));
      });
    });
  }
}
