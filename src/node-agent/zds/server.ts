/**
 * The node agent's ZDS server (istio-cni's ztunnel server): listens on the ZDS socket, greets each
 * ztunnel that connects, sends it the snapshot of enrolled pods, and afterwards forwards pod adds
 * (to the newest connection only: during a ztunnel rollout the new one takes new pods) and
 * deletes (to every connection, so an old ztunnel still draining lets go of the pod too).
 *
 * The pod set belongs to the agent and outlives connections: every new connection gets all of it
 * as its snapshot — `add` with the netns fd for pods whose netns this agent holds, `keep` for pods
 * it knows without one (after an agent restart) — then `snapshot_sent`.
 */
import { EventEmitter } from "node:events";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { fail, ok, type Result } from "../../lib/errors.ts";
import { LogOutput, type Logger } from "../../lib/log/index.ts";
import { SeqpacketServer } from "../../lib/net/index.ts";
import {
  NetnsHandle,
  ZDS_DEFAULT_SOCKET_PATH,
  ZDS_DEFAULT_TIMEOUT_MS,
  ZDS_VERSION_V1,
  encodeRequest,
  type PacketConn,
  type PacketListener,
  type WorkloadInfo,
} from "../../lib/zds/index.ts";
import { ZtunnelConnection, type AckOutcome, type ZdsFailure } from "./connection.ts";
import { sleep, systemTimers, type Timers } from "../../lib/timers.ts";

export interface ZdsServerOptions {
  /** The socket path. Default /var/run/ztunnel/ztunnel.sock. */
  readonly path?: string;
  /** chmod of the socket file (e.g. 0o600), when set. */
  readonly mode?: number;
  readonly log?: Logger;
  /** How long ztunnel has to say hello. Default 5 s. */
  readonly helloTimeoutMs?: number;
  /** How long ztunnel has to Ack each request. Default 5 s. */
  readonly ackTimeoutMs?: number;
  /** Accepts per second (one at a time, evenly spaced). Default 5, as istio-cni. */
  readonly acceptsPerSecond?: number;
  readonly timers?: Timers;
  /** The transport; default a SEQPACKET socket at `path`. Tests pass an in-memory one. */
  readonly listener?: PacketListener;
  /** Opens a netns path as an fd; default openNetns. */
  readonly openNetns?: (path: string) => number;
}

/** A pod the agent has enrolled. */
export interface EnrolledPod {
  readonly uid: string;
  readonly info: WorkloadInfo | undefined;
  /** Whether the agent holds the pod's netns (sent as `add`) or not (sent as `keep`). */
  readonly hasNetns: boolean;
}

export interface SnapshotResult {
  readonly uid: string;
  readonly sent: "add" | "keep";
  readonly outcome: AckOutcome;
}

export interface ZdsServerEvents {
  /** A ztunnel said hello. */
  connect: [info: { id: number; pid: number | undefined; version: number }];
  /** A ztunnel connection closed. */
  disconnect: [info: { id: number; reason: string }];
  /** A connection's snapshot is through (snapshot_sent Acked, or the connection failed). */
  snapshot: [info: { id: number; results: SnapshotResult[]; completed: boolean }];
  /** `ready` changed. */
  ready: [ready: boolean];
}

interface PodEntry {
  readonly uid: string;
  info: WorkloadInfo | undefined;
  netns: NetnsHandle | undefined;
}

export class ZdsServer extends EventEmitter<ZdsServerEvents> {
  readonly path: string;
  readonly #listener: PacketListener;
  readonly #log: Logger;
  readonly #timers: Timers;
  readonly #helloTimeoutMs: number;
  readonly #ackTimeoutMs: number;
  readonly #acceptIntervalMs: number;
  readonly #openNetns: ((path: string) => number) | undefined;
  readonly #pods = new Map<string, PodEntry>();
  /** Greeted connections, oldest first. */
  readonly #conns: ZtunnelConnection[] = [];
  readonly #greeting = new Set<ZtunnelConnection>();
  readonly #stop = new AbortController();
  readonly #acceptLoop: Promise<void>;
  #nextId = 1;
  #ready = false;
  #closed = false;

  private constructor(path: string, listener: PacketListener, options: ZdsServerOptions) {
    super();
    this.path = path;
    this.#listener = listener;
    this.#log = options.log ?? new LogOutput().logger("zds");
    this.#timers = options.timers ?? systemTimers;
    this.#helloTimeoutMs = options.helloTimeoutMs ?? ZDS_DEFAULT_TIMEOUT_MS;
    this.#ackTimeoutMs = options.ackTimeoutMs ?? ZDS_DEFAULT_TIMEOUT_MS;
    this.#acceptIntervalMs = 1000 / (options.acceptsPerSecond ?? 5);
    this.#openNetns = options.openNetns;
    this.#acceptLoop = this.#runAcceptLoop();
  }

  /**
   * Starts listening (creating the socket's directory if needed and removing a stale socket file)
   * and accepting. Throws AmbientError (EADDRINUSE when another agent is live on the path, EACCES,
   * ENATIVE, ...).
   */
  static listen(options: ZdsServerOptions = {}): ZdsServer {
    const path = options.path ?? ZDS_DEFAULT_SOCKET_PATH;
    let listener = options.listener;
    if (listener === undefined) {
      mkdirSync(dirname(path), { recursive: true });
      listener = SeqpacketServer.listen(
        path,
        options.mode === undefined ? {} : { mode: options.mode },
      );
    }
    return new ZdsServer(path, listener, options);
  }

  /** At least one ztunnel is connected (has said hello). */
  get connected(): boolean {
    return this.#conns.length > 0;
  }

  /** The newest ztunnel has its snapshot: adds now reach a ztunnel in sync with this agent. */
  get ready(): boolean {
    return this.#ready;
  }

  get connectionCount(): number {
    return this.#conns.length;
  }

  /** The pods this agent has enrolled, as the next snapshot would send them. */
  pods(): EnrolledPod[] {
    return [...this.#pods.values()].map((p) => ({
      uid: p.uid,
      info: p.info,
      hasNetns: p.netns !== undefined,
    }));
  }

  /**
   * Enrolls a pod: opens its netns and keeps it (for this and every later snapshot), then sends an
   * `add` with it to the newest ztunnel. Resolves ok once ztunnel Acked — the pod is then
   * `enabled` — or with why not (no ztunnel, Ack error, timeout, ...) — the pod is `pending`, and
   * the next snapshot carries it. Never rejects.
   */
  async addPod(uid: string, info: WorkloadInfo, netnsPath: string): Promise<AckOutcome> {
    if (this.#closed) return fail({ kind: "closed", message: "the ZDS server is closed" });
    const request = { kind: "add", uid, info } as const;
    const encoded = encodeRequest(request);
    if (!encoded.ok) return fail({ kind: "invalid", message: encoded.reason });
    let netns: NetnsHandle;
    try {
      netns = NetnsHandle.open(netnsPath, this.#openNetns);
    } catch (err) {
      return fail({
        kind: "netns",
        message: `cannot open the network namespace of pod ${uid} at ${netnsPath}: ${(err as Error).message}`,
      });
    }
    const existing = this.#pods.get(uid);
    if (existing?.netns !== undefined && existing.netns.sameNamespace(netns)) {
      netns.release(); // the one we hold is as good
      netns = existing.netns;
    } else {
      existing?.netns?.release();
    }
    this.#pods.set(uid, { uid, info, netns });

    const newest = this.#conns.at(-1);
    if (newest === undefined) {
      return fail({
        kind: "no-ztunnel",
        message: `no ztunnel is connected to ${this.path}; pod ${uid} goes in the next snapshot`,
      });
    }
    const outcome = await newest.request(request, { netns });
    if (!outcome.ok) {
      this.#log.warn("ztunnel did not take the pod", {
        uid,
        conn: newest.id,
        reason: outcome.reason.kind,
        error: outcome.reason.message,
      });
    }
    return outcome;
  }

  /**
   * Records a pod enrolled earlier whose netns this agent cannot open (after an agent restart):
   * snapshots send it as `keep`, so ztunnel keeps its existing proxy. Nothing is sent now. A pod
   * already known (with or without netns) is left as it is.
   */
  keepPod(uid: string, info?: WorkloadInfo): void {
    if (this.#closed || this.#pods.has(uid)) return;
    this.#pods.set(uid, { uid, info, netns: undefined });
  }

  /**
   * Un-enrolls a pod: forgets it (closing its netns) and sends `del` to every connected ztunnel.
   * Resolves ok when all Acked (or none is connected), else with the failures joined. Never rejects.
   */
  async removePod(uid: string): Promise<Result<undefined, ZdsFailure>> {
    const entry = this.#pods.get(uid);
    this.#pods.delete(uid);
    entry?.netns?.release();
    if (this.#closed) return ok(undefined);
    const outcomes = await Promise.all(
      this.#conns.map((c) => c.request({ kind: "del", uid }).then((o) => ({ c, o }))),
    );
    const failures = outcomes.flatMap(({ c, o }) => (o.ok ? [] : [{ c, f: o.reason }]));
    if (failures.length === 0) return ok(undefined);
    for (const { c, f } of failures) {
      this.#log.warn("ztunnel did not take the pod delete", {
        uid,
        conn: c.id,
        reason: f.kind,
        error: f.message,
      });
    }
    return fail({
      kind: failures[0]!.f.kind,
      message: failures.map(({ c, f }) => `connection ${c.id}: ${f.message}`).join("; "),
    });
  }

  /**
   * Stops listening, closes every connection, and closes the netns fds of all pods. Idempotent;
   * resolves when the accept loop has ended.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#stop.abort();
      this.#listener.close();
      for (const c of [...this.#greeting, ...this.#conns])
        c.close("the node agent is shutting down");
      for (const p of this.#pods.values()) p.netns?.release();
      this.#pods.clear();
    }
    await this.#acceptLoop;
  }

  async #runAcceptLoop(): Promise<void> {
    let last = -Infinity;
    while (!this.#closed) {
      // istio-cni's limit: at most 5 accepts a second, so a ztunnel stuck in a reconnect loop
      // cannot make this agent spin.
      const wait = last + this.#acceptIntervalMs - this.#timers.now();
      if (wait > 0) await sleep(this.#timers, wait, this.#stop.signal);
      if (this.#closed) return;
      let conn: PacketConn;
      try {
        conn = await this.#listener.accept({ signal: this.#stop.signal });
      } catch (err) {
        if (this.#closed) return;
        // e.g. EMFILE: say so and try again after the usual spacing.
        this.#log.error("accepting a ztunnel connection failed", { error: (err as Error).message });
        last = this.#timers.now();
        continue;
      }
      last = this.#timers.now();
      void this.#serve(conn);
    }
  }

  async #serve(packetConn: PacketConn): Promise<void> {
    const id = this.#nextId++;
    const conn = new ZtunnelConnection(packetConn, {
      id,
      ackTimeoutMs: this.#ackTimeoutMs,
      timers: this.#timers,
      log: this.#log,
      onClose: (reason) => {
        this.#onClosed(conn, reason);
      },
    });
    this.#greeting.add(conn);
    const hello = await conn.readHello(this.#helloTimeoutMs);
    this.#greeting.delete(conn);
    if (!hello.ok) {
      this.#log.warn("dropping ztunnel connection", {
        conn: id,
        pid: conn.pid,
        error: hello.reason,
      });
      conn.close(hello.reason);
      return;
    }
    if (this.#closed || conn.closed) {
      conn.close("the node agent is shutting down");
      return;
    }
    const { version } = hello.value;
    if (version !== ZDS_VERSION_V1) {
      this.#log.warn(
        "ztunnel announced a ZDS version this agent does not know; carrying on as V1",
        {
          conn: id,
          version,
        },
      );
    }
    this.#conns.push(conn);
    this.#log.info("ztunnel connected", {
      conn: id,
      pid: conn.pid,
      version,
      connections: this.#conns.length,
    });
    conn.startReading();
    this.emit("connect", { id, pid: conn.pid, version });
    this.#updateReady();
    await this.#sendSnapshot(conn);
  }

  /**
   * The snapshot: every pod, one request at a time (the connection's queue orders them before any
   * later add or del), then snapshot_sent. Ack errors are logged and the snapshot goes on; a
   * missed deadline or a failed send closes the connection.
   */
  async #sendSnapshot(conn: ZtunnelConnection): Promise<void> {
    const items = [...this.#pods.values()].map((p) => {
      // Pods with a netns always have their info (addPod takes both).
      const add = p.netns !== undefined && p.info !== undefined;
      const sent = add ? ("add" as const) : ("keep" as const);
      const outcome =
        add && p.info !== undefined
          ? conn.request(
              { kind: "add", uid: p.uid, info: p.info },
              { netns: p.netns, closeOnTimeout: true },
            )
          : conn.request({ kind: "keep", uid: p.uid }, { closeOnTimeout: true });
      return outcome.then((o) => ({ uid: p.uid, sent, outcome: o }));
    });
    const done = conn.request({ kind: "snapshot-sent" }, { closeOnTimeout: true });
    const results = await Promise.all(items);
    const end = await done;
    for (const r of results) {
      if (!r.outcome.ok && r.outcome.reason.kind === "ack-error") {
        this.#log.error("ztunnel could not take a pod from the snapshot", {
          conn: conn.id,
          uid: r.uid,
          sent: r.sent,
          error: r.outcome.reason.message,
        });
      }
    }
    if (end.ok || end.reason.kind === "ack-error") {
      if (!end.ok) {
        this.#log.error("ztunnel answered snapshot_sent with an error", {
          conn: conn.id,
          error: end.reason.message,
        });
      }
      conn.snapshotDone = true;
      this.#log.info("snapshot sent to ztunnel", { conn: conn.id, pods: results.length });
    }
    this.emit("snapshot", { id: conn.id, results, completed: conn.snapshotDone });
    this.#updateReady();
  }

  #onClosed(conn: ZtunnelConnection, reason: string): void {
    const i = this.#conns.indexOf(conn);
    if (i === -1) return; // never greeted: nothing announced, nothing to undo
    this.#conns.splice(i, 1);
    this.#log.info("ztunnel disconnected", {
      conn: conn.id,
      reason,
      connections: this.#conns.length,
    });
    this.emit("disconnect", { id: conn.id, reason });
    this.#updateReady();
  }

  #updateReady(): void {
    const ready = this.#conns.at(-1)?.snapshotDone ?? false;
    if (ready === this.#ready) return;
    this.#ready = ready;
    this.emit("ready", ready);
  }
}
