/**
 * The connections a per-pod proxy is handling (being set up or copying), so that stopping it can
 * wait for them to finish (graceful drain, up to a deadline) or end them at once.
 */
export interface ActiveConnection {
  /** Ends the connection now (resets both sides, aborts a connect in progress). */
  abort(reason: Error): void;
}

export class ActiveConnections {
  readonly #set = new Set<ActiveConnection>();
  #idle: (() => void)[] = [];

  get size(): number {
    return this.#set.size;
  }

  add(c: ActiveConnection): void {
    this.#set.add(c);
  }

  delete(c: ActiveConnection): void {
    if (!this.#set.delete(c) || this.#set.size > 0) return;
    const waiters = this.#idle;
    this.#idle = [];
    for (const w of waiters) w();
  }

  abortAll(reason: Error): void {
    for (const c of [...this.#set]) c.abort(reason);
  }

  /** Resolves once no connection is left. */
  idle(): Promise<void> {
    if (this.#set.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * Waits up to `deadlineMs` for the connections to finish, then aborts what is left and waits
   * for those to close. Returns how many had to be aborted.
   */
  async drain(deadlineMs: number, reason: () => Error): Promise<number> {
    if (this.#set.size === 0) return 0;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<"deadline">((r) => {
      timer = setTimeout(() => r("deadline"), deadlineMs);
    });
    const outcome = await Promise.race([this.idle().then(() => "idle" as const), deadline]);
    clearTimeout(timer);
    if (outcome === "idle") return 0;
    const left = this.#set.size;
    this.abortAll(reason());
    await this.idle();
    return left;
  }
}
