/**
 * Runs a level-triggered reconcile per key (a pod uid): one at a time for each key, at most
 * `limit` keys at once, FIFO. Requests coalesce: while a key's next run has not started, every new
 * request joins it (the run reads the latest state when it starts, so one run answers them all);
 * a request made while the key runs queues exactly one more run after it.
 */
export interface ReconcileQueueOptions<R> {
  /** The work for one key. */
  readonly run: (key: string) => Promise<R>;
  /** Keys running at once. */
  readonly limit: number;
}

interface Deferred<R> {
  readonly promise: Promise<R>;
  resolve(value: R): void;
  reject(err: unknown): void;
}

function deferred<R>(): Deferred<R> {
  let resolve!: (v: R) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<R>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

interface KeyState<R> {
  running: boolean;
  next: Deferred<R> | undefined;
}

export class ReconcileQueue<R> {
  readonly #run: (key: string) => Promise<R>;
  readonly #limit: number;
  readonly #keys = new Map<string, KeyState<R>>();
  readonly #slotWaiters: (() => void)[] = [];
  #active = 0;
  #maxActive = 0;
  #paused = true;
  readonly #pausedStarts: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];

  constructor(options: ReconcileQueueOptions<R>) {
    this.#run = options.run;
    this.#limit = Math.max(1, options.limit);
  }

  /** Keys running now. */
  get active(): number {
    return this.#active;
  }

  /** The most keys that ever ran at once. */
  get maxActive(): number {
    return this.#maxActive;
  }

  /** Keys running or waiting. */
  get size(): number {
    return this.#keys.size;
  }

  /** Starts running (the queue is created paused, so start-up can finish before any run). */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    for (const start of this.#pausedStarts.splice(0)) start();
  }

  /** Asks for a run of `key`; resolves (or rejects) with the run that serves this request. */
  schedule(key: string): Promise<R> {
    let s = this.#keys.get(key);
    if (s === undefined) {
      s = { running: false, next: undefined };
      this.#keys.set(key, s);
    }
    if (s.next !== undefined) return s.next.promise;
    const d = deferred<R>();
    s.next = d;
    if (!s.running) this.#startKey(key, s);
    return d.promise;
  }

  /** Resolves once nothing runs or waits. */
  idle(): Promise<void> {
    if (this.#keys.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #startKey(key: string, s: KeyState<R>): void {
    s.running = true;
    const go = (): void => void this.#drive(key, s);
    if (this.#paused) this.#pausedStarts.push(go);
    else go();
  }

  async #drive(key: string, s: KeyState<R>): Promise<void> {
    await this.#acquire();
    // Taken only now: requests made while this run waited for a slot joined it.
    const d = s.next!;
    s.next = undefined;
    try {
      d.resolve(await this.#run(key));
    } catch (err) {
      d.reject(err);
    } finally {
      this.#release();
      s.running = false;
      if (s.next !== undefined) {
        this.#startKey(key, s);
      } else {
        this.#keys.delete(key);
        if (this.#keys.size === 0) for (const w of this.#idleWaiters.splice(0)) w();
      }
    }
  }

  #acquire(): Promise<void> {
    if (this.#active < this.#limit) {
      this.#active++;
      this.#maxActive = Math.max(this.#maxActive, this.#active);
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.#slotWaiters.push(() => {
        this.#active++;
        this.#maxActive = Math.max(this.#maxActive, this.#active);
        resolve();
      }),
    );
  }

  #release(): void {
    this.#active--;
    this.#slotWaiters.shift()?.();
  }
}
