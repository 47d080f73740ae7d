/**
 * The HBONE connection pool: carries out what `PoolState` decides. Hands out stream slots on
 * pooled HTTP/2 sessions, opens connections through the injected connector, follows each
 * session's SETTINGS, GOAWAY and close, and closes idle connections.
 */
import type { ClientHttp2Session, Settings } from "node:http2";
import type { Logger } from "../log/index.ts";
import { HboneError } from "./errors.ts";
import { PoolState, poolKeyId, type PoolKey, type PooledConnection } from "./pool-state.ts";

export interface PooledSession {
  readonly session: ClientHttp2Session;
  /** Anything the connector wants to remember about the connection (e.g. the peer identity). */
  readonly info: unknown;
}

/** One reserved stream slot. `release()` once the stream is over (idempotent). */
export interface Lease {
  readonly session: ClientHttp2Session;
  readonly info: unknown;
  /** Stable id of the pooled connection, for logs and tests. */
  readonly connectionId: number;
  release(this: void): void;
}

export interface HbonePoolOptions {
  /** Opens one connection for a key; rejects with a descriptive error. */
  readonly connect: (key: PoolKey) => Promise<PooledSession>;
  /** Streams per connection before another is opened. Default 100. */
  readonly maxStreamsPerConnection?: number;
  /** Connections unused this long are closed. Default 5 min (`POOL_UNUSED_RELEASE_TIMEOUT`). */
  readonly idleTimeoutMs?: number;
  /** Handshakes per key in flight at once, once the key is known to work. Default 4. */
  readonly maxParallelConnects?: number;
  readonly logger: Logger;
}

export interface HbonePoolStats {
  /** Pooled (usable) connections. */
  readonly connections: number;
  /** Streams reserved on pooled connections. */
  readonly streams: number;
  /** Connections opened since the start. */
  readonly handshakes: number;
  /** Connection attempts that failed since the start. */
  readonly failedHandshakes: number;
}

/** A request waiting for a stream slot; settles once. */
class Waiter {
  readonly #resolve: (lease: Lease) => void;
  readonly #reject: (err: Error) => void;
  #unwatch: (() => void) | undefined = undefined;

  constructor(resolve: (lease: Lease) => void, reject: (err: Error) => void) {
    this.#resolve = resolve;
    this.#reject = reject;
  }

  watch(signal: AbortSignal, onAbort: () => void): void {
    signal.addEventListener("abort", onAbort, { once: true });
    this.#unwatch = () => signal.removeEventListener("abort", onAbort);
  }

  resolve(lease: Lease): void {
    this.#unwatch?.();
    this.#resolve(lease);
  }

  reject(err: Error): void {
    this.#unwatch?.();
    this.#reject(err);
  }
}

type Entry = PooledConnection<PooledSession>;

/** How long close() waits for destroyed sessions to report 'close'. */
const CLOSE_WAIT_MS = 1000;

class PoolLease implements Lease {
  readonly #pool: HbonePool;
  readonly #entry: Entry;
  #released = false;

  constructor(pool: HbonePool, entry: Entry) {
    this.#pool = pool;
    this.#entry = entry;
  }
  get session(): ClientHttp2Session {
    return this.#entry.conn.session;
  }
  get info(): unknown {
    return this.#entry.conn.info;
  }
  get connectionId(): number {
    return this.#entry.id;
  }
  // An arrow property so it can be passed as a listener as is ('close' of the stream).
  readonly release = (): void => {
    if (this.#released) return;
    this.#released = true;
    this.#pool.releaseEntry(this.#entry);
  };
}

export class HbonePool {
  readonly #state: PoolState<PooledSession, Waiter>;
  readonly #connect: (key: PoolKey) => Promise<PooledSession>;
  readonly #keys = new Map<string, PoolKey>();
  readonly #idleMs: number;
  readonly #log: Logger;
  readonly #idleTimer: NodeJS.Timeout;
  /** Every session opened and not yet closed, pooled or retired. */
  readonly #live = new Set<ClientHttp2Session>();
  #handshakes = 0;
  #failed = 0;
  #closed = false;

  constructor(opts: HbonePoolOptions) {
    this.#state = new PoolState({
      maxStreamsPerConnection: opts.maxStreamsPerConnection ?? 100,
      ...(opts.maxParallelConnects !== undefined
        ? { maxParallelConnects: opts.maxParallelConnects }
        : {}),
    });
    this.#connect = opts.connect;
    this.#idleMs = opts.idleTimeoutMs ?? 300_000;
    this.#log = opts.logger;
    // One shared timer for all idle checks; resolution of a quarter of the timeout is plenty.
    this.#idleTimer = setInterval(
      () => this.#evictIdle(),
      Math.max(50, Math.min(this.#idleMs / 4, 30_000)),
    );
    this.#idleTimer.unref();
  }

  /** A stream slot for the key: on a pooled connection, or on a new one once it is up. */
  acquire(key: PoolKey, signal?: AbortSignal): Promise<Lease> {
    if (this.#closed) {
      return Promise.reject(new HboneError("HBONE_CLOSED", "HBONE client is closed"));
    }
    if (signal?.aborted === true) return Promise.reject(abortError(signal));
    const id = poolKeyId(key);
    return new Promise<Lease>((resolve, reject) => {
      const waiter = new Waiter(resolve, reject);
      let r = this.#state.acquire(id, waiter, Date.now());
      // A session can die without ever emitting 'close' (see #dropDead); never hand one out.
      while (r.kind === "ready" && this.#dropDead(r.conn)) {
        r = this.#state.acquire(id, waiter, Date.now());
      }
      if (r.kind === "ready") {
        resolve(new PoolLease(this, r.conn));
        return;
      }
      this.#keys.set(id, key);
      if (signal !== undefined) {
        waiter.watch(signal, () => {
          if (this.#state.cancel(id, waiter)) waiter.reject(abortError(signal));
        });
      }
      this.#startConnects(id, r.connects);
    });
  }

  #startConnects(id: string, n: number): void {
    const key = this.#keys.get(id);
    if (key === undefined) return;
    for (let i = 0; i < n; i++) {
      this.#connect(key).then(
        (conn) => this.#onConnected(id, conn),
        (err: unknown) => this.#onConnectFailed(id, err),
      );
    }
  }

  #onConnected(id: string, conn: PooledSession): void {
    this.#handshakes++;
    const session = conn.session;
    if (this.#closed) {
      session.destroy();
      return;
    }
    this.#live.add(session);
    const { entry, grants, connects } = this.#state.connected(id, conn, Date.now());
    session.on("remoteSettings", (settings: Settings) => {
      const r = this.#state.setPeerMaxStreams(entry, settings.maxConcurrentStreams, Date.now());
      this.#grant(r.grants);
      this.#startConnects(id, r.connects);
    });
    const retire = (): void => {
      const r = this.#state.retire(entry);
      if (r.close) session.close();
      this.#startConnects(id, r.connects);
    };
    session.on("goaway", retire);
    session.on("error", (err: Error) => {
      this.#log.debug("HBONE connection failed", { error: err.message, connection: entry.id });
      retire();
    });
    session.once("close", () => {
      this.#live.delete(session);
      retire();
    });
    this.#grant(grants);
    this.#startConnects(id, connects);
  }

  #onConnectFailed(id: string, err: unknown): void {
    this.#failed++;
    const error = err instanceof Error ? err : new HboneError("HBONE_CONNECT_FAILED", String(err));
    const { rejected } = this.#state.connectFailed(id);
    for (const w of rejected) w.reject(error);
  }

  #grant(grants: readonly (readonly [Waiter, Entry])[]): void {
    for (const [w, entry] of grants) {
      if (!this.#dropDead(entry)) {
        w.resolve(new PoolLease(this, entry));
        continue;
      }
      const r = this.#state.acquire(entry.key, w, Date.now());
      if (r.kind === "ready") this.#grant([[w, r.conn]]);
      else this.#startConnects(entry.key, r.connects);
    }
  }

  /**
   * If `entry`'s session is destroyed or closing, takes it out of the pool and gives back the
   * slot just taken on it; returns true. Node's http2 session sometimes never emits 'close' after
   * its socket died under load (its pending write never completes), and a keepalive timeout only
   * destroys it; without this check such a session would be handed out forever.
   */
  #dropDead(entry: Entry): boolean {
    const session = entry.conn.session;
    if (!session.destroyed && !session.closed) return false;
    this.#log.debug("dropping dead HBONE connection from the pool", { connection: entry.id });
    const retired = this.#state.retire(entry);
    const released = this.#state.release(entry, Date.now());
    if ((retired.close || released.close) && !session.destroyed) session.destroy();
    this.#live.delete(session);
    this.#startConnects(entry.key, retired.connects);
    return true;
  }

  /** @internal Called by a lease. */
  releaseEntry(entry: Entry): void {
    const r = this.#state.release(entry, Date.now());
    if (r.close) entry.conn.session.close();
    this.#grant(r.grants);
  }

  #evictIdle(): void {
    for (const entry of this.#state.evictIdle(Date.now(), this.#idleMs)) {
      this.#log.debug("closing idle HBONE connection", { connection: entry.id });
      entry.conn.session.close();
    }
    for (const id of this.#keys.keys()) {
      if (!this.#state.has(id)) this.#keys.delete(id);
    }
  }

  stats(): HbonePoolStats {
    let streams = 0;
    const conns = this.#state.connections();
    for (const c of conns) streams += c.streams;
    return {
      connections: conns.length,
      streams,
      handshakes: this.#handshakes,
      failedHandshakes: this.#failed,
    };
  }

  /** Closes every connection (streams are reset) and fails waiting requests. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#idleTimer);
    const err = new HboneError("HBONE_CLOSED", "HBONE client is closed");
    for (const w of this.#state.takeAllWaiters()) w.reject(err);
    const sessions = [...this.#live];
    const closed = sessions.map((s) =>
      s.destroyed ? Promise.resolve() : new Promise<void>((r) => s.once("close", r)),
    );
    for (const s of sessions) s.destroy();
    // A destroyed session whose socket died under a pending write may never emit 'close' (see
    // #dropDead): do not wait for it forever.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(closed),
      new Promise<void>((r) => {
        timer = setTimeout(r, CLOSE_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
  }
}

function abortError(signal: AbortSignal): HboneError {
  return new HboneError("HBONE_ABORTED", "HBONE connect aborted", { cause: signal.reason });
}
