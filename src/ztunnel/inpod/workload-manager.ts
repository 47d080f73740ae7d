/**
 * ztunnel's ZDS client (workloadmanager.rs): connects to the node agent (retrying 10 ms, doubling
 * to 15 s), says hello, applies each request to the InpodStateManager and Acks it.
 *
 * - A proxy that fails to start: Ack with the error, keep the connection, retry pending proxies
 *   every 5 s while connected.
 * - A packet that cannot be read (truncated, fds where none belong, an add without its fd or
 *   workload_info, an unknown payload) or a protocol error (a second snapshot_sent, keep after the
 *   snapshot): Ack with the error, drop the connection, reconnect after a backoff that doubles to
 *   15 s and resets once a snapshot completes. Istio's ztunnel stops its workload manager for good
 *   on a protocol error; here the running proxies are kept and the next snapshot reconciles them,
 *   so a confused agent costs a reconnect rather than the node's traffic.
 * - The agent closing the connection: reconnect at once.
 *
 * Ready = connected, first snapshot complete, and no pending proxy. Readiness is lost when the
 * connection is (ztunnel's readiness handler), so an enrolled pod is never reported served while
 * no agent is talking to this ztunnel.
 */
import { EventEmitter } from "node:events";
import { LogOutput, type Logger } from "../../lib/log/index.ts";
import { SeqpacketSocket } from "../../lib/net/index.ts";
import {
  ZDS_DEFAULT_SOCKET_PATH,
  ZDS_MAX_MESSAGE_BYTES,
  decodeRequest,
  describeRequest,
  encodeAck,
  encodeHello,
  type PacketConn,
} from "../../lib/zds/index.ts";
import { closeFd } from "../../lib/net/index.ts";
import type { InpodStateManager } from "./state-manager.ts";
import { sleep, systemTimers, type Timers } from "../../lib/timers.ts";

export const RETRY_PENDING_INTERVAL_MS = 5_000;
export const RECONNECT_INITIAL_MS = 10;
export const RECONNECT_MAX_MS = 15_000;

export interface WorkloadManagerOptions {
  /** The proxies; shared across connections (and across WorkloadManagers, see close()). */
  readonly state: InpodStateManager;
  /** The agent's socket (ztunnel's INPOD_UDS). Default /var/run/ztunnel/ztunnel.sock. */
  readonly path?: string;
  /** Opens a connection; default a SEQPACKET connect to `path`. Throws when nobody listens. */
  readonly connect?: () => PacketConn;
  readonly timers?: Timers;
  readonly log?: Logger;
  /** Pending proxies are retried this often. Default 5 s. */
  readonly retryIntervalMs?: number;
  readonly reconnectInitialMs?: number;
  readonly reconnectMaxMs?: number;
}

export interface WorkloadManagerEvents {
  /** Connected to the agent and said hello. */
  connect: [];
  /** The connection ended; `reason` says why. */
  disconnect: [reason: string];
  /** `ready` changed. */
  ready: [ready: boolean];
  /** A request was answered (for tests and debugging). */
  ack: [info: { request: string; error: string }];
}

type SessionEnd =
  | { readonly kind: "eof" }
  | { readonly kind: "closed" }
  | { readonly kind: "error"; readonly message: string };

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class WorkloadManager extends EventEmitter<WorkloadManagerEvents> {
  readonly path: string;
  readonly #state: InpodStateManager;
  readonly #connect: () => PacketConn;
  readonly #timers: Timers;
  readonly #log: Logger;
  readonly #retryIntervalMs: number;
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #stop = new AbortController();
  #conn: PacketConn | undefined;
  #connected = false;
  #ready = false;
  #retryTimer: unknown;
  #errorBackoffMs: number;
  #closed = false;
  readonly #loop: Promise<void>;

  private constructor(options: WorkloadManagerOptions) {
    super();
    this.path = options.path ?? ZDS_DEFAULT_SOCKET_PATH;
    this.#state = options.state;
    const path = this.path;
    this.#connect = options.connect ?? (() => SeqpacketSocket.connect(path));
    this.#timers = options.timers ?? systemTimers;
    this.#log = options.log ?? new LogOutput().logger("inpod");
    this.#retryIntervalMs = options.retryIntervalMs ?? RETRY_PENDING_INTERVAL_MS;
    this.#initialMs = options.reconnectInitialMs ?? RECONNECT_INITIAL_MS;
    this.#maxMs = options.reconnectMaxMs ?? RECONNECT_MAX_MS;
    this.#errorBackoffMs = this.#initialMs;
    this.#loop = this.#run();
  }

  /** Starts connecting (in the background). */
  static start(options: WorkloadManagerOptions): WorkloadManager {
    return new WorkloadManager(options);
  }

  get connected(): boolean {
    return this.#connected;
  }

  get ready(): boolean {
    return this.#ready;
  }

  /**
   * Stops talking to the agent: closes the connection and stops reconnecting. The proxies stay
   * (they are the state manager's): at shutdown call `state.drain()` next; a new WorkloadManager
   * on the same state picks up where this one left off, as after a reconnect.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#stop.abort();
      this.#conn?.close();
      this.#cancelRetry();
    }
    await this.#loop;
  }

  async #run(): Promise<void> {
    let connectDelay = this.#initialMs;
    while (!this.#closed) {
      let conn: PacketConn;
      try {
        conn = this.#connect();
      } catch (err) {
        this.#log.warn("failed to connect to the node agent; is it healthy? retrying", {
          path: this.path,
          error: message(err),
          retryInMs: connectDelay,
        });
        await sleep(this.#timers, connectDelay, this.#stop.signal);
        connectDelay = Math.min(this.#maxMs, connectDelay * 2);
        continue;
      }
      connectDelay = this.#initialMs;
      this.#conn = conn;
      const end = await this.#session(conn);
      conn.close();
      this.#conn = undefined;
      this.#cancelRetry();
      const reason =
        end.kind === "eof"
          ? "the node agent closed the connection"
          : end.kind === "closed"
            ? "ztunnel is shutting down"
            : end.message;
      if (this.#connected) {
        this.#connected = false;
        this.emit("disconnect", reason);
      }
      this.#updateReady();
      if (end.kind === "error" && !this.#closed) {
        const wait = this.#errorBackoffMs;
        this.#errorBackoffMs = Math.min(this.#maxMs, wait * 2);
        this.#log.error("ZDS connection to the node agent failed; reconnecting", {
          error: end.message,
          retryInMs: wait,
        });
        await sleep(this.#timers, wait, this.#stop.signal);
      } else if (end.kind === "eof") {
        this.#log.info("node agent closed the ZDS connection; reconnecting");
      }
    }
  }

  async #session(conn: PacketConn): Promise<SessionEnd> {
    await this.#state.connectionStarted();
    try {
      await conn.send(encodeHello());
    } catch (err) {
      if (this.#closed) return { kind: "closed" };
      return { kind: "error", message: `could not announce to the node agent: ${message(err)}` };
    }
    this.#connected = true;
    this.#log.info("connected to the node agent", { path: this.path });
    this.emit("connect");
    this.#updateReady();
    for (;;) {
      let packet;
      try {
        // ztunnel's read buffer is 1024 bytes; one fd is all a request may carry.
        packet = await conn.receive({ maxBytes: ZDS_MAX_MESSAGE_BYTES, maxFds: 1 });
      } catch (err) {
        if (this.#closed) return { kind: "closed" };
        return { kind: "error", message: `reading from the node agent failed: ${message(err)}` };
      }
      if (packet === null) return { kind: "eof" };
      const decoded = decodeRequest(packet);
      if (!decoded.ok) {
        for (const fd of packet.fds) closeFd(fd);
        const error = `failure to read message: ${decoded.reason}`;
        await this.#ack(conn, "unreadable message", error);
        return { kind: "error", message: error };
      }
      const request = decoded.value;
      const what = describeRequest(request);
      const outcome = await this.#state.handle(request);
      switch (outcome.kind) {
        case "ok":
          if (!(await this.#ack(conn, what, ""))) return this.#ackFailed();
          if (request.kind === "snapshot-sent") {
            this.#errorBackoffMs = this.#initialMs;
            if (this.#state.pendingCount > 0) this.#scheduleRetry();
          }
          break;
        case "proxy-error":
          this.#scheduleRetry();
          if (!(await this.#ack(conn, what, outcome.message))) return this.#ackFailed();
          break;
        case "protocol-error": {
          const error = `protocol error: ${outcome.message}`;
          await this.#ack(conn, what, error);
          return { kind: "error", message: error };
        }
      }
      this.#updateReady();
    }
  }

  #ackFailed(): SessionEnd {
    return this.#closed
      ? { kind: "closed" }
      : { kind: "error", message: "sending an Ack to the node agent failed" };
  }

  /** Sends an Ack; false if the connection is gone. */
  async #ack(conn: PacketConn, request: string, error: string): Promise<boolean> {
    try {
      await conn.send(encodeAck(error));
    } catch (err) {
      this.#log.warn("could not Ack the node agent", { request, error: message(err) });
      return false;
    }
    if (error !== "") this.#log.warn("answered the node agent with an error", { request, error });
    this.emit("ack", { request, error });
    return true;
  }

  #scheduleRetry(): void {
    if (this.#retryTimer !== undefined || this.#closed) return;
    this.#log.info("scheduling a retry of pending proxies", {
      uids: this.#state.pendingUids().join(","),
      inMs: this.#retryIntervalMs,
    });
    this.#retryTimer = this.#timers.setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#retry();
    }, this.#retryIntervalMs);
  }

  async #retry(): Promise<void> {
    if (!this.#connected || this.#closed) return;
    await this.#state.retryPending();
    if (this.#state.pendingCount > 0 && this.#connected) this.#scheduleRetry();
    this.#updateReady();
  }

  #cancelRetry(): void {
    if (this.#retryTimer === undefined) return;
    this.#timers.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  #updateReady(): void {
    const ready = this.#connected && this.#state.ready;
    if (ready === this.#ready) return;
    this.#ready = ready;
    this.#log.info(ready ? "workload manager is ready" : "workload manager is not ready");
    this.emit("ready", ready);
  }
}
