/**
 * Inbound plaintext (port 15006), INTEROP §2.4: TCP that reached the pod without HBONE, captured
 * with its original destination. Authorization runs with no peer identity (so STRICT mTLS, a DENY
 * `not_principals: presence` policy, refuses it); the source workload is looked up by IP for
 * telemetry only. Then a connection to the app — from the original client address when the
 * listeners are transparent — and bytes both ways.
 */
import type { Socket } from "node:net";
import type { CopyHandle, CopyResult } from "../../lib/net/copy.ts";
import { copyBidirectional } from "../../lib/net/copy.ts";
import { canonicalIp, getOriginalDst, socketFd } from "../../lib/net/index.ts";
import { ConnectionResult, logConnectionFailed } from "../telemetry/index.ts";
import type { ActiveConnection } from "./active-connections.ts";
import { message, peerOf, resetSocket, type ProxyContext } from "./context.ts";
import { formatAddr, planInboundPlaintext, type SocketAddr } from "./plan/index.ts";
import { tcpConnect } from "./tcp-connect.ts";

const noop = (): void => {};
const NO_BYTES = { clientToServer: 0, serverToClient: 0 } as const;

export class InboundPlaintext {
  readonly #ctx: ProxyContext;

  constructor(ctx: ProxyContext) {
    this.#ctx = ctx;
  }

  readonly handle = (socket: Socket): void => {
    const ctx = this.#ctx;
    const m = ctx.metrics;
    m.socketOpened("destination");
    socket.once("close", () => m.socketClosed("destination"));
    socket.on("error", noop);
    socket.setNoDelay(true);
    const src = peerOf(socket);
    let dst: SocketAddr;
    try {
      const d = getOriginalDst(socketFd(socket));
      dst = { ip: canonicalIp(d.address) ?? d.address, port: d.port };
    } catch (err) {
      logConnectionFailed(
        ctx.inputs.accessLog,
        formatAddr(src),
        `${socket.localAddress ?? ""}:${socket.localPort ?? 0}`,
        "destination",
        `cannot read the original destination: ${message(err)}`,
      );
      resetSocket(socket);
      return;
    }
    void new PlaintextConnection(ctx, socket, src, dst).run();
  };
}

class PlaintextConnection implements ActiveConnection {
  readonly #ctx: ProxyContext;
  readonly #socket: Socket;
  readonly #src: SocketAddr;
  readonly #dst: SocketAddr;
  readonly #abort = new AbortController();
  #copy: CopyHandle | undefined;
  #finished = false;

  constructor(ctx: ProxyContext, socket: Socket, src: SocketAddr, dst: SocketAddr) {
    this.#ctx = ctx;
    this.#socket = socket;
    this.#src = src;
    this.#dst = dst;
    ctx.active.add(this);
    socket.once("close", () => {
      if (this.#copy === undefined)
        this.#abort.abort(new Error("the client closed the connection"));
    });
  }

  abort(reason: Error): void {
    this.#abort.abort(reason);
    if (this.#copy !== undefined) this.#copy.abort(reason);
    else resetSocket(this.#socket);
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#ctx.active.delete(this);
  }

  async run(): Promise<void> {
    try {
      await this.#run();
    } catch (err) {
      this.#ctx.inputs.log.error("inbound plaintext connection failed unexpectedly", {
        "src.addr": formatAddr(this.#src),
        "dst.addr": formatAddr(this.#dst),
        error: err instanceof Error ? (err.stack ?? err.message) : String(err),
      });
      resetSocket(this.#socket);
      this.#finish();
    }
  }

  async #run(): Promise<void> {
    const ctx = this.#ctx;
    const { inputs } = ctx;
    const cfg = inputs.config;
    const src = this.#src;
    const dst = this.#dst;
    const signal = this.#abort.signal;
    const local = ctx.local.get() ?? (await ctx.local.wait(cfg.sourceWaitMs, signal));
    const plan = planInboundPlaintext({
      localWorkload: local,
      originalDestination: dst,
      peerAddress: src,
      state: inputs.state,
      config: cfg,
    });
    if (plan.kind === "refused" && plan.code !== "denied") {
      logConnectionFailed(
        inputs.accessLog,
        formatAddr(src),
        formatAddr(dst),
        "destination",
        plan.message,
      );
      resetSocket(this.#socket);
      this.#finish();
      return;
    }
    const result = new ConnectionResult(ctx.metrics, inputs.accessLog, {
      src: formatAddr(src),
      dst: formatAddr(dst),
      hboneTarget: undefined,
      open: {
        reporter: "destination",
        source:
          plan.kind === "accept"
            ? plan.sourceWorkload
            : inputs.state.workloadByAddress(cfg.network, src.ip),
        // No identity on plaintext; present so the source labels are reported as unknown.
        derivedSource: {},
        destination: local,
        destinationService: plan.kind === "accept" ? plan.destinationService : undefined,
        securityPolicy: "unknown",
      },
    });
    if (plan.kind === "refused") {
      result.record(NO_BYTES, `connection closed due to policy rejection: ${plan.message}`, "DENY");
      resetSocket(this.#socket);
      this.#finish();
      return;
    }
    const tracked = ctx.tracker.trackInbound({
      protocol: "TCP",
      src,
      srcIdentity: undefined,
      dst: plan.upstream,
      originalDst: undefined,
    });
    let upstream: Socket;
    try {
      upstream = await tcpConnect(ctx.sockets, plan.upstream, {
        from: ctx.transparent() ? { ip: src.ip, transparent: true } : undefined,
        timeoutMs: cfg.connectTimeoutMs,
        signal,
      });
    } catch (err) {
      tracked.release();
      result.record(
        NO_BYTES,
        `connection failed: ${message(err)}`,
        signal.aborted ? "-" : "CONNECT",
      );
      resetSocket(this.#socket);
      this.#finish();
      return;
    }
    if (signal.aborted || tracked.revoked) {
      upstream.destroy();
      tracked.release();
      result.record(
        NO_BYTES,
        tracked.revoked ? "connection closed due to policy change" : message(signal.reason),
      );
      resetSocket(this.#socket);
      this.#finish();
      return;
    }
    let lateReason: Error | undefined;
    const copy = copyBidirectional(this.#socket, upstream, (r: CopyResult) => {
      tracked.release();
      result.record(
        { clientToServer: r.sent, serverToClient: r.received },
        lateReason?.message ?? r.error?.message,
      );
      this.#finish();
    });
    this.#copy = copy;
    tracked.setCloser((reason) => {
      lateReason = reason;
      copy.abort(reason);
    });
  }
}
