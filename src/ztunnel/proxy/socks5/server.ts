/**
 * ztunnel's SOCKS5 front end (127.0.0.1:15080 in the pod, opt-in with UNSTABLE_ENABLE_SOCKS5).
 * It runs the handshake, resolves a domain target through the DNS proxy (A for an IPv4 client,
 * AAAA for an IPv6 one, first answer), replies success with bound address 0.0.0.0:0 before any
 * upstream is dialled (as ztunnel does), then hands the socket to `outbound`, which runs the
 * normal outbound flow towards the target.
 *
 * Socket ownership: the session owns the socket's errors until `outbound` is called; from then on
 * `outbound` does (it must attach its 'error' listener synchronously). The socket is handed over
 * paused, with the bytes that followed the request in `leftover`.
 */
import { createServer, isIPv4 } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import { errnoCode } from "../../../lib/errors.ts";
import type { Logger } from "../../../lib/log/index.ts";
import { Socks5Parser } from "./parser.ts";
import type { Socks5Handler, Socks5Target } from "./parser.ts";
import { encodeReply, METHOD_NO_AUTH, replyCodeFor, SOCKS5_REPLY } from "./reply.ts";
import type { Socks5ReplyCode } from "./reply.ts";

/** The DNS proxy's resolution (DnsProxy.lookupHost has this shape). */
export type Socks5Resolver = (
  hostname: string,
  family: 4 | 6,
) => Promise<
  | { readonly ok: true; readonly addresses: readonly string[] }
  | { readonly ok: false; readonly reason: "not-found" | "failed"; readonly detail?: string }
>;

/** Where the client asked to go, resolved to an IP. */
export interface Socks5Destination {
  readonly ip: string;
  readonly port: number;
  readonly family: 4 | 6;
}

export interface Socks5Info {
  /** The domain the client asked for (undefined for IP targets). */
  readonly hostname: string | undefined;
  /** The SOCKS5 client's address (the application in the pod). */
  readonly source: { readonly ip: string; readonly port: number };
  /** Whether the success reply was already sent (`replyBeforeConnect`, the default). */
  readonly replied: boolean;
  /** replyBeforeConnect=false: the upstream is connected; send the success reply. */
  succeed(): void;
  /**
   * The upstream could not be reached: replyBeforeConnect=false sends the reply for `reason`
   * (a reply code, or an error whose errno maps to 2/3/4/5, else 1) and closes; otherwise the
   * client already got success and the socket is just destroyed.
   */
  fail(reason: unknown): void;
}

/** Takes over the socket: the normal outbound flow to `destination`. */
export type Socks5Outbound = (
  socket: Socket,
  destination: Socks5Destination,
  leftover: Buffer,
  info: Socks5Info,
) => void;

export interface Socks5Options {
  readonly resolve: Socks5Resolver;
  readonly outbound: Socks5Outbound;
  /** Scope `socks5` by convention. */
  readonly logger: Logger;
  /** From accept to hand-over (including the DNS lookup); default 10 000 ms. */
  readonly handshakeTimeoutMs?: number | undefined;
  /** ztunnel replies success before dialling (default true); false defers it to `info.succeed`. */
  readonly replyBeforeConnect?: boolean | undefined;
  /** A last check before hand-over; a reply code refuses the target (e.g. 2, not allowed). */
  readonly checkTarget?:
    ((destination: Socks5Destination, info: Socks5Info) => Socks5ReplyCode | undefined) | undefined;
}

export class Socks5Server {
  readonly #opts: Socks5Options;
  readonly #servers = new Set<Server>();
  readonly #sessions = new Set<Session>();

  constructor(options: Socks5Options) {
    this.#opts = options;
  }

  /** Listens on `host:port` (default 127.0.0.1, ephemeral port) and serves it. */
  static async listen(options: Socks5Options, host = "127.0.0.1", port = 0): Promise<Socks5Server> {
    const s = new Socks5Server(options);
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host, port }, () => {
        server.off("error", reject);
        resolve();
      });
    });
    s.attach(server);
    options.logger.info("SOCKS5 listener established", {
      address: `${host}:${(server.address() as AddressInfo).port}`,
      component: "socks5",
    });
    return s;
  }

  /** Serves a listening server (in-pod: the 15080 listener made in the pod's namespace). */
  attach(server: Server): void {
    this.#servers.add(server);
    server.on("connection", (socket: Socket) => this.handle(socket));
    server.on("error", (err) =>
      this.#opts.logger.warn("SOCKS5 listener error", { error: err.message }),
    );
    server.on("close", () => this.#servers.delete(server));
  }

  /** The first attached listener's address. */
  address(): AddressInfo | undefined {
    for (const s of this.#servers) {
      const a = s.address();
      if (a !== null && typeof a !== "string") return a;
    }
    return undefined;
  }

  /** Runs the handshake on an accepted connection. */
  handle(socket: Socket): void {
    const session = new Session(socket, this.#opts, () => this.#sessions.delete(session));
    this.#sessions.add(session);
  }

  /** Closes the listeners and every connection still in its handshake (handed-over ones are the outbound's). */
  async close(): Promise<void> {
    const waits = [...this.#servers].map(
      (s) => new Promise<void>((resolve) => s.close(() => resolve())),
    );
    for (const s of this.#sessions) s.abort();
    await Promise.all(waits);
  }
}

/** One connection's handshake. */
class Session implements Socks5Handler {
  readonly #socket: Socket;
  readonly #opts: Socks5Options;
  readonly #parser = new Socks5Parser();
  readonly #timer: NodeJS.Timeout;
  readonly #done: () => void;
  #finished = false;

  constructor(socket: Socket, opts: Socks5Options, done: () => void) {
    this.#socket = socket;
    this.#opts = opts;
    this.#done = done;
    this.#timer = setTimeout(this.#onTimeout, opts.handshakeTimeoutMs ?? 10_000);
    socket.setNoDelay(true);
    socket.on("data", this.#onData);
    socket.on("error", this.#onError);
    socket.on("end", this.#onEnd);
    socket.on("close", this.#onClose);
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#parser.push(chunk, this);
  };

  readonly #onError = (err: Error): void => {
    this.#debug("SOCKS5 connection error during handshake", {
      error: errnoCode(err) ?? err.message,
    });
    this.#socket.destroy();
  };

  readonly #onEnd = (): void => {
    if (!this.#parser.done)
      this.#debug("SOCKS5 client closed during handshake", { bytes: this.#parser.consumed });
    this.#socket.destroy();
  };

  readonly #onClose = (): void => {
    this.#finish();
  };

  readonly #onTimeout = (): void => {
    this.#debug("SOCKS5 handshake timed out", { bytes: this.#parser.consumed });
    this.#socket.destroy();
  };

  abort(): void {
    this.#socket.destroy();
  }

  onMethodSelected(): void {
    this.#socket.write(METHOD_NO_AUTH);
  }

  onReject(reply: Buffer, reason: string): void {
    this.#debug("SOCKS5 handshake rejected", {
      reason,
      reply: reply[1] ?? "none",
    });
    if (reply.length === 0) {
      this.#socket.destroy();
      return;
    }
    // Discard anything more the client sends (closing with unread data would reset the
    // connection and could lose the reply); close when it closes, or at the handshake timeout.
    this.#socket.resume();
    this.#socket.end(reply);
  }

  onRequest(target: Socks5Target, rest: Buffer): void {
    this.#socket.pause();
    this.#socket.off("data", this.#onData);
    // Copy: `rest` is a view of a chunk Node may hand to other readers.
    const leftover = Buffer.from(rest);
    if (target.kind === "ip") {
      this.#connect(
        { ip: target.ip, port: target.port, family: target.family },
        undefined,
        leftover,
      );
      return;
    }
    const family = this.#clientFamily();
    this.#opts.resolve(target.hostname, family).then(
      (r) => {
        if (this.#socket.destroyed) return;
        if (!r.ok) {
          const code =
            r.reason === "not-found" ? SOCKS5_REPLY.hostUnreachable : SOCKS5_REPLY.generalFailure;
          this.onReject(encodeReply(code), `resolving ${target.hostname}: ${r.detail ?? r.reason}`);
          return;
        }
        const ip = r.addresses[0] as string;
        this.#connect(
          { ip, port: target.port, family: isIPv4(ip) ? 4 : 6 },
          target.hostname,
          leftover,
        );
      },
      (err: unknown) => {
        if (this.#socket.destroyed) return;
        this.onReject(
          encodeReply(SOCKS5_REPLY.generalFailure),
          `resolving ${target.hostname} failed: ${String(err)}`,
        );
      },
    );
  }

  /** A v4 client (or a v4-mapped v6 peer) asks for A records, a v6 one for AAAA. */
  #clientFamily(): 4 | 6 {
    const a = this.#socket.remoteAddress ?? "";
    return isIPv4(a) || a.startsWith("::ffff:") ? 4 : 6;
  }

  #connect(destination: Socks5Destination, hostname: string | undefined, leftover: Buffer): void {
    const socket = this.#socket;
    const replyFirst = this.#opts.replyBeforeConnect ?? true;
    let replied = replyFirst;
    const info: Socks5Info = {
      hostname,
      source: { ip: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 },
      get replied() {
        return replied;
      },
      succeed: () => {
        if (replied || socket.destroyed) return;
        replied = true;
        socket.write(encodeReply(SOCKS5_REPLY.succeeded));
      },
      fail: (reason: unknown) => {
        if (replied || socket.destroyed) {
          socket.destroy();
          return;
        }
        replied = true;
        socket.end(encodeReply(replyCodeFor(reason)));
      },
    };
    const refused = this.#opts.checkTarget?.(destination, info);
    if (refused !== undefined && refused !== SOCKS5_REPLY.succeeded) {
      this.onReject(encodeReply(refused), `target ${destination.ip}:${destination.port} refused`);
      return;
    }
    this.#finish();
    socket.off("error", this.#onError);
    socket.off("end", this.#onEnd);
    socket.off("close", this.#onClose);
    if (replyFirst) socket.write(encodeReply(SOCKS5_REPLY.succeeded));
    try {
      this.#opts.outbound(socket, destination, leftover, info);
    } catch (err) {
      this.#opts.logger.error("SOCKS5 outbound hand-over failed", { error: String(err) });
      socket.destroy();
    }
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    clearTimeout(this.#timer);
    this.#done();
  }

  #debug(message: string, fields: Record<string, string | number>): void {
    this.#opts.logger.debug(message, {
      "src.addr": `${this.#socket.remoteAddress}:${this.#socket.remotePort}`,
      ...fields,
    });
  }
}
