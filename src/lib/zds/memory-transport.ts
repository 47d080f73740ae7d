/**
 * An in-memory PacketConn pair and listener with SEQPACKET's semantics, for tests of the ZDS
 * state machines without sockets or root: messages keep their boundaries, the receiver's buffer
 * limits truncate (and say so), passed fds arrive as new fds the receiver owns (reopened through
 * /proc/self/fd, as the kernel would install a duplicate), extra fds are closed, and closing one
 * end shows the other end-of-stream.
 */
import { openSync } from "node:fs";
import { AmbientError } from "../errors.ts";
import { closeFd, type ReceiveOptions, type WaitOptions } from "../net/index.ts";
import type { PacketConn, PacketListener, ZdsPacket } from "./types.ts";

interface Queued {
  data: Uint8Array;
  fds: number[];
}

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
  cleanup: () => void;
}

const DEFAULT_MAX_BYTES = 64 * 1024;
const DEFAULT_MAX_FDS = 8;

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error
    ? reason
    : new AmbientError("ABORT_ERR", `aborted: ${String(reason)}`);
}

function closedError(what: string): AmbientError {
  return new AmbientError("ERR_SOCKET_CLOSED", `${what}: the socket is closed`);
}

/** Parks a waiter until it is resolved, times out, or is aborted. */
function park<T>(waiters: Waiter<T>[], options: WaitOptions, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      settle();
      if (options.signal !== undefined) reject(abortReason(options.signal));
    };
    const settle = (): void => {
      const i = waiters.indexOf(w);
      if (i !== -1) waiters.splice(i, 1);
      w.cleanup();
    };
    const w: Waiter<T> = {
      resolve,
      reject,
      cleanup: () => {
        if (timer !== undefined) clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      },
    };
    if (options.signal?.aborted === true) {
      reject(abortReason(options.signal));
      return;
    }
    if (options.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        settle();
        reject(
          new AmbientError("ETIMEDOUT", `${what} did not finish within ${options.timeoutMs} ms`),
        );
      }, options.timeoutMs);
    }
    options.signal?.addEventListener("abort", onAbort, { once: true });
    waiters.push(w);
  });
}

export class MemoryPacketConn implements PacketConn {
  #peer: MemoryPacketConn | undefined;
  #queue: Queued[] = [];
  #waiters: Waiter<ZdsPacket | null>[] = [];
  #closed = false;
  #peerClosed = false;
  /** Every message this end sent, as bytes (for tests that check what went on the wire). */
  readonly sent: Uint8Array[] = [];

  /** A connected pair of ends. */
  static pair(): [MemoryPacketConn, MemoryPacketConn] {
    const a = new MemoryPacketConn();
    const b = new MemoryPacketConn();
    a.#peer = b;
    b.#peer = a;
    return [a, b];
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(data: Uint8Array, fds: readonly number[] = [], _options: WaitOptions = {}): Promise<void> {
    if (this.#closed) return Promise.reject(closedError("sending"));
    const peer = this.#peer;
    if (peer === undefined || peer.#closed) {
      return Promise.reject(
        new AmbientError("EPIPE", "sending: the peer has closed the connection"),
      );
    }
    if (data.length === 0 && fds.length === 0) {
      return Promise.reject(new AmbientError("ERR_INVALID_ARG", "cannot send an empty message"));
    }
    // The kernel installs new fds in the receiver; reopening through /proc gives the same object.
    const dups = fds.map((fd) => openSync(`/proc/self/fd/${fd}`, "r"));
    const copy = Uint8Array.from(data);
    this.sent.push(copy);
    peer.#deliver({ data: copy, fds: dups });
    return Promise.resolve();
  }

  receive(options: ReceiveOptions = {}): Promise<ZdsPacket | null> {
    if (this.#closed) return Promise.reject(closedError("receiving"));
    const next = this.#queue.shift();
    if (next !== undefined) return Promise.resolve(this.#shape(next, options));
    if (this.#peerClosed) return Promise.resolve(null);
    return park(this.#waiters, options, "receiving").then((p) =>
      p === null ? null : this.#shape({ data: p.data, fds: [...p.fds] }, options),
    );
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const q of this.#queue.splice(0)) for (const fd of q.fds) closeFd(fd);
    for (const w of this.#waiters.splice(0)) {
      w.cleanup();
      w.reject(closedError("receiving"));
    }
    if (this.#peer !== undefined) this.#peer.#onPeerClosed();
  }

  #deliver(q: Queued): void {
    const w = this.#waiters.shift();
    if (w === undefined) {
      this.#queue.push(q);
      return;
    }
    w.cleanup();
    w.resolve({ data: q.data, fds: q.fds, truncated: false, fdsTruncated: false });
  }

  #onPeerClosed(): void {
    this.#peerClosed = true;
    if (this.#queue.length > 0) return;
    for (const w of this.#waiters.splice(0)) {
      w.cleanup();
      w.resolve(null);
    }
  }

  /** Applies the receiver's limits as the kernel would. */
  #shape(q: Queued, options: ReceiveOptions): ZdsPacket {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    const maxFds = options.maxFds ?? DEFAULT_MAX_FDS;
    const extra = q.fds.slice(maxFds);
    for (const fd of extra) closeFd(fd);
    return {
      data: q.data.subarray(0, maxBytes),
      size: q.data.length,
      fds: q.fds.slice(0, maxFds),
      truncated: q.data.length > maxBytes,
      fdsTruncated: extra.length > 0,
    };
  }
}

/** A listener whose clients call `connect()`; each connection is a MemoryPacketConn pair. */
export class MemoryPacketListener implements PacketListener {
  #pending: MemoryPacketConn[] = [];
  #waiters: Waiter<PacketConn>[] = [];
  #closed = false;
  /** How many connections were accepted. */
  accepted = 0;

  get closed(): boolean {
    return this.#closed;
  }

  /** The client side of a new connection; the server side goes to accept(). */
  connect(): MemoryPacketConn {
    if (this.#closed) throw new AmbientError("ECONNREFUSED", "connecting: nobody is listening");
    const [client, server] = MemoryPacketConn.pair();
    const w = this.#waiters.shift();
    if (w === undefined) {
      this.#pending.push(server);
    } else {
      w.cleanup();
      this.accepted++;
      w.resolve(server);
    }
    return client;
  }

  accept(options: WaitOptions = {}): Promise<PacketConn> {
    if (this.#closed) return Promise.reject(closedError("accepting"));
    const next = this.#pending.shift();
    if (next !== undefined) {
      this.accepted++;
      return Promise.resolve(next);
    }
    return park(this.#waiters, options, "accepting");
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#pending.splice(0)) c.close();
    for (const w of this.#waiters.splice(0)) {
      w.cleanup();
      w.reject(closedError("accepting"));
    }
  }
}
