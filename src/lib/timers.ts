/**
 * Clock and one-shot timers, injectable so debounces, backoffs, refreshes and deadlines can be
 * tested without waiting (`src/testing/manual-timers.ts` drives them by hand).
 */
export interface Timers {
  /** Wall-clock milliseconds (certificate validity is compared against it). */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * The real clock and timers. They are unref'd: a pending refresh, retry or push alone must not keep
 * a process alive — the sockets and servers that need them do.
 */
export const systemTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Resolves after `ms` on `timers`, or at once when `signal` aborts (never rejects). */
export function sleep(timers: Timers, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const done = (): void => {
      timers.clearTimeout(handle);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const handle = timers.setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
