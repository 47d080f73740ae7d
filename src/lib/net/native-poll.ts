/**
 * Waiting for an fd Node does not manage (a SEQPACKET socket) to become readable or writable,
 * on the event loop: a native uv_poll handle (native/src/poller.c) watches the fd while someone
 * waits and is stopped otherwise, so an idle watcher neither costs anything nor keeps the process
 * alive. libuv allows one poller per fd, so each fd gets exactly one FdWatcher, shared by all its
 * waiters.
 */
import { getSystemErrorName } from "node:util";
import { AmbientError } from "../errors.ts";
import { checkFd, native, nativeError, type PollerHandle } from "./native.ts";

export type Readiness = "readable" | "writable";

export interface WaitOptions {
  /** Reject with ETIMEDOUT after this many milliseconds. */
  timeoutMs?: number | undefined;
  /** Reject with the signal's reason when it aborts. */
  signal?: AbortSignal | undefined;
}

const READABLE = 1;
const WRITABLE = 2;
const HANGUP = 4;

interface Waiter {
  kind: number;
  resolve: () => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class FdWatcher {
  readonly fd: number;
  #handle: PollerHandle | undefined;
  #waiters: Waiter[] = [];
  #events = 0;

  constructor(fd: number) {
    checkFd(fd);
    this.fd = fd;
    try {
      this.#handle = native().pollerCreate(fd, (errno, events) => {
        this.#onPoll(errno, events);
      });
    } catch (err) {
      throw nativeError(err, `watching fd ${fd}`);
    }
  }

  get closed(): boolean {
    return this.#handle === undefined;
  }

  /**
   * Resolves when the fd is readable / writable, or the peer hung up (the caller's next read or
   * write then reports it). Rejects with ETIMEDOUT, the abort reason, or ERR_SOCKET_CLOSED when
   * the watcher is closed meanwhile.
   */
  wait(readiness: Readiness, options: WaitOptions = {}): Promise<void> {
    if (this.#handle === undefined) {
      return Promise.reject(closedError(this.fd));
    }
    const { timeoutMs, signal } = options;
    if (signal?.aborted === true) return Promise.reject(abortError(signal));
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        kind: readiness === "readable" ? READABLE : WRITABLE,
        resolve,
        reject,
        timer: undefined,
        signal,
        onAbort: undefined,
      };
      if (timeoutMs !== undefined) {
        w.timer = setTimeout(() => {
          this.#settle(
            w,
            new AmbientError(
              "ETIMEDOUT",
              `fd ${this.fd} did not become ${readiness} within ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
      }
      if (signal !== undefined) {
        w.onAbort = () => {
          this.#settle(w, abortError(signal));
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
      this.#waiters.push(w);
      this.#update();
    });
  }

  /** Stops watching and rejects every waiter; call before closing the fd. Idempotent. */
  close(): void {
    const handle = this.#handle;
    if (handle === undefined) return;
    this.#handle = undefined;
    native().pollerClose(handle);
    const err = closedError(this.fd);
    for (const w of this.#waiters.splice(0)) this.#finish(w, err);
  }

  #onPoll(errno: number, events: number): void {
    if (errno !== 0) {
      const code = getSystemErrorName(-errno);
      const err = new AmbientError(code, `watching fd ${this.fd} failed: ${code}`);
      for (const w of this.#waiters.splice(0)) this.#finish(w, err);
      this.#update();
      return;
    }
    // A hang-up wakes everyone: reads then see end-of-stream, writes see EPIPE.
    const ready = (events & HANGUP) !== 0 ? READABLE | WRITABLE : events;
    const woken = this.#waiters.filter((w) => (w.kind & ready) !== 0);
    this.#waiters = this.#waiters.filter((w) => (w.kind & ready) === 0);
    for (const w of woken) this.#finish(w, undefined);
    this.#update();
  }

  #settle(w: Waiter, err: unknown): void {
    const i = this.#waiters.indexOf(w);
    if (i === -1) return;
    this.#waiters.splice(i, 1);
    this.#finish(w, err);
    this.#update();
  }

  #finish(w: Waiter, err: unknown): void {
    if (w.timer !== undefined) clearTimeout(w.timer);
    if (w.onAbort !== undefined) w.signal?.removeEventListener("abort", w.onAbort);
    if (err === undefined) {
      w.resolve();
    } else {
      w.reject(err);
    }
  }

  /** Watches exactly the events someone waits for (level-triggered, so never more). */
  #update(): void {
    if (this.#handle === undefined) return;
    let events = 0;
    for (const w of this.#waiters) events |= w.kind;
    if (events === this.#events) return;
    native().pollerUpdate(this.#handle, events);
    this.#events = events;
  }
}

/** The signal's reason when it is an Error (AbortSignal.abort() gives a DOMException, which is). */
function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error
    ? reason
    : new AmbientError("ABORT_ERR", `the wait was aborted: ${String(reason)}`, { cause: reason });
}

function closedError(fd: number): AmbientError {
  return new AmbientError("ERR_SOCKET_CLOSED", `fd ${fd} was closed while waiting on it`);
}
