/**
 * The workload a per-pod proxy serves, found in the state the way ztunnel matches ZDS to xDS: by
 * (name, namespace, service account) among the workloads of this node (INTEROP §5.3). Followed
 * through xDS updates (each update is a new Workload object), and waited for when a connection
 * arrives before xDS has delivered it (ztunnel waits up to 5 s, then refuses).
 */
import type { ProxyState, Workload, WorkloadInfo } from "../state/index.ts";

export class LocalWorkload {
  readonly info: WorkloadInfo;
  readonly #state: ProxyState;
  readonly #unsubscribe: () => void;
  readonly #waiters = new Set<() => void>();
  #current: Workload | undefined;

  constructor(state: ProxyState, info: WorkloadInfo) {
    this.#state = state;
    this.info = info;
    this.#current = state.findLocalWorkload(info);
    this.#unsubscribe = state.subscribe((changes) => {
      const w = changes.workloads;
      if (w.added.length + w.updated.length + w.removed.length === 0) return;
      this.#current = this.#state.findLocalWorkload(this.info);
      if (this.#current !== undefined) this.#wake();
    });
  }

  /** The workload now (undefined while xDS has not delivered it). */
  get(): Workload | undefined {
    return this.#current;
  }

  /** The workload, waiting up to `ms` for it to appear; undefined if it does not. */
  wait(ms: number, signal?: AbortSignal): Promise<Workload | undefined> {
    if (this.#current !== undefined || ms <= 0 || signal?.aborted === true) {
      return Promise.resolve(this.#current);
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve(this.#current);
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Stops following the state; pending waits resolve with what is known. */
  close(): void {
    this.#unsubscribe();
    this.#wake();
  }

  describe(): string {
    return `${this.info.namespace}/${this.info.name} (service account ${this.info.serviceAccount})`;
  }
}
