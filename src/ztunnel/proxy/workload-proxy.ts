/**
 * One pod's proxy (in-pod mode; dedicated mode is the same inside ztunnel's own namespace): the
 * listeners inside the pod's network namespace, an HBONE pool dialling from the pod, an HBONE
 * server presenting the pod's certificate, the DNS proxy and SOCKS5 front end, the connection
 * tracker that re-checks inbound connections when policies change, and the drain.
 *
 * Lifecycle: `start()` binds everything or fails (nothing left behind); `stop("graceful")` stops
 * accepting, sends GOAWAY on HBONE, lets connections finish until the termination deadline and
 * then closes the rest; `stop("immediate")` closes everything now. After `stop()` resolves no
 * socket is created in the pod's namespace any more.
 */
import type { RemoteInfo, Socket as UdpSocket } from "node:dgram";
import type { Socket } from "node:net";
import { HboneClient, HboneServer } from "../../lib/hbone/index.ts";
import { formatIdentity, identitiesEqual, type Identity } from "../../lib/identity/index.ts";
import { formatSocketAddr } from "../../lib/net/index.ts";
import { describeDecision } from "../../lib/rbac/index.ts";
import {
  DnsMetrics,
  DnsProxy,
  readResolvConf,
  type UpstreamServer,
  type UpstreamSource,
} from "../dns/index.ts";
import {
  createInpodListeners,
  type InpodHandlers,
  type InpodListeners,
  type ProxyBindAddress,
  type ProxyHandle,
  type StopMode,
} from "../inpod/index.ts";
import type { StateChanges, Workload, WorkloadInfo } from "../state/index.ts";
import { TrafficMetrics } from "../telemetry/index.ts";
import { Socks5Server } from "./socks5/index.ts";
import { ActiveConnections } from "./active-connections.ts";
import { ConnectionTracker, type ConnectionsDump } from "./connection-tracker.ts";
import type { ProxyContext } from "./context.ts";
import { Inbound } from "./inbound.ts";
import { InboundPlaintext } from "./inbound-plaintext.ts";
import type { ProxyInputs } from "./inputs.ts";
import { LocalWorkload } from "./local-workload.ts";
import { Outbound } from "./outbound.ts";
import type { Rng } from "./plan/index.ts";
import { PodSockets } from "./pod-sockets.ts";
import { WorkloadDns, systemHostnameResolver, type HostnameResolver } from "./workload-dns.ts";

/** Optional knobs, mostly for tests; production passes none. */
export interface ProxyStartOptions {
  /** The DNS proxy's upstream resolvers. Default: the nameservers of ztunnel's /etc/resolv.conf. */
  readonly dnsUpstreams?: UpstreamSource;
  /** Listener ports inside the pod (the redirection rules expect the defaults). */
  readonly ports?: Partial<
    Record<"outbound" | "inboundPlaintext" | "inbound" | "dns" | "socks5", number>
  >;
  /** Random numbers for load balancing. Default Math.random. */
  readonly rng?: Rng;
  /** Resolves hostname-only workloads. Default: node:dns in ztunnel's namespace. */
  readonly resolveHostname?: HostnameResolver;
}

/** Which pod, and where its sockets live. */
export interface WorkloadProxyTarget {
  /** The pod UID (ZDS), for logs. */
  readonly uid: string;
  readonly workloadInfo: WorkloadInfo;
  /** The pod's network namespace; used until stop() resolves, never closed here. */
  readonly netnsFd: number;
  /** Called once stopped, when the proxy owns its namespace fd (dedicated mode). */
  readonly onStopped?: () => void;
}

export interface WorkloadProxyStats {
  readonly inboundConnections: number;
  readonly outboundConnections: number;
  readonly activeConnections: number;
  readonly hboneServer: ReturnType<HboneServer["stats"]>;
  readonly hboneClient: ReturnType<HboneClient["stats"]>;
}

let defaultUpstreams: readonly UpstreamServer[] | undefined;

/** ztunnel's own resolv.conf, read once per process. */
function systemUpstreams(inputs: ProxyInputs): readonly UpstreamServer[] {
  if (defaultUpstreams !== undefined) return defaultUpstreams;
  try {
    const rc = readResolvConf();
    for (const p of rc.problems) inputs.log.warn("resolv.conf line ignored", { problem: p });
    defaultUpstreams = rc.nameservers;
  } catch (err) {
    inputs.log.warn("cannot read /etc/resolv.conf; the DNS proxy will answer mesh names only", {
      error: err instanceof Error ? err.message : String(err),
    });
    defaultUpstreams = [];
  }
  return defaultUpstreams;
}

function dnsBindAddress(a: { readonly address: string; readonly port: number }): ProxyBindAddress {
  return a.address === "localhost"
    ? { kind: "localhost", port: a.port }
    : { kind: "ip", address: a.address, port: a.port };
}

export class WorkloadProxy implements ProxyHandle {
  readonly uid: string;
  readonly #inputs: ProxyInputs;
  readonly #netnsFd: number;
  readonly #options: ProxyStartOptions;
  readonly #local: LocalWorkload;
  readonly #sockets: PodSockets;
  readonly #tracker = new ConnectionTracker();
  readonly #active = new ActiveConnections();
  readonly #stop = new AbortController();
  readonly #client: HboneClient;
  readonly #server: HboneServer;
  readonly #ctx: ProxyContext;
  readonly #dns: DnsProxy | undefined;
  readonly #socks5: Socks5Server | undefined;
  readonly #metrics: TrafficMetrics;
  readonly #outbound: Outbound;
  #listeners: InpodListeners | undefined;
  #unsubscribe: (() => void) | undefined;
  /** The local workload authorization last saw (kept if it disappears from xDS). */
  #lastWorkload: Workload | undefined;
  #stopping: Promise<void> | undefined;

  readonly #onStopped: (() => void) | undefined;

  constructor(inputs: ProxyInputs, target: WorkloadProxyTarget, options: ProxyStartOptions = {}) {
    const info = target.workloadInfo;
    const netnsFd = target.netnsFd;
    this.uid = target.uid;
    this.#onStopped = target.onStopped;
    this.#inputs = inputs;
    this.#netnsFd = netnsFd;
    this.#options = options;
    const cfg = inputs.config;
    this.#metrics = TrafficMetrics.for(inputs.registry);
    this.#local = new LocalWorkload(inputs.state, info);
    this.#sockets = new PodSockets(netnsFd, cfg.packetMark);
    const hboneLog = inputs.log.child("hbone");
    this.#client = new HboneClient({
      certificates: (id) => this.#certificateFor(id),
      dial: this.#sockets.dial,
      connectTimeoutMs: cfg.connectTimeoutMs,
      idleTimeoutMs: cfg.poolUnusedReleaseTimeoutMs,
      tuning: { maxStreamsPerConnection: cfg.poolMaxStreamsPerConnection },
      logger: hboneLog,
    });
    this.#ctx = {
      inputs,
      metrics: this.#metrics,
      local: this.#local,
      sockets: this.#sockets,
      client: this.#client,
      tracker: this.#tracker,
      active: this.#active,
      workloadDns: new WorkloadDns(options.resolveHostname ?? systemHostnameResolver()),
      rng: options.rng ?? Math.random,
      transparent: () => this.#listeners?.transparent ?? false,
      stopped: this.#stop.signal,
    };
    this.#outbound = new Outbound(this.#ctx);
    const inbound = new Inbound(this.#ctx);
    this.#server = new HboneServer({
      // Looked up per connection: a rotated certificate is presented from the next one on.
      certificate: () => this.#serverCertificate(),
      hook: inbound.hook,
      tcpKeepaliveMs: 180_000,
      logger: hboneLog,
    });
    if (cfg.dnsProxy) {
      this.#dns = new DnsProxy({
        state: inputs.state,
        client: () => this.#local.get() ?? this.#local.wait(cfg.sourceWaitMs, this.#stop.signal),
        clusterDomain: cfg.clusterDomain,
        upstreams: options.dnsUpstreams ?? systemUpstreams(inputs),
        socketFactory: this.#sockets.dnsSocketFactory,
        metrics: new DnsMetrics(inputs.registry),
        logger: inputs.log.child("dns"),
      });
    }
    if (cfg.socks5) {
      const outbound = this.#outbound;
      const dns = this.#dns;
      this.#socks5 = new Socks5Server({
        resolve: (host, family) =>
          dns === undefined
            ? Promise.resolve({
                ok: false as const,
                reason: "failed" as const,
                detail: "SOCKS5 domain targets need the DNS proxy, which is disabled",
              })
            : dns.lookupHost(host, family),
        outbound: (socket, destination, leftover) =>
          outbound.handleSocks5(socket, destination, leftover),
        logger: inputs.log.child("socks5"),
      });
    }
  }

  /** The pod's identity, as xDS describes its workload. */
  #identity(): Identity | undefined {
    return this.#local.get()?.identity;
  }

  /** Only this pod's identity may be used by its proxy (ztunnel's ScopedSecretManager). */
  #certificateFor(id: Identity): ReturnType<ProxyInputs["certificates"]["certificate"]> {
    const own = this.#identity();
    if (own === undefined || !identitiesEqual(own, id)) {
      return Promise.reject(
        new Error(
          `refusing to use ${formatIdentity(id)} for pod ${this.#local.describe()}: it is not the pod's identity`,
        ),
      );
    }
    return this.#inputs.certificates.certificate(id);
  }

  async #serverCertificate(): ReturnType<ProxyInputs["certificates"]["certificate"]> {
    const w =
      this.#local.get() ??
      (await this.#local.wait(this.#inputs.config.sourceWaitMs, this.#stop.signal));
    if (w === undefined) {
      throw new Error(
        `pod ${this.#local.describe()} is not known from xDS, so its certificate is unknown`,
      );
    }
    return this.#inputs.certificates.certificate(w.identity);
  }

  /** Binds the listeners in the pod and starts serving. Throws (nothing left open) on failure. */
  async start(): Promise<void> {
    const cfg = this.#inputs.config;
    const outbound = this.#outbound;
    const plaintext = new InboundPlaintext(this.#ctx);
    const m = this.#metrics;
    const handlers: InpodHandlers = {
      outbound: outbound.handle,
      inboundPlaintext: plaintext.handle,
      inbound: (socket: Socket) => {
        // The in-pod listeners accept half-open sockets (right for plain TCP); TLS and HTTP/2
        // need the socket to close on the peer's FIN, or a vanished client hangs the session.
        socket.allowHalfOpen = false;
        m.socketOpened("destination");
        socket.once("close", () => m.socketClosed("destination"));
        this.#server.handleConnection(socket);
      },
      ...(this.#dns === undefined
        ? {}
        : {
            dns: {
              tcp: (s: Socket) => this.#dns?.handleTcpConnection(s),
              udp: (msg: Buffer, rinfo: RemoteInfo, sock: UdpSocket) =>
                this.#dns?.handleUdpMessage(msg, rinfo, sock),
            },
          }),
      ...(this.#socks5 === undefined ? {} : { socks5: (s: Socket) => this.#socks5?.handle(s) }),
    };
    this.#lastWorkload = this.#local.get();
    this.#unsubscribe = this.#inputs.state.subscribe((c) => this.#onStateChange(c));
    try {
      this.#listeners = await createInpodListeners(this.#netnsFd, handlers, {
        mark: cfg.packetMark,
        reusePort: cfg.inpodPortReuse,
        transparent: cfg.originalSource,
        dnsAddress: dnsBindAddress(cfg.dnsProxyAddress),
        ...(this.#options.ports === undefined ? {} : { ports: this.#options.ports }),
        log: this.#inputs.log,
      });
    } catch (err) {
      await this.#shutdown("immediate");
      throw err;
    }
    this.#inputs.log.info("pod proxy started", {
      uid: this.uid,
      pod: this.#local.describe(),
      transparent: this.#listeners.transparent,
      workload: this.#local.get()?.uid ?? "not yet known",
    });
  }

  #onStateChange(changes: StateChanges): void {
    const now = this.#local.get();
    const workloadChanged = now !== undefined && now !== this.#lastWorkload;
    if (now !== undefined) this.#lastWorkload = now;
    const p = changes.policies;
    if (!workloadChanged && p.added.length + p.updated.length + p.removed.length === 0) return;
    const target = this.#lastWorkload;
    if (target === undefined || this.#tracker.inboundCount === 0) return;
    const revoked = this.#tracker.recheck(
      this.#inputs.state,
      target,
      () => new Error("connection closed due to policy change"),
    );
    for (const r of revoked) {
      const i = r.connection.info;
      this.#inputs.log.info(
        "connection closed because it is no longer allowed after a policy update",
        {
          "src.addr": formatSocketAddr(i.src.ip, i.src.port),
          "src.identity": i.srcIdentity === undefined ? undefined : formatIdentity(i.srcIdentity),
          "dst.addr": formatSocketAddr(i.dst.ip, i.dst.port),
          protocol: i.protocol,
          reason: describeDecision(r.decision),
        },
      );
    }
  }

  /** Live connections, for config_dump's workloadState. */
  connections(): ConnectionsDump {
    return this.#tracker.dump();
  }

  stats(): WorkloadProxyStats {
    return {
      inboundConnections: this.#tracker.inboundCount,
      outboundConnections: this.#tracker.outboundCount,
      activeConnections: this.#active.size,
      hboneServer: this.#server.stats(),
      hboneClient: this.#client.stats(),
    };
  }

  stop(mode: StopMode): Promise<void> {
    this.#stopping ??= this.#shutdown(mode);
    return this.#stopping;
  }

  async #shutdown(mode: StopMode): Promise<void> {
    this.#unsubscribe?.();
    const cfg = this.#inputs.config;
    // Stop accepting first. (A net.Server's close completes only when every connection it
    // accepted has closed, so it is awaited last, after the drain.)
    const listenersClosed = this.#listeners?.close();
    const socksClosed = this.#socks5?.close();
    const reason = (): Error =>
      new Error(
        mode === "immediate"
          ? "connection closed: the pod's proxy stopped"
          : `connection closed: still open ${cfg.terminationDeadlineMs} ms after the drain started`,
      );
    if (mode === "immediate") {
      this.#stop.abort(reason());
      this.#active.abortAll(reason());
      await Promise.all([this.#server.close(), this.#active.idle()]);
    } else {
      const [, aborted] = await Promise.all([
        this.#server.drain(cfg.terminationDeadlineMs),
        this.#active.drain(cfg.terminationDeadlineMs, reason),
      ]);
      if (aborted > 0) {
        this.#inputs.log.info("drain deadline reached; closed the remaining connections", {
          uid: this.uid,
          connections: aborted,
        });
      }
      this.#stop.abort(reason());
    }
    await this.#client.close();
    await this.#dns?.close();
    await Promise.all([listenersClosed, socksClosed]);
    this.#sockets.close();
    this.#local.close();
    this.#onStopped?.();
    this.#inputs.log.info("pod proxy stopped", { uid: this.uid, mode });
  }
}
