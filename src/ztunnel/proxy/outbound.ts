/**
 * Outbound (port 15001, and SOCKS5 after its handshake), INTEROP §2.2: a connection the pod's app
 * opened, captured with its original destination. One plan per connection (`planOutbound`), then:
 * HBONE through the pod's pool, plain TCP to an endpoint without HBONE, passthrough to the
 * original destination, double HBONE through an east-west gateway; a hostname-only endpoint is
 * resolved and planned again. Then bytes are copied both ways; the result is counted and logged.
 *
 * Failures before a plan exists are logged as `connection failed` and the app's connection is
 * reset; failures reaching the upstream are a `connection complete` with the error and a response
 * flag, and a reset too.
 */
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Identity } from "../../lib/identity/index.ts";
import { HboneClient, type Forwarded, type Tunnel } from "../../lib/hbone/index.ts";
import { copyBidirectional, type CopyHandle, type CopyResult } from "../../lib/net/copy.ts";
import {
  canonicalIp,
  formatSocketAddr,
  getOriginalDst,
  isLoopback,
  socketFd,
} from "../../lib/net/index.ts";
import type { Workload } from "../state/index.ts";
import { ConnectionResult, logConnectionFailed, type ConnectionOpen } from "../telemetry/index.ts";
import type { ActiveConnection } from "./active-connections.ts";
import { workloadBaggage } from "./baggage.ts";
import { message, peerOf, resetSocket, responseFlagFor, type ProxyContext } from "./context.ts";
import type { OutboundConnectionInfo } from "./connection-tracker.ts";
import {
  formatAddr,
  planOutbound,
  type OutboundConnect,
  type OutboundPlan,
  type SocketAddr,
} from "./plan/index.ts";
import { tcpConnect } from "./tcp-connect.ts";

const noop = (): void => {};
const NO_BYTES = { clientToServer: 0, serverToClient: 0 } as const;

export class Outbound {
  readonly #ctx: ProxyContext;

  constructor(ctx: ProxyContext) {
    this.#ctx = ctx;
  }

  /** A connection captured on 15001. */
  readonly handle = (socket: Socket): void => {
    const ctx = this.#ctx;
    this.#accepted(socket);
    const src = peerOf(socket);
    let dst: SocketAddr;
    try {
      const d = getOriginalDst(socketFd(socket));
      dst = { ip: canonicalIp(d.address) ?? d.address, port: d.port };
    } catch (err) {
      logConnectionFailed(
        ctx.inputs.accessLog,
        formatAddr(src),
        formatSocketAddr(socket.localAddress ?? "", socket.localPort ?? 0),
        "source",
        `cannot read the original destination: ${message(err)}`,
      );
      resetSocket(socket);
      return;
    }
    void new OutboundConnection(ctx, socket, src, dst, undefined).run();
  };

  /**
   * A SOCKS5 CONNECT after the handshake (the socket is paused; `leftover` is what the app sent
   * after its request). Same flow as a captured connection.
   */
  readonly handleSocks5 = (
    socket: Socket,
    destination: { readonly ip: string; readonly port: number },
    leftover: Buffer,
  ): void => {
    this.#accepted(socket);
    const dst = { ip: canonicalIp(destination.ip) ?? destination.ip, port: destination.port };
    const extra = leftover.length > 0 ? leftover : undefined;
    void new OutboundConnection(this.#ctx, socket, peerOf(socket), dst, extra).run();
  };

  #accepted(socket: Socket): void {
    const m = this.#ctx.metrics;
    m.socketOpened("source");
    socket.once("close", () => m.socketClosed("source"));
    // Owner of the socket's errors until the copy takes over (which listens too).
    socket.on("error", noop);
    socket.setNoDelay(true);
  }
}

/** One outbound connection from accept to close. */
class OutboundConnection implements ActiveConnection {
  readonly #ctx: ProxyContext;
  readonly #socket: Socket;
  readonly #src: SocketAddr;
  readonly #dst: SocketAddr;
  readonly #leftover: Buffer | undefined;
  readonly #abort = new AbortController();
  #copy: CopyHandle | undefined;
  #upstream: Duplex | undefined;
  #finished = false;

  constructor(
    ctx: ProxyContext,
    socket: Socket,
    src: SocketAddr,
    dst: SocketAddr,
    leftover: Buffer | undefined,
  ) {
    this.#ctx = ctx;
    this.#socket = socket;
    this.#src = src;
    this.#dst = dst;
    this.#leftover = leftover;
    ctx.active.add(this);
    // The app gave up while we were still setting up: stop connecting.
    socket.once("close", () => {
      if (this.#copy === undefined)
        this.#abort.abort(new Error("the client closed the connection"));
    });
  }

  abort(reason: Error): void {
    this.#abort.abort(reason);
    if (this.#copy !== undefined) {
      this.#copy.abort(reason);
      return;
    }
    this.#upstream?.destroy();
    resetSocket(this.#socket);
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#ctx.active.delete(this);
  }

  /** Refused before a plan: one warning, reset the app's connection. */
  #failEarly(error: string): void {
    logConnectionFailed(
      this.#ctx.inputs.accessLog,
      formatAddr(this.#src),
      formatAddr(this.#dst),
      "source",
      error,
    );
    resetSocket(this.#socket);
    this.#finish();
  }

  async run(): Promise<void> {
    try {
      await this.#run();
    } catch (err) {
      // A bug rather than an outcome: every expected failure is handled where it happens.
      this.#ctx.inputs.log.error("outbound connection failed unexpectedly", {
        "src.addr": formatAddr(this.#src),
        "dst.addr": formatAddr(this.#dst),
        error: err instanceof Error ? (err.stack ?? err.message) : String(err),
      });
      this.#upstream?.destroy();
      resetSocket(this.#socket);
      this.#finish();
    }
  }

  #plan(source: Workload): OutboundPlan {
    const { inputs, rng, workloadDns } = this.#ctx;
    return planOutbound({
      source,
      sourceIp: this.#src.ip,
      destination: this.#dst,
      state: inputs.state,
      config: inputs.config,
      rng,
      dns: workloadDns.lookup,
    });
  }

  async #run(): Promise<void> {
    const ctx = this.#ctx;
    const cfg = ctx.inputs.config;
    const signal = this.#abort.signal;
    const dst = this.#dst;
    if (isLoopback(dst.ip) && cfg.illegalPorts.has(dst.port)) {
      this.#failEarly(
        `refusing connection to ${formatAddr(dst)}: it is one of ztunnel's own ports (a call to itself would loop)`,
      );
      return;
    }
    const source = ctx.local.get() ?? (await ctx.local.wait(cfg.sourceWaitMs, signal));
    if (signal.aborted) {
      this.#failEarly(message(signal.reason));
      return;
    }
    if (source === undefined) {
      this.#failEarly(
        `unknown source: pod ${ctx.local.describe()} is not known from xDS after ${cfg.sourceWaitMs} ms; check that the control plane sends its Workload for node ${cfg.nodeName}`,
      );
      return;
    }
    let plan = this.#plan(source);
    if (plan.kind === "needs-dns") {
      try {
        await ctx.workloadDns.resolve(plan.hostname, plan.preferIpv6);
        ctx.metrics.onDemandDnsUsed(source, plan.hostname);
      } catch (err) {
        this.#failEarly(message(err));
        return;
      }
      if (signal.aborted) {
        this.#failEarly(message(signal.reason));
        return;
      }
      plan = this.#plan(source);
    }
    switch (plan.kind) {
      case "needs-dns":
        this.#failEarly(
          `hostname ${plan.hostname} of workload ${plan.workload.uid} did not resolve`,
        );
        return;
      case "refused":
        this.#failEarly(plan.message);
        return;
      case "passthrough":
        await this.#tcp(source, plan.destination, undefined, plan.service);
        return;
      case "connect":
        if (plan.protocol === "TCP") {
          await this.#tcp(source, plan.destination, plan.destinationWorkload, plan.service);
        } else {
          await this.#hbone(source, plan);
        }
        return;
    }
  }

  #track(actual: SocketAddr, protocol: OutboundConnectionInfo["protocol"]): () => void {
    return this.#ctx.tracker.trackOutbound({
      src: this.#src,
      originalDst: this.#dst,
      actualDst: actual,
      protocol,
    });
  }

  async #tcp(
    source: Workload,
    actual: SocketAddr,
    destination: Workload | undefined,
    service: OutboundConnect["service"],
  ): Promise<void> {
    const ctx = this.#ctx;
    const result = this.#result(actual, undefined, {
      reporter: "source",
      source,
      derivedSource: undefined,
      destination,
      destinationService: service,
      securityPolicy: "unknown",
    });
    const untrack = this.#track(actual, "TCP");
    let upstream: Socket;
    try {
      upstream = await tcpConnect(ctx.sockets, actual, {
        timeoutMs: ctx.inputs.config.connectTimeoutMs,
        signal: this.#abort.signal,
      });
    } catch (err) {
      this.#upstreamFailed(result, untrack, err);
      return;
    }
    this.#pipe(upstream, result, untrack, noop);
  }

  async #hbone(source: Workload, plan: OutboundConnect): Promise<void> {
    const ctx = this.#ctx;
    const result = this.#result(plan.destination, plan.authority, {
      reporter: "source",
      source,
      // We do mTLS: our identity is the source principal.
      derivedSource: { identity: source.identity },
      destination: plan.destinationWorkload,
      destinationService: plan.service,
      securityPolicy: "mutual_tls",
    });
    const untrack = this.#track(
      plan.destination,
      plan.protocol === "DOUBLE_HBONE" ? "DOUBLEHBONE" : "HBONE",
    );
    const forwarded: Forwarded =
      plan.forwardedHost === undefined
        ? { for: formatAddr(this.#src) }
        : { for: formatAddr(this.#src), host: plan.forwardedHost };
    const baggage = workloadBaggage(source, ctx.inputs.config.clusterId);
    let stream: Duplex;
    let after = noop;
    try {
      if (plan.protocol === "DOUBLE_HBONE") {
        const t = await this.#doubleHbone(source.identity, plan, forwarded, baggage);
        stream = t.stream;
        after = t.close;
      } else {
        const t: Tunnel = await ctx.client.connect({
          source: source.identity,
          expected: plan.expectedIdentities,
          destination: formatAddr(plan.destination),
          authority: plan.authority ?? formatAddr(plan.originalDestination),
          forwarded,
          baggage,
          signal: this.#abort.signal,
        });
        stream = t.stream;
      }
    } catch (err) {
      this.#upstreamFailed(result, untrack, err);
      return;
    }
    this.#pipe(stream, result, untrack, after);
  }

  /**
   * Double HBONE (INTEROP §1.3, §2.2 step 6): an outer pooled tunnel to the east-west gateway,
   * then, inside it, a TLS + HTTP/2 connection of its own (never pooled) to the final
   * destination, whose CONNECT carries `x-forwarded-network`.
   */
  async #doubleHbone(
    source: Identity,
    plan: OutboundConnect,
    forwarded: Forwarded,
    baggage: string,
  ): Promise<{ stream: Duplex; close: () => void }> {
    const ctx = this.#ctx;
    const inner = plan.inner;
    if (inner === undefined || plan.authority === undefined) {
      throw new Error("double HBONE plan without an inner tunnel (planner bug)");
    }
    const outer = await ctx.client.connect({
      source,
      expected: plan.expectedIdentities,
      destination: formatAddr(plan.destination),
      authority: plan.authority,
      forwarded,
      baggage,
      signal: this.#abort.signal,
    });
    const outerStream = outer.stream;
    // The inner client's "TCP connection" is the outer stream; the socket calls it makes on
    // a fresh connection mean nothing on a stream.
    const asSocket = Object.assign(outerStream, {
      setNoDelay: () => asSocket,
      setKeepAlive: () => asSocket,
    }) as unknown as Socket;
    const innerClient = new HboneClient({
      certificates: (id) => ctx.inputs.certificates.certificate(id),
      dial: () => asSocket,
      connectTimeoutMs: ctx.inputs.config.connectTimeoutMs,
      logger: ctx.inputs.log.child("hbone"),
    });
    const expected =
      inner.expectedIdentities.length > 0
        ? inner.expectedIdentities
        : [plan.upstream.workload.identity];
    const close = (): void => {
      void innerClient.close();
      outerStream.destroy();
    };
    try {
      const t = await innerClient.connect({
        source,
        expected,
        destination: formatAddr(plan.destination),
        authority: inner.authority,
        forwarded,
        baggage,
        headers: { "x-forwarded-network": inner.forwardedNetwork },
        signal: this.#abort.signal,
      });
      return { stream: t.stream, close };
    } catch (err) {
      close();
      throw err;
    }
  }

  #result(
    actual: SocketAddr,
    hboneTarget: string | undefined,
    open: ConnectionOpen,
  ): ConnectionResult {
    return new ConnectionResult(this.#ctx.metrics, this.#ctx.inputs.accessLog, {
      src: formatAddr(this.#src),
      dst: formatAddr(actual),
      hboneTarget,
      open,
    });
  }

  #upstreamFailed(result: ConnectionResult, untrack: () => void, err: unknown): void {
    const aborted = this.#abort.signal.aborted;
    const why = aborted ? message(this.#abort.signal.reason) : message(err);
    result.record(NO_BYTES, `connection failed: ${why}`, aborted ? "-" : responseFlagFor(err));
    untrack();
    resetSocket(this.#socket);
    this.#finish();
  }

  #pipe(upstream: Duplex, result: ConnectionResult, untrack: () => void, after: () => void): void {
    const signal = this.#abort.signal;
    if (signal.aborted) {
      // Stopped or the app left between connecting and now.
      upstream.destroy();
      this.#upstreamFailed(result, untrack, signal.reason);
      after();
      return;
    }
    this.#upstream = upstream;
    const leftover = this.#leftover;
    if (leftover !== undefined) upstream.write(leftover);
    const extra = leftover?.length ?? 0;
    this.#copy = copyBidirectional(this.#socket, upstream, (r: CopyResult) => {
      result.record(
        { clientToServer: r.sent + extra, serverToClient: r.received },
        r.error === undefined ? undefined : r.error.message,
      );
      untrack();
      after();
      this.#finish();
    });
    // SOCKS5 hands the socket over explicitly paused; a 'data' listener alone does not resume it.
    if (this.#socket.isPaused()) this.#socket.resume();
  }
}
