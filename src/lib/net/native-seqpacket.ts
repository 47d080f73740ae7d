/**
 * Unix SOCK_SEQPACKET sockets with fd passing: the ZDS channel (the node agent listens, ztunnel
 * connects; the agent sends each pod's netns fd with SCM_RIGHTS). Node has no SEQPACKET sockets
 * and would swallow passed fds, so these sockets live entirely in the addon; readiness comes from
 * FdWatcher (uv_poll on the event loop), so waiting never blocks the JS thread.
 *
 * Messages keep their boundaries. Received fds are close-on-exec and belong to the receiver:
 * close them (closeFd) or hand them on. Expected outcomes are values: `tryReceive` returns null
 * when nothing is queued, `receive` resolves null at end-of-stream. Failures are AmbientErrors
 * with the errno name as code (ECONNREFUSED, ENOENT, EPIPE, ...), ETIMEDOUT, or ERR_SOCKET_CLOSED.
 */
import { chmodSync, lstatSync, statSync, unlinkSync } from "node:fs";
import { AmbientError, errnoCode } from "../errors.ts";
import { FdWatcher, type WaitOptions } from "./native-poll.ts";
import {
  checkFd,
  checkInt,
  closeFd,
  invalidArg,
  native,
  nativeError,
  peerCredentials,
  type PeerCredentials,
} from "./native.ts";

/** The kernel's limit on fds in one message (SCM_MAX_FD). */
export const SEQPACKET_MAX_FDS = 253;
/** The addon's limit on one receive buffer. */
export const SEQPACKET_MAX_RECEIVE_BYTES = 16 * 1024 * 1024;

export interface SeqpacketMessage {
  /** The message, or its first maxBytes when `truncated`. */
  data: Buffer;
  /** The message's full length as sent. */
  size: number;
  /** Received fds (close-on-exec), now owned by the receiver. */
  fds: number[];
  /** MSG_TRUNC: the message was longer than maxBytes; the rest is lost. */
  truncated: boolean;
  /** MSG_CTRUNC: more fds were sent than maxFds; the kernel closed the extra ones. */
  fdsTruncated: boolean;
}

export interface ReceiveOptions extends WaitOptions {
  /** Receive buffer size; longer messages arrive truncated. Default 64 KiB (ZDS messages are small). */
  maxBytes?: number | undefined;
  /** How many fds to accept per message. Default 8. */
  maxFds?: number | undefined;
}

export interface SeqpacketListenOptions {
  /** listen(2) backlog. Default 16: the node agent has one ztunnel client. */
  backlog?: number | undefined;
  /** chmod the socket file after binding (e.g. 0o600: only root may connect). */
  mode?: number | undefined;
}

const DEFAULT_MAX_BYTES = 64 * 1024;
const DEFAULT_MAX_FDS = 8;

/** Remaining milliseconds before `deadline`, for waits in a retry loop. */
function remaining(deadline: number | undefined): number | undefined {
  return deadline === undefined ? undefined : Math.max(0, deadline - performance.now());
}

function deadlineOf(options: WaitOptions): number | undefined {
  return options.timeoutMs === undefined ? undefined : performance.now() + options.timeoutMs;
}

function closedError(what: string): AmbientError {
  return new AmbientError("ERR_SOCKET_CLOSED", `${what}: the socket is closed`);
}

/** One end of a SEQPACKET connection. */
export class SeqpacketSocket {
  readonly fd: number;
  #closed = false;
  #watcher: FdWatcher | undefined;

  /** Adopts a connected SEQPACKET fd (from accept or connect). */
  constructor(fd: number) {
    checkFd(fd);
    this.fd = fd;
  }

  /**
   * Connects to a listening socket file. Unix connects complete at once: ENOENT (no such file),
   * ECONNREFUSED (nobody listening), EAGAIN (the listener's backlog is full: retry later).
   */
  static connect(path: string): SeqpacketSocket {
    if (typeof path !== "string" || path === "")
      throw invalidArg("path must be a non-empty string");
    try {
      return new SeqpacketSocket(native().seqpacketConnect(path));
    } catch (err) {
      throw nativeError(err, `connecting to SEQPACKET socket ${path}`);
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one message now; false when the peer's queue is full (wait and retry: see send). */
  trySend(data: Uint8Array, fds: readonly number[] = []): boolean {
    if (this.#closed) throw closedError(`sending on fd ${this.fd}`);
    if (!(data instanceof Uint8Array)) throw invalidArg("data must be a Uint8Array");
    if (!Array.isArray(fds) || fds.length > SEQPACKET_MAX_FDS) {
      throw invalidArg(`fds must be an array of at most ${SEQPACKET_MAX_FDS} file descriptors`);
    }
    for (const fd of fds) checkFd(fd, "each of fds");
    if (data.length === 0 && fds.length === 0) {
      // The receiver could not tell it from the peer closing the connection.
      throw invalidArg("cannot send an empty message without fds");
    }
    try {
      return native().seqpacketSend(this.fd, data, fds);
    } catch (err) {
      throw nativeError(err, `sending a ${data.length}-byte message on fd ${this.fd}`);
    }
  }

  /** Sends one message, waiting (without blocking the loop) while the peer's queue is full. */
  async send(
    data: Uint8Array,
    fds: readonly number[] = [],
    options: WaitOptions = {},
  ): Promise<void> {
    const deadline = deadlineOf(options);
    while (!this.trySend(data, fds)) {
      await this.#watch().wait("writable", {
        timeoutMs: remaining(deadline),
        signal: options.signal,
      });
    }
  }

  /**
   * Receives one message if one is queued: the message, "eof" when the peer has closed, or null
   * when there is nothing yet.
   */
  tryReceive(options: ReceiveOptions = {}): SeqpacketMessage | "eof" | null {
    if (this.#closed) throw closedError(`receiving on fd ${this.fd}`);
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    const maxFds = options.maxFds ?? DEFAULT_MAX_FDS;
    checkInt(maxBytes, "maxBytes", 0, SEQPACKET_MAX_RECEIVE_BYTES);
    checkInt(maxFds, "maxFds", 0, SEQPACKET_MAX_FDS);
    let raw;
    try {
      raw = native().seqpacketReceive(this.fd, maxBytes, maxFds);
    } catch (err) {
      throw nativeError(err, `receiving a message on fd ${this.fd}`);
    }
    if (raw === null) return null;
    if (raw.eof) return "eof";
    const { data, size, fds, truncated, fdsTruncated } = raw;
    return { data, size, fds, truncated, fdsTruncated };
  }

  /** Receives the next message, waiting for one; null when the peer has closed. */
  async receive(options: ReceiveOptions = {}): Promise<SeqpacketMessage | null> {
    const deadline = deadlineOf(options);
    for (;;) {
      const got = this.tryReceive(options);
      if (got === "eof") return null;
      if (got !== null) return got;
      await this.#watch().wait("readable", {
        timeoutMs: remaining(deadline),
        signal: options.signal,
      });
    }
  }

  /** The peer process (SO_PEERCRED). */
  peerCredentials(): PeerCredentials {
    if (this.#closed) throw closedError(`reading peer credentials of fd ${this.fd}`);
    return peerCredentials(this.fd);
  }

  /** Closes the socket; pending sends and receives reject with ERR_SOCKET_CLOSED. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher?.close();
    closeFd(this.fd);
  }

  #watch(): FdWatcher {
    if (this.#closed) throw closedError(`waiting on fd ${this.fd}`);
    this.#watcher ??= new FdWatcher(this.fd);
    return this.#watcher;
  }
}

/** A listening SEQPACKET socket file (the node agent's ZDS endpoint). */
export class SeqpacketServer {
  readonly fd: number;
  readonly path: string;
  #ino: bigint;
  #closed = false;
  #watcher: FdWatcher | undefined;

  private constructor(fd: number, path: string, ino: bigint) {
    this.fd = fd;
    this.path = path;
    this.#ino = ino;
  }

  /**
   * Listens on `path`, first removing a stale socket file left by an earlier run. Refuses
   * (EADDRINUSE) when a live server still answers there, and (EEXIST) when the path is not a
   * socket, rather than deleting someone else's file.
   */
  static listen(path: string, options: SeqpacketListenOptions = {}): SeqpacketServer {
    if (typeof path !== "string" || path === "")
      throw invalidArg("path must be a non-empty string");
    const backlog = options.backlog ?? 16;
    checkInt(backlog, "backlog", 0, 0x7fffffff);
    if (options.mode !== undefined) checkInt(options.mode, "mode", 0, 0o7777);
    removeStaleSocket(path);
    let fd: number;
    try {
      fd = native().seqpacketListen(path, backlog);
    } catch (err) {
      throw nativeError(err, `listening on SEQPACKET socket ${path}`);
    }
    try {
      if (options.mode !== undefined) chmodSync(path, options.mode);
      return new SeqpacketServer(fd, path, statSync(path, { bigint: true }).ino);
    } catch (err) {
      closeFd(fd);
      unlinkQuietly(path);
      throw nativeError(err, `setting up SEQPACKET socket ${path}`);
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Takes a pending connection, or null when none is waiting. */
  tryAccept(): SeqpacketSocket | null {
    if (this.#closed) throw closedError(`accepting on ${this.path}`);
    let fd: number | null;
    try {
      fd = native().seqpacketAccept(this.fd);
    } catch (err) {
      throw nativeError(err, `accepting a connection on ${this.path}`);
    }
    return fd === null ? null : new SeqpacketSocket(fd);
  }

  /** Waits for the next connection. */
  async accept(options: WaitOptions = {}): Promise<SeqpacketSocket> {
    const deadline = deadlineOf(options);
    for (;;) {
      const sock = this.tryAccept();
      if (sock !== null) return sock;
      this.#watcher ??= new FdWatcher(this.fd);
      await this.#watcher.wait("readable", {
        timeoutMs: remaining(deadline),
        signal: options.signal,
      });
    }
  }

  /**
   * Stops listening and removes the socket file if it is still ours (another server may have
   * replaced it since). Pending accepts reject with ERR_SOCKET_CLOSED; accepted sockets stay open.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher?.close();
    closeFd(this.fd);
    try {
      if (lstatSync(this.path, { bigint: true }).ino === this.#ino) unlinkSync(this.path);
    } catch (err) {
      if (errnoCode(err) !== "ENOENT") throw nativeError(err, `removing ${this.path}`);
    }
  }
}

function removeStaleSocket(path: string): void {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return;
    throw nativeError(err, `checking ${path}`);
  }
  if (!isSocket) {
    throw new AmbientError(
      "EEXIST",
      `${path} exists and is not a socket; refusing to replace it (remove it or choose another path)`,
    );
  }
  const addon = native(); // outside the try: a missing addon must not pass for a stale socket
  let live: number | undefined;
  try {
    live = addon.seqpacketConnect(path);
  } catch {
    // Nobody answers (ECONNREFUSED) or it is another kind of socket: a leftover to replace.
  }
  if (live !== undefined) {
    closeFd(live);
    throw new AmbientError(
      "EADDRINUSE",
      `another process is listening on ${path}; stop it first (is a second node agent running?)`,
    );
  }
  unlinkQuietly(path);
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone, or never created: nothing to undo.
  }
}
