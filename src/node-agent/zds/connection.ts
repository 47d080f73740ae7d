/**
 * One ztunnel connection as the node agent sees it. ZDS Acks carry no id: an Ack answers the one
 * request in flight. So requests go out one at a time from a queue, each waiting for its Ack, and
 * a single reader takes every packet ztunnel sends.
 *
 * Liveness: istio-cni polls the socket with a 10 ms read every few seconds and treats a timeout as
 * "alive". Here the reader is always parked on the socket instead (uv_poll, no CPU while idle):
 * a dead peer shows at once as end-of-stream, and anything ztunnel sends unasked is a protocol
 * error that closes the connection, as in istio-cni.
 *
 * Ack deadline: during the snapshot a missed deadline closes the connection (ztunnel reconnects
 * and gets a fresh snapshot, as istio-cni does). Afterwards the request fails with "timeout" and
 * the connection stays; the late Ack, when it comes, is recognised and dropped rather than taken
 * as the answer to the next request.
 */
import { errnoCode, fail, ok, type Result } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log/index.ts";
import { closeFd } from "../../lib/net/index.ts";
import {
  ZDS_MAX_MESSAGE_BYTES,
  decodeAck,
  decodeHello,
  describeRequest,
  encodeRequest,
  type NetnsHandle,
  type PacketConn,
  type ZdsRequest,
} from "../../lib/zds/index.ts";
import { type Timers } from "../../lib/timers.ts";

/** Why a request did not succeed. */
export type ZdsFailureKind =
  /** ztunnel answered with an error (e.g. its proxy for the pod failed to start). */
  | "ack-error"
  /** No Ack within the deadline. */
  | "timeout"
  /** The connection closed before the Ack. */
  | "disconnected"
  /** Writing to the socket failed. */
  | "send-failed"
  /** The request could not be encoded (too long for ZDS, empty uid). */
  | "invalid"
  /** No ztunnel is connected. */
  | "no-ztunnel"
  /** The pod's network namespace could not be opened. */
  | "netns"
  /** The server is closed. */
  | "closed";

export interface ZdsFailure {
  readonly kind: ZdsFailureKind;
  readonly message: string;
}

export type AckOutcome = Result<undefined, ZdsFailure>;

export interface RequestOptions {
  /** The pod's netns, sent with the request; the connection holds a reference until the Ack. */
  readonly netns?: NetnsHandle | undefined;
  /** Close the connection if the Ack deadline passes (the snapshot). */
  readonly closeOnTimeout?: boolean;
}

interface Job {
  readonly request: ZdsRequest;
  readonly bytes: Uint8Array;
  readonly netns: NetnsHandle | undefined;
  readonly closeOnTimeout: boolean;
  readonly resolve: (outcome: AckOutcome) => void;
  /** The send, once started: the netns fd must stay open until sendmsg is done with it. */
  sending?: Promise<void>;
}

export interface ConnectionOptions {
  readonly id: number;
  readonly ackTimeoutMs: number;
  readonly timers: Timers;
  readonly log: Logger;
  /** Called once, when the connection closes for any reason. */
  readonly onClose: (reason: string) => void;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class ZtunnelConnection {
  readonly id: number;
  /** ztunnel's process id (SO_PEERCRED), when the transport can tell. */
  readonly pid: number | undefined;
  /** Set once the snapshot's snapshot_sent was acknowledged. */
  snapshotDone = false;
  readonly #conn: PacketConn;
  readonly #opts: ConnectionOptions;
  readonly #log: Logger;
  #queue: Job[] = [];
  #current: { job: Job; timer: unknown } | undefined;
  #lateAcks = 0;
  #closed = false;

  constructor(conn: PacketConn, options: ConnectionOptions) {
    this.#conn = conn;
    this.#opts = options;
    this.id = options.id;
    this.#log = options.log;
    let pid: number | undefined;
    try {
      pid = conn.peerCredentials?.().pid;
    } catch {
      // Not knowing the peer only costs a log field.
    }
    this.pid = pid;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Waits for ztunnel's ZdsHello; a failure is the reason to give when closing. */
  async readHello(timeoutMs: number): Promise<Result<{ version: number }>> {
    let packet;
    try {
      packet = await this.#conn.receive({
        maxBytes: ZDS_MAX_MESSAGE_BYTES,
        maxFds: 1,
        timeoutMs,
      });
    } catch (err) {
      return fail(
        errnoCode(err) === "ETIMEDOUT"
          ? `ztunnel sent no hello within ${timeoutMs} ms`
          : `reading ztunnel's hello failed: ${message(err)}`,
      );
    }
    if (packet === null) return fail("ztunnel closed the connection before saying hello");
    for (const fd of packet.fds) closeFd(fd);
    return decodeHello(packet);
  }

  /** Starts the reader that takes Acks and notices the peer going away. */
  startReading(): void {
    void this.#readLoop();
  }

  /**
   * Queues a request; resolves with its outcome once ztunnel Acked it (or it failed). Never
   * rejects. The request's netns reference is taken now and given back when the request settles.
   */
  request(request: ZdsRequest, options: RequestOptions = {}): Promise<AckOutcome> {
    const encoded = encodeRequest(request);
    if (!encoded.ok) return Promise.resolve(fail({ kind: "invalid", message: encoded.reason }));
    if (this.#closed) {
      return Promise.resolve(
        fail({ kind: "disconnected", message: `ztunnel connection ${this.id} is closed` }),
      );
    }
    return new Promise<AckOutcome>((resolve) => {
      this.#queue.push({
        request,
        bytes: encoded.value,
        netns: options.netns?.retain(),
        closeOnTimeout: options.closeOnTimeout ?? false,
        resolve,
      });
      this.#pump();
    });
  }

  /** Closes the connection; queued and in-flight requests fail as "disconnected". Idempotent. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
    const gone = fail<ZdsFailure>({
      kind: "disconnected",
      message: `ztunnel connection closed before it acknowledged: ${reason}`,
    });
    if (this.#current !== undefined) this.#settle(this.#current.job, gone);
    for (const job of this.#queue.splice(0)) this.#settle(job, gone);
    this.#opts.onClose(reason);
  }

  #pump(): void {
    if (this.#current !== undefined || this.#closed) return;
    const job = this.#queue.shift();
    if (job === undefined) return;
    const timer = this.#opts.timers.setTimeout(() => {
      this.#onAckTimeout(job);
    }, this.#opts.ackTimeoutMs);
    this.#current = { job, timer };
    this.#log.debug("sending to ztunnel", { conn: this.id, request: describeRequest(job.request) });
    const fds = job.netns === undefined ? [] : [job.netns.fd];
    job.sending = this.#conn.send(job.bytes, fds, { timeoutMs: this.#opts.ackTimeoutMs });
    job.sending.catch((err: unknown) => {
      if (this.#closed) return;
      if (this.#current?.job === job) {
        this.#settle(job, fail({ kind: "send-failed", message: message(err) }));
      }
      this.close(`sending ${describeRequest(job.request)} failed: ${message(err)}`);
    });
  }

  #onAckTimeout(job: Job): void {
    if (this.#current?.job !== job || this.#closed) return;
    const what = describeRequest(job.request);
    this.#settle(
      job,
      fail({
        kind: "timeout",
        message: `ztunnel did not acknowledge the ${what} within ${this.#opts.ackTimeoutMs} ms`,
      }),
    );
    if (job.closeOnTimeout) {
      this.close(`no Ack for the snapshot's ${what} within ${this.#opts.ackTimeoutMs} ms`);
      return;
    }
    this.#lateAcks++;
    this.#pump();
  }

  /**
   * Ends a job exactly once: its timer stops, and its netns reference goes back as soon as the
   * send no longer needs the fd (a send still waiting for room would otherwise use a closed, or
   * reused, fd number).
   */
  #settle(job: Job, outcome: AckOutcome): void {
    if (this.#current?.job === job) {
      this.#opts.timers.clearTimeout(this.#current.timer);
      this.#current = undefined;
    }
    const { netns } = job;
    if (netns !== undefined) {
      const release = (): void => {
        netns.release();
      };
      if (job.sending === undefined) release();
      else void job.sending.then(release, release);
    }
    job.resolve(outcome);
  }

  async #readLoop(): Promise<void> {
    for (;;) {
      let packet;
      try {
        packet = await this.#conn.receive({ maxBytes: ZDS_MAX_MESSAGE_BYTES, maxFds: 1 });
      } catch (err) {
        if (!this.#closed) this.close(`reading from ztunnel failed: ${message(err)}`);
        return;
      }
      if (this.#closed) {
        for (const fd of packet?.fds ?? []) closeFd(fd);
        return;
      }
      if (packet === null) {
        this.close("ztunnel closed the connection");
        return;
      }
      // ztunnel never sends fds; decodeAck reports any, and they must not leak meanwhile.
      for (const fd of packet.fds) closeFd(fd);
      const ack = decodeAck(packet);
      if (!ack.ok) {
        this.close(`protocol error: ${ack.reason}`);
        return;
      }
      if (this.#lateAcks > 0) {
        this.#lateAcks--;
        this.#log.warn("late Ack from ztunnel dropped", { conn: this.id, error: ack.value.error });
        continue;
      }
      const current = this.#current;
      if (current === undefined) {
        this.close("protocol error: ztunnel sent a message without being asked");
        return;
      }
      const error = ack.value.error;
      this.#settle(
        current.job,
        error === "" ? ok(undefined) : fail({ kind: "ack-error", message: error }),
      );
      this.#pump();
    }
  }
}
