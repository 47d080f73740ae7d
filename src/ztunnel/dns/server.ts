/**
 * ztunnel's DNS proxy for one client workload (one per pod in in-pod mode, port 15053, UDP and
 * TCP): answers A/AAAA for mesh names from the state (resolver.ts) and forwards everything else
 * upstream (forwarder.ts), relaying the upstream answer with the client's id.
 *
 * Sockets come from the caller: in in-pod mode they are created inside the pod's namespace and
 * handed over with `attachUdp` / `attachTcp`; `DnsProxy.listen` binds its own (tests, dedicated
 * mode). Nothing a client sends can throw past `answer()`: malformed queries get FORMERR or are
 * dropped (shorter than a header, or a response), unexpected failures SERVFAIL.
 */
import { createSocket } from "node:dgram";
import type { RemoteInfo, Socket as UdpSocket } from "node:dgram";
import { createServer, isIPv6 } from "node:net";
import type { AddressInfo, Server, Socket } from "node:net";
import * as dnsPacket from "dns-packet";
import { errnoCode } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log/index.ts";
import { Forwarder } from "./forwarder.ts";
import type { ForwardResult, UpstreamSource } from "./forwarder.ts";
import {
  addressesIn,
  answerResponse,
  errorResponse,
  parseQuery,
  RCODE,
  truncatedResponse,
  udpLimit,
} from "./message.ts";
import type { Query } from "./message.ts";
import { DnsMetrics } from "./metrics.ts";
import type { DnsProtocol } from "./metrics.ts";
import { kubernetesSearchDomains } from "./resolv-conf.ts";
import { resolveQuestion } from "./resolver.ts";
import type { DnsClient, DnsStateView, Resolution } from "./resolver.ts";
import { hostSocketFactory } from "./socket-factory.ts";
import type { UpstreamSocketFactory } from "./socket-factory.ts";
import { DnsTcpDecoder, frame } from "./tcp-framing.ts";

export type DnsClientSource = () => DnsClient | undefined | Promise<DnsClient | undefined>;

export interface DnsProxyOptions {
  /** Mesh state (ProxyState). */
  readonly state: DnsStateView;
  /**
   * The workload this proxy serves (the pod). Undefined while unknown: queries then get SERVFAIL,
   * as in ztunnel. May be async (e.g. to wait briefly for the pod to appear in xDS).
   */
  readonly client: DnsClientSource;
  /** `CLUSTER_DOMAIN`, default `cluster.local`. */
  readonly clusterDomain?: string | undefined;
  /**
   * Search domains stripped from queries. Default (shared mode, as ztunnel): the pod's
   * Kubernetes search list `<ns>.svc.<domain> svc.<domain> <domain>`. Dedicated mode passes
   * resolv.conf's `search`.
   */
  readonly searchDomains?: ((client: DnsClient) => readonly string[]) | undefined;
  /** Upstream resolvers (e.g. `readResolvConf().nameservers`); a function is read per query. */
  readonly upstreams: UpstreamSource;
  /** Default: plain sockets in the current namespace. In-pod: `netnsSocketFactory`. */
  readonly socketFactory?: UpstreamSocketFactory | undefined;
  readonly metrics: DnsMetrics;
  /** Scope `dns` by convention; per-query access lines are debug. */
  readonly logger: Logger;
  readonly preferredServiceNamespace?: string | undefined;
  /** false: no AAAA answers for mesh names (`IPV6_ENABLED=false`). Default true. */
  readonly ipv6Enabled?: boolean | undefined;
  /** Per upstream attempt, default 2000 ms; attempts default 2. */
  readonly upstreamTimeoutMs?: number | undefined;
  readonly upstreamAttempts?: number | undefined;
  /** Close a TCP connection idle this long (no query pending); default 5000 ms, as ztunnel. */
  readonly tcpIdleTimeoutMs?: number | undefined;
  /** Queries answered concurrently per TCP connection before reading pauses; default 32. */
  readonly tcpMaxInFlight?: number | undefined;
  /** Forwarded queries in flight across the proxy; beyond it queries get SERVFAIL. Default 256. */
  readonly maxForwardsInFlight?: number | undefined;
}

/** A name looked up for a caller that needs addresses (SOCKS5). */
export type HostLookup =
  | { readonly ok: true; readonly addresses: readonly string[] }
  | { readonly ok: false; readonly reason: "not-found" | "failed"; readonly detail: string };

const HOSTNAME_LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** Whether `name` can be put in a DNS question: LDH-ish labels of 1..63, at most 253 in all. */
export function isValidHostname(name: string): boolean {
  const n = name.endsWith(".") ? name.slice(0, -1) : name;
  if (n.length === 0 || n.length > 253) return false;
  return n.split(".").every((l) => HOSTNAME_LABEL.test(l));
}

interface Served {
  readonly udp: Set<UdpSocket>;
  readonly tcp: Set<Server>;
  readonly connections: Set<Socket>;
}

export class DnsProxy {
  readonly #opts: DnsProxyOptions;
  readonly #forwarder: Forwarder;
  readonly #log: Logger;
  readonly #clusterDomain: string;
  readonly #served: Served = { udp: new Set(), tcp: new Set(), connections: new Set() };
  #forwardsInFlight = 0;
  #closed = false;

  constructor(options: DnsProxyOptions) {
    this.#opts = options;
    this.#log = options.logger;
    this.#clusterDomain = options.clusterDomain ?? "cluster.local";
    this.#forwarder = new Forwarder({
      upstreams: options.upstreams,
      socketFactory: options.socketFactory ?? hostSocketFactory,
      timeoutMs: options.upstreamTimeoutMs,
      attempts: options.upstreamAttempts,
    });
  }

  /**
   * Binds TCP and UDP on `host:port` (port 0: one free port for both) and serves them. For tests
   * and dedicated mode; in-pod mode creates sockets in the pod namespace and attaches them.
   */
  static async listen(options: DnsProxyOptions, host: string, port = 0): Promise<DnsProxy> {
    const proxy = new DnsProxy(options);
    let lastErr: unknown;
    for (let tries = 0; tries < (port === 0 ? 10 : 1); tries++) {
      const tcp = createServer({ allowHalfOpen: true });
      const udp = createSocket(isIPv6(host) ? "udp6" : "udp4");
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once("error", reject);
          tcp.listen({ host, port, exclusive: true }, () => {
            tcp.off("error", reject);
            resolve();
          });
        });
        const bound = (tcp.address() as AddressInfo).port;
        await new Promise<void>((resolve, reject) => {
          udp.once("error", reject);
          udp.bind({ address: host, port: bound, exclusive: true }, () => {
            udp.off("error", reject);
            resolve();
          });
        });
        proxy.attachTcp(tcp);
        proxy.attachUdp(udp);
        options.logger.info("DNS proxy listening", {
          address: `${host}:${bound}`,
          component: "dns",
        });
        return proxy;
      } catch (err) {
        lastErr = err;
        tcp.close();
        udp.close();
        // With port 0 the UDP port of the same number may be taken; try another.
        if (errnoCode(err) !== "EADDRINUSE") break;
      }
    }
    throw lastErr;
  }

  /** Serves queries arriving on a bound UDP socket. `close()` closes it. */
  attachUdp(socket: UdpSocket): void {
    this.#served.udp.add(socket);
    socket.on("message", (msg: Buffer, rinfo: RemoteInfo) =>
      this.handleUdpMessage(msg, rinfo, socket),
    );
    socket.on("error", (err) => this.#log.warn("DNS UDP socket error", { error: err.message }));
    socket.on("close", () => this.#served.udp.delete(socket));
  }

  /** Serves connections accepted by a listening TCP server. `close()` closes it. */
  attachTcp(server: Server): void {
    this.#served.tcp.add(server);
    server.on("connection", (s: Socket) => this.handleTcpConnection(s));
    server.on("error", (err) => this.#log.warn("DNS TCP listener error", { error: err.message }));
    server.on("close", () => this.#served.tcp.delete(server));
  }

  /** Serves one accepted TCP connection (for callers that accept themselves). */
  handleTcpConnection(socket: Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    this.#served.connections.add(socket);
    socket.on("close", () => this.#served.connections.delete(socket));
    new TcpConnection(
      this,
      socket,
      this.#opts.tcpIdleTimeoutMs ?? 5000,
      Math.max(1, this.#opts.tcpMaxInFlight ?? 32),
      this.#log,
    );
  }

  /** The addresses of the sockets this proxy serves. */
  addresses(): { udp: AddressInfo[]; tcp: AddressInfo[] } {
    const udp: AddressInfo[] = [];
    const tcp: AddressInfo[] = [];
    for (const s of this.#served.udp) udp.push(s.address());
    for (const s of this.#served.tcp) {
      const a = s.address();
      if (a !== null && typeof a !== "string") tcp.push(a);
    }
    return { udp, tcp };
  }

  /** Stops serving: closes the sockets and listeners it serves and every open TCP connection. */
  async close(): Promise<void> {
    this.#closed = true;
    const waits: Promise<void>[] = [];
    for (const s of this.#served.udp) {
      waits.push(new Promise((resolve) => s.close(() => resolve())));
    }
    for (const s of this.#served.tcp) {
      waits.push(new Promise((resolve) => s.close(() => resolve())));
    }
    for (const c of this.#served.connections) c.destroy();
    await Promise.all(waits);
  }

  /**
   * Answers one datagram received on `socket` (for callers that own the socket and dispatch
   * messages themselves, like the in-pod listeners' `dns.udp` handler).
   */
  handleUdpMessage(msg: Buffer, rinfo: RemoteInfo, socket: UdpSocket): void {
    this.answer(msg, "udp").then(
      (reply) => {
        if (reply === undefined || this.#closed) return;
        socket.send(reply, rinfo.port, rinfo.address, (err) => {
          if (err)
            this.#log.debug("DNS UDP reply not sent", { error: err.message, peer: rinfo.address });
        });
      },
      (err: unknown) => this.#log.error("DNS UDP query failed", { error: String(err) }),
    );
  }

  /**
   * Answers one DNS message received over `protocol`: the reply to send, or undefined to send
   * nothing. Never rejects.
   */
  async answer(raw: Buffer, protocol: DnsProtocol): Promise<Buffer | undefined> {
    const parsed = parseQuery(raw);
    if (parsed.kind === "drop") {
      this.#log.debug("DNS message dropped", { reason: parsed.reason, protocol });
      return undefined;
    }
    if (parsed.kind === "reject") {
      this.#log.debug("DNS query rejected", {
        reason: parsed.reason,
        protocol,
        rcode: parsed.rcode,
      });
      return parsed.reply;
    }
    const q = parsed.query;
    try {
      return await this.#answerQuery(raw, q, protocol);
    } catch (err) {
      this.#log.error("DNS query failed", { domain: q.name, query: q.type, error: String(err) });
      return errorResponse(raw, RCODE.SERVFAIL, q.questionEnd);
    }
  }

  async #answerQuery(raw: Buffer, q: Query, protocol: DnsProtocol): Promise<Buffer> {
    const metrics = this.#opts.metrics;
    const client = await this.#opts.client();
    if (client === undefined) {
      metrics.requests.inc(DnsMetrics.labels(q.type, protocol, undefined));
      this.#access(q, undefined, "unknown source", 0);
      return errorResponse(raw, RCODE.SERVFAIL, q.questionEnd);
    }
    const labels = DnsMetrics.labels(q.type, protocol, client);
    metrics.requests.inc(labels);
    const resolution: Resolution = resolveQuestion(q.name, q.type, client, this.#opts.state, {
      clusterDomain: this.#clusterDomain,
      searchDomains: (this.#opts.searchDomains ?? this.#defaultSearch)(client),
      preferredNamespace: this.#opts.preferredServiceNamespace,
      ipv6Enabled: this.#opts.ipv6Enabled,
    });
    if (resolution.kind === "answer") {
      const n = resolution.records.length;
      this.#access(q, client, n === 0 ? "no records" : "success", n);
      return answerResponse(q, resolution.records, protocol === "udp" ? udpLimit(q) : undefined);
    }
    return this.#forward(raw, q, protocol, client, labels);
  }

  readonly #defaultSearch = (client: DnsClient): readonly string[] =>
    kubernetesSearchDomains(client.namespace, this.#clusterDomain);

  async #forward(
    raw: Buffer,
    q: Query,
    protocol: DnsProtocol,
    client: DnsClient,
    labels: ReturnType<typeof DnsMetrics.labels>,
  ): Promise<Buffer> {
    const metrics = this.#opts.metrics;
    const limit = this.#opts.maxForwardsInFlight ?? 256;
    if (this.#forwardsInFlight >= limit) {
      this.#access(q, client, `forwarding refused (${limit} queries already in flight)`, 0);
      return errorResponse(raw, RCODE.SERVFAIL, q.questionEnd);
    }
    metrics.upstreamRequests.inc(labels);
    const end = metrics.upstreamDuration.startTimer(labels);
    this.#forwardsInFlight++;
    let result: ForwardResult;
    try {
      result = await this.#forwarder.forward(raw, q.questionEnd, protocol);
    } finally {
      this.#forwardsInFlight--;
      end();
    }
    if (!result.ok) {
      metrics.upstreamFailures.inc(labels);
      this.#access(q, client, `forwarding failed (${result.detail})`, 0);
      return errorResponse(raw, RCODE.SERVFAIL, q.questionEnd);
    }
    const response = result.response;
    response.writeUInt16BE(q.id, 0);
    this.#access(q, client, "forwarded", response.readUInt16BE(6));
    if (protocol === "udp" && response.length > udpLimit(q)) {
      return truncatedResponse(raw, q.questionEnd);
    }
    return response;
  }

  #access(q: Query, client: DnsClient | undefined, result: string, endpoints: number): void {
    if (!this.#log.enabled("debug")) return;
    this.#log.debug("dns request", {
      "src.workload": client?.name ?? "unknown",
      "src.namespace": client?.namespace ?? "unknown",
      query: q.type,
      domain: q.name,
      result,
      endpoints,
    });
  }

  /**
   * Resolves a hostname to addresses of one family the way a query from the pod would be
   * (mesh names from the state, others upstream), for SOCKS5 domain targets. Counted in the
   * DNS metrics with `request_protocol="tcp"`.
   */
  async lookupHost(hostname: string, family: 4 | 6): Promise<HostLookup> {
    if (!isValidHostname(hostname)) {
      return { ok: false, reason: "not-found", detail: `"${hostname}" is not a valid hostname` };
    }
    const type = family === 4 ? "A" : "AAAA";
    const raw = dnsPacket.encode({
      type: "query",
      id: 0,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ name: hostname, type, class: "IN" }],
    });
    const reply = await this.answer(raw, "tcp");
    if (reply === undefined) return { ok: false, reason: "failed", detail: "no answer" };
    const r = addressesIn(reply, type);
    if (r.ok) return { ok: true, addresses: r.addresses };
    if (r.rcode === RCODE.NOERROR || r.rcode === RCODE.NXDOMAIN) {
      return { ok: false, reason: "not-found", detail: `no ${type} record for ${hostname}` };
    }
    return {
      ok: false,
      reason: "failed",
      detail: `resolving ${hostname} failed (rcode ${r.rcode})`,
    };
  }
}

/** One DNS-over-TCP connection: many queries, answered as they complete (RFC 7766). */
class TcpConnection {
  readonly #proxy: DnsProxy;
  readonly #socket: Socket;
  readonly #maxInFlight: number;
  readonly #log: Logger;
  readonly #decoder = new DnsTcpDecoder();
  #inFlight = 0;
  #writeBlocked = false;
  #ended = false;

  constructor(proxy: DnsProxy, socket: Socket, idleMs: number, maxInFlight: number, log: Logger) {
    this.#proxy = proxy;
    this.#socket = socket;
    this.#maxInFlight = maxInFlight;
    this.#log = log;
    socket.setNoDelay(true);
    socket.setTimeout(idleMs);
    socket.on("data", this.#onData);
    socket.on("drain", this.#onDrain);
    socket.on("end", this.#onEnd);
    socket.on("timeout", this.#onTimeout);
    socket.on("error", this.#onError);
  }

  readonly #onData = (chunk: Buffer): void => {
    if (!this.#decoder.push(chunk, this.#onMessage)) {
      this.#log.debug("DNS TCP connection closed: zero-length message");
      this.#socket.destroy();
    }
  };

  readonly #onMessage = (msg: Buffer): void => {
    this.#inFlight++;
    if (this.#inFlight >= this.#maxInFlight) this.#socket.pause();
    this.#proxy.answer(msg, "tcp").then(this.#onAnswer, this.#onAnswerError);
  };

  readonly #onAnswer = (reply: Buffer | undefined): void => {
    this.#inFlight--;
    if (this.#socket.destroyed) return;
    if (reply === undefined) {
      // Not a query (a response, or shorter than a header): this peer is not a DNS client.
      this.#socket.destroy();
      return;
    }
    if (this.#socket.writable && !this.#socket.write(frame(reply))) {
      // The client is not reading its answers: stop reading its queries until it does.
      this.#writeBlocked = true;
      this.#socket.pause();
    }
    this.#settle();
  };

  readonly #onAnswerError = (err: unknown): void => {
    this.#inFlight--;
    this.#log.error("DNS TCP query failed", { error: String(err) });
    this.#socket.destroy();
  };

  readonly #onDrain = (): void => {
    this.#writeBlocked = false;
    this.#settle();
  };

  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#settle();
  };

  readonly #onTimeout = (): void => {
    if (this.#inFlight === 0) this.#socket.destroy();
  };

  readonly #onError = (err: Error): void => {
    this.#log.debug("DNS TCP connection error", { error: errnoCode(err) ?? err.message });
    this.#socket.destroy();
  };

  /** Resume reading when there is room; finish after the client's FIN once all are answered. */
  #settle(): void {
    if (this.#ended) {
      if (this.#inFlight === 0 && this.#socket.writable) this.#socket.end();
      return;
    }
    if (!this.#writeBlocked && this.#inFlight < this.#maxInFlight && this.#socket.isPaused()) {
      this.#socket.resume();
    }
  }
}
