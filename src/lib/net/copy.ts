/**
 * Bidirectional byte copy between two Duplex streams — in practice an application TCP socket and
 * an HTTP/2 CONNECT stream (HBONE), or two TCP sockets.
 *
 * - Backpressure both ways: `write() === false` pauses the source, the sink's `'drain'` resumes it.
 *   The handlers are created once per copy; nothing is allocated per chunk.
 * - Half-close propagates: the end of one side's reads (TCP FIN, HTTP/2 END_STREAM) ends the other
 *   side's writes, and the copy keeps running in the other direction.
 * - Resets propagate: an abnormal close of one side (TCP RST, RST_STREAM, destroy, error) resets
 *   the other (RST_STREAM(CANCEL) on an HTTP/2 stream, a TCP RST on a socket).
 * - A reset is a normal way for a connection to end (ztunnel's copy treats it the same): it is
 *   reported as `reset`, not as `error`. `error` is for anything else (timeouts, internal failures).
 * - One completion callback, when both sides have closed, with the byte counts of each direction.
 */
import { constants as h2 } from "node:http2";
import { Socket } from "node:net";
import { addAbortSignal, type Duplex } from "node:stream";

/** Which side of a copy ended it abnormally (reset, aborted or errored) first. */
export type CopySide = "downstream" | "upstream";

export interface CopyResult {
  /** Bytes read from `downstream` and written to `upstream`. */
  readonly sent: number;
  /** Bytes read from `upstream` and written to `downstream`. */
  readonly received: number;
  /** The side that ended the copy abnormally (reset or error), if either did. */
  readonly resetBy: CopySide | undefined;
  /** A failure that is not a plain reset or disconnect (those are normal ways to end). */
  readonly error: Error | undefined;
}

export interface CopyHandle {
  /** Bytes copied downstream → upstream so far. */
  readonly sent: number;
  /** Bytes copied upstream → downstream so far. */
  readonly received: number;
  /** True once both sides have closed and the completion callback has run. */
  readonly done: boolean;
  /** Resets both sides (RST_STREAM / TCP RST), e.g. when a policy change revokes a connection. */
  abort(reason?: Error): void;
}

/**
 * Error codes that mean "the peer went away" rather than "something broke": resets, broken pipes,
 * streams cancelled or reset by the HTTP/2 peer, and streams destroyed before they finished.
 */
const disconnectCodes: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "EPIPE",
  "ECONNABORTED",
  "ENOTCONN",
  "ERR_STREAM_PREMATURE_CLOSE",
  // Our own reset of an HTTP/2 stream (see Side.reset) surfaces as an AbortError on it.
  "ABORT_ERR",
  "ERR_STREAM_DESTROYED",
  "ERR_STREAM_WRITE_AFTER_END",
  "ERR_HTTP2_STREAM_ERROR",
  "ERR_HTTP2_STREAM_CANCEL",
  "ERR_HTTP2_INVALID_STREAM",
  "ERR_HTTP2_GOAWAY_SESSION",
  "ERR_HTTP2_SESSION_ERROR",
]);

function isDisconnect(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && disconnectCodes.has(code);
}

type Kind = "h2" | "tcp" | "other";

interface H2StreamLike {
  readonly rstCode: number | undefined;
}

const abortedSignal = AbortSignal.abort();

function kindOf(s: Duplex): Kind {
  if ("rstCode" in s && "session" in s && typeof (s as { close?: unknown }).close === "function") {
    return "h2";
  }
  return s instanceof Socket ? "tcp" : "other";
}

/** One side of the copy: the stream, how to reset it, and what we have seen of it. */
class Side {
  readonly stream: Duplex;
  readonly name: CopySide;
  readonly kind: Kind;
  aborted = false;
  closed = false;
  error: Error | undefined = undefined;

  constructor(stream: Duplex, name: CopySide) {
    this.stream = stream;
    this.name = name;
    this.kind = kindOf(stream);
  }

  /** Was this side reset, aborted or errored (as opposed to ended or still open)? */
  wasReset(): boolean {
    if (this.error !== undefined || this.aborted) return true;
    if (this.kind === "h2") {
      const code = (this.stream as unknown as H2StreamLike).rstCode;
      return code !== undefined && code !== h2.NGHTTP2_NO_ERROR;
    }
    return false;
  }

  /** Did this side finish cleanly: both directions ended, no reset, no error? */
  cleanlyEnded(): boolean {
    const s = this.stream;
    return s.readableEnded && s.writableEnded && !this.wasReset();
  }

  reset(): void {
    const s = this.stream;
    if (s.destroyed) return;
    switch (this.kind) {
      case "h2":
        // Node's stream.close(code) ends the writable side first, which can put END_STREAM on
        // the wire ahead of the RST_STREAM, so the peer sees a clean FIN before the reset.
        // Destroying the stream through an aborted signal sends RST_STREAM(CANCEL) alone (what
        // hyper, and so ztunnel, sends when a tunnel is dropped).
        addAbortSignal(abortedSignal, s);
        return;
      case "tcp": {
        const sock = s as Socket;
        // libuv cannot reset a socket whose FIN is already queued (the reset fails with EINVAL
        // and leaves the handle open): once its writes are ended, a plain close is all there is.
        // resetAndDestroy waits for a connect in progress; it needs a TCP handle, so a TLS or
        // pipe socket is simply destroyed.
        if (sock.writableEnded) {
          sock.destroy();
          return;
        }
        try {
          sock.resetAndDestroy();
        } catch {
          sock.destroy();
        }
        return;
      }
      case "other":
        s.destroy();
        return;
    }
  }
}

export interface CopyOptions {
  /**
   * Bytes a destination may hold unflushed before its source is paused. By default a source is
   * paused as soon as `write()` returns false (the destination's own high-water mark, 64 KiB in
   * Node 24). An HTTP/2 stream acknowledges a write only once the session has written it to the
   * TLS socket, so with one 64 KiB chunk in flight per hop the copy runs in lock step with the
   * event loop; a larger allowance keeps reading while earlier chunks are encrypted and sent.
   */
  readonly highWaterMark?: number;
  /**
   * Gather the writes to a TCP socket that arrive in one turn of the event loop into one
   * `writev`. HTTP/2 DATA frames (16 KiB) straddle 16 KiB TLS records, so they reach JavaScript
   * as a large piece and a few bytes; writing each piece costs a syscall.
   */
  readonly coalesce?: boolean;
}

/** One direction of the copy. Handlers are bound once, so no closure is created per chunk. */
class Pump {
  readonly src: Duplex;
  readonly dst: Duplex;
  readonly srcSide: Side;
  readonly srcIsH2: boolean;
  readonly #hwm: number;
  readonly #coalesce: boolean;
  #corked = false;
  bytes = 0;
  paused = false;

  constructor(src: Side, dst: Side, options: CopyOptions) {
    this.srcSide = src;
    this.src = src.stream;
    this.dst = dst.stream;
    this.srcIsH2 = src.kind === "h2";
    this.#hwm = options.highWaterMark ?? 0;
    this.#coalesce = options.coalesce === true && dst.kind === "tcp";
  }

  readonly onData = (chunk: Buffer): void => {
    const dst = this.dst;
    if (dst.destroyed) return;
    this.bytes += chunk.length;
    if (this.#coalesce && !this.#corked) {
      this.#corked = true;
      dst.cork();
      setImmediate(this.uncork);
    }
    if (!dst.write(chunk) && dst.writableLength >= this.#hwm) {
      this.paused = true;
      this.src.pause();
    }
  };

  readonly uncork = (): void => {
    this.#corked = false;
    if (!this.dst.destroyed) this.dst.uncork();
  };

  readonly onDrain = (): void => {
    if (this.paused) {
      this.paused = false;
      this.src.resume();
    }
  };

  readonly onEnd = (): void => {
    // Node emits 'end' on an HTTP/2 stream that receives RST_STREAM before it records the reset
    // code (the EOF and the close reach JavaScript as separate callbacks of the same read).
    // Deciding on the next turn of the loop tells a real END_STREAM from a reset, which is
    // propagated as a reset when the stream closes, not as a FIN.
    if (this.srcIsH2) setImmediate(this.halfClose);
    else this.halfClose();
  };

  readonly halfClose = (): void => {
    if (this.srcSide.wasReset()) return;
    // Half-close: FIN / END_STREAM on the other side, keep copying the opposite direction.
    const dst = this.dst;
    if (!dst.destroyed && !dst.writableEnded) dst.end();
  };

  start(): void {
    this.src.on("end", this.onEnd);
    this.dst.on("drain", this.onDrain);
    if (this.src.readableEnded) {
      this.onEnd();
    } else {
      // Attaching 'data' switches the source to flowing mode; anything it buffered before the
      // copy started is delivered first.
      this.src.on("data", this.onData);
    }
  }
}

class BidiCopy implements CopyHandle {
  readonly #down: Side;
  readonly #up: Side;
  readonly #sendPump: Pump;
  readonly #recvPump: Pump;
  readonly #onDone: (result: CopyResult) => void;
  #resetBy: CopySide | undefined = undefined;
  #abortError: Error | undefined = undefined;
  #done = false;

  constructor(
    downstream: Duplex,
    upstream: Duplex,
    onDone: (result: CopyResult) => void,
    options: CopyOptions,
  ) {
    this.#down = new Side(downstream, "downstream");
    this.#up = new Side(upstream, "upstream");
    this.#sendPump = new Pump(this.#down, this.#up, options);
    this.#recvPump = new Pump(this.#up, this.#down, options);
    this.#onDone = onDone;
  }

  get sent(): number {
    return this.#sendPump.bytes;
  }
  get received(): number {
    return this.#recvPump.bytes;
  }
  get done(): boolean {
    return this.#done;
  }

  start(): void {
    for (const side of [this.#down, this.#up]) {
      const s = side.stream;
      // With allowHalfOpen false a net.Socket answers a FIN with its own FIN at once, cutting
      // off the reply still travelling the other way. The property is read at FIN time.
      if (side.kind === "tcp") (s as Socket).allowHalfOpen = true;
      s.on("error", (err: Error) => this.#onError(side, err));
      s.on("aborted", () => {
        side.aborted = true;
      });
      s.on("close", () => this.#onClose(side));
    }
    this.#sendPump.start();
    this.#recvPump.start();
    // A side that was already gone before the copy started never emits 'close' again.
    for (const side of [this.#down, this.#up]) {
      if (side.stream.destroyed && !side.closed) this.#onClose(side);
    }
  }

  abort(reason?: Error): void {
    if (this.#done) return;
    this.#abortError ??= reason;
    this.#down.reset();
    this.#up.reset();
  }

  #onError(side: Side, err: Error): void {
    side.error ??= err;
  }

  #onClose(side: Side): void {
    if (side.closed) return;
    side.closed = true;
    const other = side === this.#down ? this.#up : this.#down;
    if (!side.cleanlyEnded()) {
      this.#resetBy ??= side.name;
      if (!other.closed) other.reset();
    }
    if (other.closed) this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    let error = this.#abortError;
    if (error === undefined) {
      for (const side of [this.#down, this.#up]) {
        if (side.error !== undefined && !isDisconnect(side.error)) {
          error = side.error;
          break;
        }
      }
    }
    this.#onDone({
      sent: this.#sendPump.bytes,
      received: this.#recvPump.bytes,
      resetBy: this.#resetBy,
      error,
    });
  }
}

/**
 * Copies bytes both ways between `downstream` and `upstream` until both have closed, then calls
 * `onDone` once. Takes ownership of both streams' errors (listens for 'error' so none is thrown)
 * and of their lifetimes (an abnormal close of one resets the other).
 */
export function copyBidirectional(
  downstream: Duplex,
  upstream: Duplex,
  onDone: (result: CopyResult) => void,
  options: CopyOptions = {},
): CopyHandle {
  const copy = new BidiCopy(downstream, upstream, onDone, options);
  copy.start();
  return copy;
}
