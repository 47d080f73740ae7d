/**
 * Bytes for `/bytes` and `/stream-bytes`: cryptographically random, or from a seed so the same
 * request always returns the same bytes (tests compare checksums across the mesh).
 */
import { randomFillSync } from "node:crypto";

/**
 * A small, fast deterministic generator (mulberry32); not for secrets, only repeatability. The
 * byte stream does not depend on how it is cut into fills: unused bytes of a word carry over.
 */
export class SeededBytes {
  #state: number;
  #word = 0;
  #left = 0;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  #next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  fill(buf: Buffer): Buffer {
    let i = 0;
    while (this.#left > 0 && i < buf.length) {
      buf[i++] = this.#word & 0xff;
      this.#word >>>= 8;
      this.#left--;
    }
    const whole = i + ((buf.length - i) & ~3);
    while (i < whole) {
      const w = this.#next();
      buf[i] = w & 0xff;
      buf[i + 1] = (w >>> 8) & 0xff;
      buf[i + 2] = (w >>> 16) & 0xff;
      buf[i + 3] = w >>> 24;
      i += 4;
    }
    if (i < buf.length) {
      this.#word = this.#next();
      this.#left = 4;
      while (i < buf.length) {
        buf[i++] = this.#word & 0xff;
        this.#word >>>= 8;
        this.#left--;
      }
    }
    return buf;
  }
}

export function randomBytesFor(n: number, seed: number | undefined): Buffer {
  const buf = Buffer.allocUnsafe(n);
  return seed === undefined ? randomFillSync(buf) : new SeededBytes(seed).fill(buf);
}
