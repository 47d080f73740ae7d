/** Hand-driven Timers for tests: time moves only when the test says so. */
import type { Timers } from "../lib/timers.ts";

interface Armed {
  readonly at: number;
  readonly ms: number;
  readonly fn: () => void;
}

export class ManualTimers implements Timers {
  #now = 0;
  #seq = 0;
  readonly #armed = new Map<number, Armed>();

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#seq;
    this.#armed.set(id, { at: this.#now + ms, ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#armed.delete(handle as number);
  }

  /** The delays (as set, in ms) of the timers now armed, in the order they were set. */
  armed(): number[] {
    return [...this.#armed.values()].map((a) => a.ms);
  }

  /** Moves time on by `ms`, firing due timers in order and letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await settle();
      let next: [number, Armed] | undefined;
      for (const entry of this.#armed) {
        if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry;
      }
      if (next === undefined) break;
      this.#armed.delete(next[0]);
      this.#now = Math.max(this.#now, next[1].at);
      next[1].fn();
    }
    this.#now = end;
    await settle();
  }
}

/** Lets pending promise callbacks and I/O callbacks run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}
