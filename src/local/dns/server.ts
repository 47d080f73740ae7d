/**
 * The cluster DNS server (UDP and TCP, port 53 on the control plane's address): decodes each
 * query with `dns-packet`, answers from the current view (rebuilt when Services or pods change),
 * and never forwards anything. Malformed queries get FORMERR when an id can be read, else nothing.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server, type Socket } from "node:net";
import dnsPacket from "dns-packet";
import type { Logger } from "../../lib/log/index.ts";
import type { Json } from "../../lib/kube-api/index.ts";
import { answer, buildView, type DnsView, type Rcode } from "./records.ts";

export interface DnsSource {
  services(): readonly Json[];
  pods(): readonly Json[];
  /** Calls `fn` when Services or pods may have changed; returns the unsubscribe function. */
  subscribe(fn: () => void): () => void;
}

export interface DnsServerOptions {
  readonly host: string;
  readonly port: number;
  readonly source: DnsSource;
  readonly log: Logger;
  readonly domain?: string;
  /** TTL of answers, seconds. */
  readonly ttl?: number;
}

const RCODES: Record<Rcode, number> = { NOERROR: 0, FORMERR: 1, NXDOMAIN: 3, REFUSED: 5 };

export class DnsServer {
  readonly #opts: DnsServerOptions;
  #view: DnsView | undefined;
  #udp: UdpSocket | undefined;
  #tcp: Server | undefined;
  #unsubscribe: (() => void) | undefined;
  readonly #conns = new Set<Socket>();

  constructor(opts: DnsServerOptions) {
    this.#opts = opts;
  }

  /** Answers one query message (exported for tests): the response bytes, or undefined. */
  respond(query: Buffer): Buffer | undefined {
    const domain = this.#opts.domain ?? "cluster.local";
    let q: dnsPacket.Packet;
    try {
      q = dnsPacket.decode(query);
    } catch {
      if (query.length < 2) return undefined;
      return dnsPacket.encode({
        id: query.readUInt16BE(0),
        type: "response",
        flags: RCODES.FORMERR,
      });
    }
    const question = q.questions?.[0];
    const rd = (q.flags ?? 0) & dnsPacket.RECURSION_DESIRED;
    if (question === undefined || q.type !== "query") {
      return dnsPacket.encode({ id: q.id ?? 0, type: "response", flags: RCODES.FORMERR | rd });
    }
    this.#view ??= buildView(this.#opts.source.services(), this.#opts.source.pods());
    const a = answer(question.name, question.type, this.#view, domain);
    const ttl = this.#opts.ttl ?? 5;
    const aa = a.rcode === "REFUSED" ? 0 : dnsPacket.AUTHORITATIVE_ANSWER;
    return dnsPacket.encode({
      id: q.id ?? 0,
      type: "response",
      flags: aa | rd | RCODES[a.rcode],
      questions: [question],
      answers: a.answers.map((x) => ({
        type: "A" as const,
        name: x.name,
        ttl,
        class: "IN" as const,
        data: x.address,
      })),
      authorities: a.soa
        ? [
            {
              type: "SOA" as const,
              name: domain,
              ttl,
              class: "IN" as const,
              data: {
                mname: `ns.dns.${domain}`,
                rname: `hostmaster.${domain}`,
                serial: 1,
                refresh: 7200,
                retry: 1800,
                expire: 86400,
                minimum: ttl,
              },
            },
          ]
        : [],
    });
  }

  async start(): Promise<void> {
    this.#unsubscribe = this.#opts.source.subscribe(() => {
      this.#view = undefined;
    });
    const udp = createSocket({ type: "udp4", reuseAddr: true });
    this.#udp = udp;
    udp.on("message", (msg, rinfo) => {
      const out = this.respond(msg);
      if (out !== undefined) udp.send(out, rinfo.port, rinfo.address);
    });
    udp.on("error", (err) => this.#opts.log.warn("DNS UDP socket error", { error: err.message }));
    await new Promise<void>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(this.#opts.port, this.#opts.host, () => {
        udp.off("error", reject);
        resolve();
      });
    });
    const tcp = createServer((sock) => this.#serveTcp(sock));
    this.#tcp = tcp;
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen(this.#udpPort(), this.#opts.host, () => resolve());
    });
    this.#opts.log.info("cluster DNS listening", {
      address: `${this.#opts.host}:${this.#udpPort()}`,
    });
  }

  #udpPort(): number {
    return this.#udp!.address().port;
  }

  get port(): number {
    return this.#udpPort();
  }

  #serveTcp(sock: Socket): void {
    this.#conns.add(sock);
    sock.setTimeout(10_000, () => sock.destroy());
    let buf: Buffer = Buffer.alloc(0);
    sock.on("data", (chunk: Buffer) => {
      // Queries are tiny; a connection buffers at most one partial message.
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (buf.length > 65_537) return sock.destroy();
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const out = this.respond(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        if (out !== undefined) {
          const framed = Buffer.allocUnsafe(2 + out.length);
          framed.writeUInt16BE(out.length, 0);
          out.copy(framed, 2);
          sock.write(framed);
        }
      }
    });
    sock.on("error", () => sock.destroy());
    sock.on("close", () => this.#conns.delete(sock));
  }

  async close(): Promise<void> {
    this.#unsubscribe?.();
    for (const s of this.#conns) s.destroy();
    await new Promise<void>((resolve) =>
      this.#udp ? this.#udp.close(() => resolve()) : resolve(),
    );
    await new Promise<void>((resolve) =>
      this.#tcp ? this.#tcp.close(() => resolve()) : resolve(),
    );
  }
}
