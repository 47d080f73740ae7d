/**
 * Debounce for published changes, like istiod's PILOT_DEBOUNCE_AFTER / PILOT_DEBOUNCE_MAX: a
 * batch flushes once `quietMs` pass without a new change, or `maxDelayMs` after its first change
 * even if changes keep coming. One timer per batch: a trigger only records the time, and the
 * timer, when it fires early, re-arms for the remaining time (no clear/set per change).
 */
import { systemTimers } from "../../timers.ts";
import type { Timers } from "../../timers.ts";

export interface DebounceOptions {
  readonly quietMs: number;
  readonly maxDelayMs: number;
  readonly timers?: Timers;
}

export class Debouncer {
  readonly #quiet: number;
  readonly #max: number;
  readonly #timers: Timers;
  readonly #flush: (batchStart: number) => void;
  #first: number | undefined;
  #last = 0;
  #timer: unknown;

  constructor(options: DebounceOptions, flush: (batchStart: number) => void) {
    this.#quiet = Math.max(0, options.quietMs);
    this.#max = Math.max(this.#quiet, options.maxDelayMs);
    this.#timers = options.timers ?? systemTimers;
    this.#flush = flush;
  }

  /** When the open batch's first change came, if one is open. */
  get batchStart(): number | undefined {
    return this.#first;
  }

  trigger(): void {
    const now = this.#timers.now();
    this.#last = now;
    if (this.#first === undefined) {
      this.#first = now;
      this.#arm(this.#quiet);
    }
  }

  /** Flushes the open batch now, if any. */
  flushNow(): void {
    if (this.#first === undefined) return;
    this.#cancel();
    const start = this.#first;
    this.#first = undefined;
    this.#flush(start);
  }

  /** Drops the open batch without flushing. */
  close(): void {
    this.#cancel();
    this.#first = undefined;
  }

  #arm(ms: number): void {
    this.#timer = this.#timers.setTimeout(() => this.#fire(), ms);
  }

  #cancel(): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #fire(): void {
    this.#timer = undefined;
    const first = this.#first;
    if (first === undefined) return;
    const due = Math.min(this.#last + this.#quiet, first + this.#max);
    const now = this.#timers.now();
    if (now < due) {
      this.#arm(due - now);
      return;
    }
    this.#first = undefined;
    this.#flush(first);
  }
}
