/**
 * Reconnect backoff: exponential from `initialMs` (ztunnel: 10 ms), doubling up to `maxMs`
 * (15 s), each delay spread by ±`jitter` so that many proxies cut off together do not return
 * in lock-step.
 */
export interface BackoffOptions {
  readonly initialMs?: number;
  readonly maxMs?: number;
  /** Fraction of each delay to randomise, 0..1. Default 0.2 (±20 %). */
  readonly jitter?: number;
  /** Uniform [0, 1); injectable for tests. */
  readonly random?: () => number;
}

export const DEFAULT_INITIAL_BACKOFF_MS = 10;
export const DEFAULT_MAX_BACKOFF_MS = 15_000;

export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #base: number;

  constructor(options: BackoffOptions = {}) {
    this.#initial = options.initialMs ?? DEFAULT_INITIAL_BACKOFF_MS;
    this.#max = Math.max(this.#initial, options.maxMs ?? DEFAULT_MAX_BACKOFF_MS);
    this.#jitter = Math.min(1, Math.max(0, options.jitter ?? 0.2));
    this.#random = options.random ?? Math.random;
    this.#base = this.#initial;
  }

  /** The un-jittered delay the next call to `next()` is centred on. */
  get base(): number {
    return this.#base;
  }

  /** The delay to wait now; the following one doubles (up to the maximum). */
  next(): number {
    const base = this.#base;
    this.#base = Math.min(this.#max, base * 2);
    const spread = base * this.#jitter * (2 * this.#random() - 1);
    return Math.max(0, Math.round(base + spread));
  }

  /** Back to the initial delay (after a healthy connection, or an orderly close). */
  reset(): void {
    this.#base = this.#initial;
  }
}
