/**
 * At most N certificate fetches at once (ztunnel: 8), the rest queued. A fetch a connection is
 * waiting for ("realtime") goes before prefetches and refreshes ("warmup"), and a queued warmup
 * fetch is promoted when a connection starts waiting for it, as in ztunnel's SecretManager.
 */
import { AmbientError } from "../../lib/errors.ts";

export type FetchPriority = "realtime" | "warmup";

export const DEFAULT_MAX_CONCURRENT_FETCHES = 8;

interface Job {
  readonly key: string;
  readonly start: () => void;
  readonly reject: (err: Error) => void;
}

export class FetchQueue {
  readonly #limit: number;
  readonly #realtime: Job[] = [];
  readonly #warmup: Job[] = [];
  #active = 0;

  constructor(limit: number = DEFAULT_MAX_CONCURRENT_FETCHES) {
    if (!(limit >= 1)) throw new AmbientError("ZTUNNEL_BAD_OPTION", "the fetch limit must be >= 1");
    this.#limit = limit;
  }

  /** Fetches running now. */
  get active(): number {
    return this.#active;
  }

  /** Fetches waiting for a slot. */
  get queued(): number {
    return this.#realtime.length + this.#warmup.length;
  }

  /** Runs `fn` when a slot is free; `key` names the job for promote/cancel. */
  run<T>(key: string, priority: FetchPriority, fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = (): void => {
        this.#active++;
        let p: Promise<T>;
        try {
          p = fn();
        } catch (err) {
          p = Promise.reject(err instanceof Error ? err : new Error(String(err)));
        }
        p.then(resolve, reject).finally(() => {
          this.#active--;
          this.#next();
        });
      };
      (priority === "realtime" ? this.#realtime : this.#warmup).push({ key, start, reject });
      this.#next();
    });
  }

  /** Moves `key`'s queued warmup job ahead of every other warmup job. */
  promote(key: string): void {
    const i = this.#warmup.findIndex((j) => j.key === key);
    if (i === -1) return;
    const [job] = this.#warmup.splice(i, 1);
    this.#realtime.push(job!);
  }

  /** Drops `key`'s queued jobs (not running ones), rejecting them with `reason`. */
  cancel(key: string, reason: Error): void {
    for (const list of [this.#realtime, this.#warmup]) {
      for (let i = list.length - 1; i >= 0; i--) {
        if (list[i]!.key === key) list.splice(i, 1)[0]!.reject(reason);
      }
    }
  }

  #next(): void {
    while (this.#active < this.#limit) {
      const job = this.#realtime.shift() ?? this.#warmup.shift();
      if (job === undefined) return;
      job.start();
    }
  }
}
