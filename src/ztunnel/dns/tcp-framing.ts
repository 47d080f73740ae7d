/**
 * DNS over TCP framing (RFC 1035 §4.2.2, RFC 7766): each message is preceded by its length as
 * two bytes, big-endian, and a connection may carry many messages. The decoder is a small state
 * machine over arbitrary chunks: a message that arrives whole inside one chunk is handed out as
 * a view of that chunk (no copy); one split across chunks is assembled in a buffer of exactly
 * its declared size.
 */

export type FrameHandler = (message: Buffer) => void;

export class DnsTcpDecoder {
  /** Bytes of the length prefix seen so far (0, 1 or 2). */
  #lenHave = 0;
  #lenHigh = 0;
  #body: Buffer | undefined;
  #bodyHave = 0;

  /** Whether a message has started but not completed (bytes are pending). */
  get pending(): boolean {
    return this.#lenHave !== 0 || this.#body !== undefined;
  }

  /**
   * Feeds a chunk, calling `onMessage` for every message completed by it. Returns false when a
   * length prefix of 0 arrives (no DNS message is empty; the caller closes the connection).
   */
  push(chunk: Buffer, onMessage: FrameHandler): boolean {
    let o = 0;
    const n = chunk.length;
    while (o < n) {
      if (this.#body === undefined) {
        if (this.#lenHave === 0 && n - o >= 2) {
          const len = chunk.readUInt16BE(o);
          if (len === 0) return false;
          o += 2;
          if (n - o >= len) {
            onMessage(chunk.subarray(o, o + len));
            o += len;
          } else {
            this.#startBody(len);
          }
          continue;
        }
        if (this.#lenHave === 0) {
          this.#lenHigh = chunk[o++] as number;
          this.#lenHave = 1;
          continue;
        }
        const len = (this.#lenHigh << 8) | (chunk[o++] as number);
        this.#lenHave = 0;
        if (len === 0) return false;
        this.#startBody(len);
        continue;
      }
      const body = this.#body;
      const take = Math.min(body.length - this.#bodyHave, n - o);
      chunk.copy(body, this.#bodyHave, o, o + take);
      this.#bodyHave += take;
      o += take;
      if (this.#bodyHave === body.length) {
        this.#body = undefined;
        this.#bodyHave = 0;
        onMessage(body);
      }
    }
    return true;
  }

  #startBody(len: number): void {
    this.#body = Buffer.allocUnsafe(len);
    this.#bodyHave = 0;
  }
}

/** A message with its two-byte length prefix, ready to write. */
export function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(message.length + 2);
  out.writeUInt16BE(message.length, 0);
  message.copy(out, 2);
  return out;
}
