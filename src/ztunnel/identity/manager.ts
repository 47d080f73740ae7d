/**
 * ztunnel's certificate manager (istio/ztunnel `identity/manager.rs`): one CertificateHolder per
 * workload identity this node acts for, each refreshed at half-life and retried with backoff
 * while the held certificate stays in use.
 *
 * - Prefetch: identities of node-local workloads that need one (HBONE or native tunnel), from
 *   the ProxyState change feed, so the first connection does not wait for the CA.
 * - On demand: `certificate()` for an identity with no holder starts one; the caller waits for
 *   the first fetch (or gets its error).
 * - At most 8 CA calls at once; callers waiting go before prefetches and refreshes.
 * - Dropping: a holder goes when the last local workload with its identity leaves. A holder
 *   started on demand for an identity that is not (or no longer) local goes once unused for
 *   `idleDropMs` (checked at each state commit), so nothing grows without bound.
 */
import { X509Certificate } from "node:crypto";
import { AmbientError } from "../../lib/errors.ts";
import {
  CertificateHolder,
  formatIdentity,
  identityKey,
  type FetchCertificate,
  type Identity,
  type WorkloadCertificate,
} from "../../lib/identity/index.ts";
import type { Logger } from "../../lib/log/index.ts";
import { systemTimers, type Timers } from "../../lib/timers.ts";
import type { CertificateSource } from "../proxy/inputs.ts";
import type { ProxyState } from "../state/index.ts";
import { DEFAULT_MAX_CONCURRENT_FETCHES, FetchQueue } from "./fetch-queue.ts";

export interface CertificateManagerOptions {
  /** Fetches one certificate (the CA client, or the local CA in static mode). */
  readonly fetch: FetchCertificate;
  readonly timers?: Timers;
  /** Drives the holders' retry jitter. */
  readonly random?: () => number;
  /** Default 8. */
  readonly maxConcurrentFetches?: number;
  /** First retry after a failed fetch (default 500 ms) and the cap (default 150 s). */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** On-demand holders for identities that are not local are dropped after this. Default 10 min. */
  readonly idleDropMs?: number;
  /** Roots trusted besides those the CA returns (e.g. the local CA's in static mode). */
  readonly extraRoots?: readonly string[];
  readonly log?: Logger;
}

/** One certificate as config_dump shows it (ztunnel's `CertDump`). */
export interface CertificateDump {
  /** The PEM, base64-encoded. */
  readonly pem: string;
  /** Decimal, as ztunnel prints it. */
  readonly serialNumber: string;
  /** RFC 3339, whole seconds. */
  readonly validFrom: string;
  readonly expirationTime: string;
}

/** One identity's certificates in config_dump (ztunnel's `CertsDump`). */
export interface CertificatesDump {
  readonly identity: string;
  /** `Initializing`, `Available`, or `Unavailable: <why>`. */
  readonly state: string;
  /** Leaf and intermediates. */
  readonly certChain: readonly CertificateDump[];
  readonly rootCerts: readonly CertificateDump[];
}

interface Waiter {
  readonly resolve: (c: WorkloadCertificate) => void;
  readonly reject: (e: Error) => void;
}

interface Entry {
  readonly id: Identity;
  readonly key: string;
  readonly holder: CertificateHolder;
  /** A node-local workload has this identity. */
  local: boolean;
  /** Never dropped (dedicated mode's workload, ztunnel's own identity). */
  pinned: boolean;
  lastRequested: number;
  readonly waiters: Waiter[];
}

export const DEFAULT_IDLE_DROP_MS = 10 * 60_000;

export class CertificateManager implements CertificateSource {
  readonly #fetch: FetchCertificate;
  readonly #timers: Timers;
  readonly #options: CertificateManagerOptions;
  readonly #queue: FetchQueue;
  readonly #entries = new Map<string, Entry>();
  readonly #idleDropMs: number;
  readonly #log: Logger | undefined;
  #stopped = false;

  constructor(options: CertificateManagerOptions) {
    this.#options = options;
    this.#fetch = options.fetch;
    this.#timers = options.timers ?? systemTimers;
    this.#queue = new FetchQueue(options.maxConcurrentFetches ?? DEFAULT_MAX_CONCURRENT_FETCHES);
    this.#idleDropMs = options.idleDropMs ?? DEFAULT_IDLE_DROP_MS;
    this.#log = options.log;
  }

  /** CA calls running now, and waiting for a slot. */
  get fetchesInFlight(): number {
    return this.#queue.active;
  }
  get fetchesQueued(): number {
    return this.#queue.queued;
  }

  /** Identities with a holder, sorted. */
  identities(): string[] {
    return [...this.#entries.keys()].sort();
  }

  certificate(identity: Identity): Promise<WorkloadCertificate> {
    if (this.#stopped) return Promise.reject(stoppedError());
    const e = this.#entry(identity);
    e.lastRequested = this.#timers.now();
    const s = e.holder.state;
    switch (s.status) {
      case "available":
        return Promise.resolve(s.certificate);
      case "unavailable":
        return Promise.reject(unavailable(identity, s.error));
      case "stopped":
        return Promise.reject(stoppedError());
      case "initializing":
        this.#queue.promote(e.key);
        return new Promise((resolve, reject) => e.waiters.push({ resolve, reject }));
    }
  }

  roots(): readonly string[] {
    const seen = new Set<string>(this.#options.extraRoots ?? []);
    for (const e of this.#entries.values()) {
      const s = e.holder.state;
      if (s.status === "available") for (const r of s.certificate.rootsPem) seen.add(r);
    }
    return [...seen];
  }

  /** Whether a valid certificate is held for `identity` now. */
  isAvailable(identity: Identity): boolean {
    return this.#entries.get(identityKey(identity))?.holder.state.status === "available";
  }

  /** Starts fetching ahead of need and keeps the holder until `forget`/`unpin`. */
  pin(identity: Identity): void {
    this.#entry(identity).pinned = true;
  }

  /** Fetches for a node-local workload's identity (kept while one such workload remains). */
  prefetch(identity: Identity): void {
    if (this.#stopped) return;
    this.#entry(identity).local = true;
  }

  /** The last local workload with `identity` left: drop its holder unless pinned. */
  release(identity: Identity): void {
    const e = this.#entries.get(identityKey(identity));
    if (e === undefined) return;
    e.local = false;
    if (!e.pinned) this.#drop(e, "the last workload with this identity left the node");
  }

  /**
   * Follows `state`: prefetches the local identities it has now and each one that appears,
   * releases each one that goes. Returns the unsubscribe function.
   */
  track(state: ProxyState): () => void {
    for (const id of state.localIdentities()) this.prefetch(id);
    return state.subscribe((changes) => {
      for (const id of changes.localIdentities.added) this.prefetch(id);
      for (const id of changes.localIdentities.removed) this.release(id);
      this.#sweep();
    });
  }

  /** config_dump's `certificates`, sorted by identity. */
  dump(): CertificatesDump[] {
    const out: CertificatesDump[] = [];
    for (const e of this.#entries.values()) {
      const s = e.holder.state;
      const identity = formatIdentity(e.id);
      if (s.status === "available") {
        out.push({
          identity,
          state: "Available",
          certChain: s.certificate.chainPem.map(dumpCertificate),
          rootCerts: s.certificate.rootsPem.map(dumpCertificate),
        });
      } else {
        const state =
          s.status === "initializing"
            ? "Initializing"
            : s.status === "unavailable"
              ? `Unavailable: ${s.error.message}`
              : "Unavailable: stopped";
        out.push({ identity, state, certChain: [], rootCerts: [] });
      }
    }
    return out.sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0));
  }

  /** Stops every holder and fails every waiter; later calls fail. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const e of [...this.#entries.values()]) this.#drop(e, "ztunnel is shutting down");
  }

  #entry(identity: Identity): Entry {
    const key = identityKey(identity);
    const existing = this.#entries.get(key);
    if (existing !== undefined) return existing;
    const waiters: Waiter[] = [];
    const fetch: FetchCertificate = (id) =>
      this.#queue.run(key, waiters.length > 0 ? "realtime" : "warmup", () => this.#fetch(id));
    const holder = new CertificateHolder({
      identity,
      fetch,
      timers: this.#timers,
      ...(this.#options.random !== undefined ? { random: this.#options.random } : {}),
      ...(this.#options.initialBackoffMs !== undefined
        ? { initialBackoffMs: this.#options.initialBackoffMs }
        : {}),
      ...(this.#options.maxBackoffMs !== undefined
        ? { maxBackoffMs: this.#options.maxBackoffMs }
        : {}),
      ...(this.#log !== undefined ? { logger: this.#log } : {}),
    });
    const entry: Entry = {
      id: identity,
      key,
      holder,
      local: false,
      pinned: false,
      lastRequested: this.#timers.now(),
      waiters,
    };
    holder.on("rotated", (cert) => {
      for (const w of waiters.splice(0)) w.resolve(cert);
    });
    holder.on("fetchFailed", (err) => {
      // Only callers still waiting for a first certificate hear about it; with a valid one
      // held, the failure is a refresh problem and the old certificate stays in use.
      if (holder.state.status === "available") return;
      const e = unavailable(identity, err);
      for (const w of waiters.splice(0)) w.reject(e);
    });
    this.#entries.set(key, entry);
    this.#log?.debug("tracking certificate", { identity: key });
    holder.start();
    return entry;
  }

  #drop(e: Entry, why: string): void {
    if (this.#entries.get(e.key) !== e) return;
    this.#entries.delete(e.key);
    e.holder.stop();
    e.holder.removeAllListeners();
    const err = new AmbientError("ZTUNNEL_CERT_DROPPED", `no certificate for ${e.key}: ${why}`);
    this.#queue.cancel(e.key, err);
    for (const w of e.waiters.splice(0)) w.reject(err);
    this.#log?.debug("dropped certificate", { identity: e.key, reason: why });
  }

  /** Drops on-demand holders nobody local needs and nobody asked for in a while. */
  #sweep(): void {
    const now = this.#timers.now();
    for (const e of [...this.#entries.values()]) {
      if (e.local || e.pinned || e.waiters.length > 0) continue;
      if (now - e.lastRequested >= this.#idleDropMs) {
        this.#drop(e, "not used by any local workload");
      }
    }
  }
}

function unavailable(identity: Identity, cause: Error): AmbientError {
  if (cause instanceof AmbientError && cause.code.startsWith("ZTUNNEL_CERT")) return cause;
  return new AmbientError(
    "ZTUNNEL_CERT_UNAVAILABLE",
    `no certificate for ${formatIdentity(identity)}: ${cause.message}`,
    { cause },
  );
}

function stoppedError(): AmbientError {
  return new AmbientError("ZTUNNEL_CERT_STOPPED", "the certificate manager was stopped");
}

/** RFC 3339 with whole seconds, as ztunnel prints certificate times. */
function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export function dumpCertificate(pem: string): CertificateDump {
  const cert = new X509Certificate(pem);
  return {
    pem: Buffer.from(pem).toString("base64"),
    serialNumber: BigInt(`0x${cert.serialNumber}`).toString(10),
    validFrom: rfc3339(cert.validFromDate),
    expirationTime: rfc3339(cert.validToDate),
  };
}
