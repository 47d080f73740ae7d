/**
 * The bookkeeping of the HBONE connection pool (INTEROP §1.7), with no I/O: which connection a
 * new stream goes on, when to open another, who waits for a handshake, when a connection is idle.
 * `pool.ts` carries out what these methods decide.
 *
 * - Key = (source identity, expected destination identities as a sorted set, destination
 *   `ip:15008`, source IP). Different key => different TLS connection.
 * - A connection takes streams up to its cap, min(our per-connection maximum, the peer's
 *   SETTINGS_MAX_CONCURRENT_STREAMS); a connection at its cap is not handed out until a stream
 *   ends. A connection after GOAWAY or close takes no new streams.
 * - Requests that find no free slot wait. The first handshake for a key is a lock: concurrent first
 *   requests wait for that one connection rather than each opening its own. Once a connection to
 *   the key has succeeded, enough handshakes for the waiters run in parallel (bounded).
 * - Idle connections (no streams for `idleTimeoutMs`) leave the pool and are closed.
 */

export interface PoolKey {
  /** SPIFFE identity whose certificate the client presents. */
  readonly source: string;
  /** SPIFFE identities the server may present (any one of them). */
  readonly expected: readonly string[];
  /** Destination socket address, `ip:15008` (IPv6 bracketed). */
  readonly destination: string;
  /** Local address the connection is made from, when it matters (in-pod, transparent). */
  readonly sourceIp?: string | undefined;
}

/**
 * The canonical string form of a key; expected identities are a set, so they are sorted and
 * deduplicated. Parts are joined with control characters, which neither SPIFFE identities nor
 * addresses can contain (computed per tunnel, so kept cheap).
 */
export function poolKeyId(k: PoolKey): string {
  let expected: string;
  if (k.expected.length === 1) {
    expected = k.expected[0]!;
  } else {
    const sorted = [...new Set(k.expected)].sort();
    expected = sorted.join("\u0001");
  }
  return `${k.source}\u0002${expected}\u0002${k.destination}\u0002${k.sourceIp ?? ""}`;
}

export interface PooledConnection<C> {
  readonly id: number;
  readonly key: string;
  readonly conn: C;
  /** Streams reserved on this connection (handed out and not yet released). */
  streams: number;
  /** Streams this connection may carry at once. */
  cap: number;
  /** False once the connection takes no new streams (GOAWAY, closed, idle-evicted). */
  usable: boolean;
  /** When a stream last started or ended here (ms). */
  lastUsed: number;
}

interface KeyState<C, W> {
  readonly conns: PooledConnection<C>[];
  readonly waiters: W[];
  /** Handshakes in flight. */
  connecting: number;
  /** A connection for this key succeeded before: later handshakes may run in parallel. */
  established: boolean;
  /** The cap learned from the peer most recently, for estimating how many connections to open. */
  lastCap: number | undefined;
}

export type Acquired<C> =
  | { readonly kind: "ready"; readonly conn: PooledConnection<C> }
  /** Queued; `connects` handshakes should be started now for this key. */
  | { readonly kind: "wait"; readonly connects: number };

export interface Granted<C, W> {
  readonly grants: readonly (readonly [W, PooledConnection<C>])[];
  /** Further handshakes to start for the key's remaining waiters. */
  readonly connects: number;
}

export interface PoolStateOptions {
  /** Streams per connection before another is opened (ztunnel: 100). */
  readonly maxStreamsPerConnection: number;
  /** Handshakes per key in flight at once once the key is known to work. */
  readonly maxParallelConnects?: number;
}

export class PoolState<C, W> {
  readonly #keys = new Map<string, KeyState<C, W>>();
  readonly #maxStreams: number;
  readonly #maxParallel: number;
  #nextId = 1;

  constructor(opts: PoolStateOptions) {
    if (!(opts.maxStreamsPerConnection >= 1)) {
      throw new RangeError("maxStreamsPerConnection must be at least 1");
    }
    this.#maxStreams = opts.maxStreamsPerConnection;
    this.#maxParallel = Math.max(1, opts.maxParallelConnects ?? 4);
  }

  #state(key: string): KeyState<C, W> {
    let ks = this.#keys.get(key);
    if (ks === undefined) {
      ks = { conns: [], waiters: [], connecting: 0, established: false, lastCap: undefined };
      this.#keys.set(key, ks);
    }
    return ks;
  }

  #forget(key: string, ks: KeyState<C, W>): void {
    if (ks.conns.length === 0 && ks.waiters.length === 0 && ks.connecting === 0) {
      this.#keys.delete(key);
    }
  }

  /** How many handshakes to start now so the key's waiters will all be served. */
  #connectsWanted(ks: KeyState<C, W>): number {
    if (ks.waiters.length === 0) return 0;
    if (!ks.established) {
      // The per-key lock: one handshake until the key is known to work.
      return ks.connecting === 0 ? 1 : 0;
    }
    const perConn = ks.lastCap ?? this.#maxStreams;
    const need = Math.ceil(ks.waiters.length / perConn) - ks.connecting;
    return Math.max(0, Math.min(need, this.#maxParallel - ks.connecting));
  }

  #startConnects(ks: KeyState<C, W>): number {
    const n = this.#connectsWanted(ks);
    ks.connecting += n;
    return n;
  }

  #grant(ks: KeyState<C, W>, entry: PooledConnection<C>, now: number): [W, PooledConnection<C>][] {
    const grants: [W, PooledConnection<C>][] = [];
    while (entry.usable && entry.streams < entry.cap && ks.waiters.length > 0) {
      entry.streams++;
      entry.lastUsed = now;
      grants.push([ks.waiters.shift()!, entry]);
    }
    return grants;
  }

  /** A stream slot on a usable connection with room, or a place in the queue. */
  acquire(key: string, waiter: W, now: number): Acquired<C> {
    const ks = this.#state(key);
    // Waiters keep their order: a newcomer never takes a slot ahead of the queue.
    if (ks.waiters.length === 0) {
      for (const entry of ks.conns) {
        if (entry.usable && entry.streams < entry.cap) {
          entry.streams++;
          entry.lastUsed = now;
          return { kind: "ready", conn: entry };
        }
      }
    }
    ks.waiters.push(waiter);
    return { kind: "wait", connects: this.#startConnects(ks) };
  }

  /** A waiter gave up (cancelled): it leaves the queue. Returns false if it was not queued. */
  cancel(key: string, waiter: W): boolean {
    const ks = this.#keys.get(key);
    if (ks === undefined) return false;
    const i = ks.waiters.indexOf(waiter);
    if (i === -1) return false;
    ks.waiters.splice(i, 1);
    return true;
  }

  /** A handshake for `key` succeeded: the connection joins the pool and serves waiters. */
  connected(key: string, conn: C, now: number): Granted<C, W> & { entry: PooledConnection<C> } {
    const ks = this.#state(key);
    ks.connecting = Math.max(0, ks.connecting - 1);
    ks.established = true;
    const entry: PooledConnection<C> = {
      id: this.#nextId++,
      key,
      conn,
      streams: 0,
      cap: ks.lastCap ?? this.#maxStreams,
      usable: true,
      lastUsed: now,
    };
    ks.conns.push(entry);
    const grants = this.#grant(ks, entry, now);
    return { entry, grants, connects: this.#startConnects(ks) };
  }

  /**
   * A handshake for `key` failed. Waiters that the handshakes still in flight cannot serve are
   * returned to be failed with the error.
   */
  connectFailed(key: string): { rejected: W[] } {
    const ks = this.#keys.get(key);
    if (ks === undefined) return { rejected: [] };
    ks.connecting = Math.max(0, ks.connecting - 1);
    const keep = ks.connecting * (ks.lastCap ?? this.#maxStreams);
    const rejected = ks.waiters.splice(keep);
    this.#forget(key, ks);
    return { rejected };
  }

  /** The peer's SETTINGS arrived: the connection's cap becomes min(ours, theirs). */
  setPeerMaxStreams(
    entry: PooledConnection<C>,
    peerMax: number | undefined,
    now: number,
  ): Granted<C, W> {
    const cap = Math.max(1, Math.min(this.#maxStreams, peerMax ?? this.#maxStreams));
    entry.cap = cap;
    const ks = this.#keys.get(entry.key);
    if (ks === undefined) return { grants: [], connects: 0 };
    ks.lastCap = cap;
    const grants = this.#grant(ks, entry, now);
    return { grants, connects: this.#startConnects(ks) };
  }

  /**
   * A stream on `entry` ended. Its slot goes to the first waiter, if any. `close` says the
   * connection left the pool and has no streams left, so it should be closed now.
   */
  release(entry: PooledConnection<C>, now: number): Granted<C, W> & { close: boolean } {
    entry.streams = Math.max(0, entry.streams - 1);
    entry.lastUsed = now;
    if (!entry.usable) return { grants: [], connects: 0, close: entry.streams === 0 };
    const ks = this.#keys.get(entry.key);
    if (ks === undefined) return { grants: [], connects: 0, close: false };
    return { grants: this.#grant(ks, entry, now), connects: 0, close: false };
  }

  /**
   * The connection takes no new streams (GOAWAY, error, close). It leaves the pool; `close` says
   * it has no streams left. `connects` covers waiters that still need a connection.
   */
  retire(entry: PooledConnection<C>): { close: boolean; connects: number } {
    const ks = this.#keys.get(entry.key);
    if (!entry.usable) return { close: false, connects: 0 };
    entry.usable = false;
    if (ks === undefined) return { close: entry.streams === 0, connects: 0 };
    const i = ks.conns.indexOf(entry);
    if (i !== -1) ks.conns.splice(i, 1);
    const connects = this.#startConnects(ks);
    this.#forget(entry.key, ks);
    return { close: entry.streams === 0, connects };
  }

  /** Usable connections with no streams for at least `idleMs`: retired, to be closed. */
  evictIdle(now: number, idleMs: number): PooledConnection<C>[] {
    const out: PooledConnection<C>[] = [];
    for (const ks of this.#keys.values()) {
      for (const entry of ks.conns) {
        if (entry.streams === 0 && now - entry.lastUsed >= idleMs) out.push(entry);
      }
    }
    for (const entry of out) this.retire(entry);
    return out;
  }

  /** Every connection in the pool (usable ones only). */
  connections(): PooledConnection<C>[] {
    const out: PooledConnection<C>[] = [];
    for (const ks of this.#keys.values()) out.push(...ks.conns);
    return out;
  }

  /** Whether the pool holds anything for a key: connections, waiters or handshakes. */
  has(key: string): boolean {
    return this.#keys.has(key);
  }

  /** Queued requests and handshakes in flight for a key (for diagnostics and tests). */
  pending(key: string): { waiters: number; connecting: number } {
    const ks = this.#keys.get(key);
    return { waiters: ks?.waiters.length ?? 0, connecting: ks?.connecting ?? 0 };
  }

  /** Drops every waiter of every key (pool shutting down); returns them to be failed. */
  takeAllWaiters(): W[] {
    const out: W[] = [];
    for (const [key, ks] of this.#keys) {
      out.push(...ks.waiters.splice(0));
      this.#forget(key, ks);
    }
    return out;
  }
}
