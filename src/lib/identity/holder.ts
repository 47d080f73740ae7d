/**
 * Holds the certificate of one workload identity and keeps it fresh, as ztunnel's secret manager
 * does (INTEROP §4): fetch at start, refresh at half-life (notBefore + (notAfter - notBefore) / 2),
 * retry failures with exponential backoff (500 ms doubling to 150 s, with jitter) while still
 * serving the certificate it has, and say plainly when what it holds is expired or not yet valid.
 *
 * The fetch function is injected (the ztunnel wires in the CA client); so are the clock and the
 * timers, so tests drive time by hand.
 */
import { EventEmitter } from "node:events";
import { AmbientError } from "../errors.ts";
import { systemTimers, type Timers } from "../timers.ts";
import type { Logger } from "../log/index.ts";
import { formatDuration, validityAt, type WorkloadCertificate } from "./bundle.ts";
import { formatIdentity, identitiesEqual, type Identity } from "./spiffe.ts";

export type FetchCertificate = (identity: Identity) => Promise<WorkloadCertificate>;

export interface CertificateHolderOptions {
  readonly identity: Identity;
  readonly fetch: FetchCertificate;
  readonly timers?: Timers;
  /** In [0, 1); drives the jitter. Default Math.random. */
  readonly random?: () => number;
  /** First retry delay after a failure. Default 500 ms. */
  readonly initialBackoffMs?: number;
  /** Largest retry delay. Default 150 s. */
  readonly maxBackoffMs?: number;
  /** Each delay is scaled by a random factor in [1 - jitter, 1 + jitter]. Default 0.2. */
  readonly jitter?: number;
  /**
   * Shortest wait before a scheduled refresh, so a CA handing out certificates already past
   * half-life cannot make the holder spin. Default 1 s.
   */
  readonly minRefreshDelayMs?: number;
  readonly logger?: Logger;
}

export type HolderState =
  | { readonly status: "initializing" }
  | {
      readonly status: "available";
      readonly certificate: WorkloadCertificate;
      /** Set while refreshes are failing but the held certificate is still good. */
      readonly lastError?: Error;
    }
  | {
      readonly status: "unavailable";
      /** Why: the last fetch error, or that the held certificate expired / is not yet valid. */
      readonly error: Error;
      /** The certificate still held, if any (expired or not yet valid). */
      readonly certificate?: WorkloadCertificate;
    }
  | { readonly status: "stopped" };

export interface CertificateHolderEvents {
  /** A new certificate replaced `previous` (undefined for the first one). */
  rotated: [certificate: WorkloadCertificate, previous: WorkloadCertificate | undefined];
  /** A fetch failed; `retryInMs` is the backoff before the next attempt. */
  fetchFailed: [error: Error, retryInMs: number];
}

export const DEFAULT_INITIAL_BACKOFF_MS = 500;
export const DEFAULT_MAX_BACKOFF_MS = 150_000;

export class CertificateHolder extends EventEmitter<CertificateHolderEvents> {
  readonly identity: Identity;
  readonly #fetch: FetchCertificate;
  readonly #timers: Timers;
  readonly #random: () => number;
  readonly #initialBackoff: number;
  readonly #maxBackoff: number;
  readonly #jitter: number;
  readonly #minRefreshDelay: number;
  readonly #log: Logger | undefined;

  #certificate: WorkloadCertificate | undefined;
  #lastError: Error | undefined;
  #failures = 0;
  #timer: unknown;
  #timerDue: number | undefined;
  #inFlight: Promise<void> | undefined;
  #started = false;
  #stopped = false;
  #waiters: { resolve: (c: WorkloadCertificate) => void; reject: (e: Error) => void }[] = [];

  constructor(options: CertificateHolderOptions) {
    super();
    this.identity = options.identity;
    this.#fetch = options.fetch;
    this.#timers = options.timers ?? systemTimers;
    this.#random = options.random ?? Math.random;
    this.#initialBackoff = options.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS;
    this.#maxBackoff = options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
    this.#jitter = options.jitter ?? 0.2;
    this.#minRefreshDelay = options.minRefreshDelayMs ?? 1000;
    this.#log = options.logger;
  }

  /** Starts the first fetch. Calling it again does nothing. */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    void this.#runFetch();
  }

  /** Stops refreshing: clears the timer, fails pending `ready()` calls, ignores a fetch in flight. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#clearTimer();
    const err = new AmbientError(
      "IDENTITY_HOLDER_STOPPED",
      `the certificate holder for ${formatIdentity(this.identity)} was stopped`,
    );
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  /** Fetches now (e.g. after the trust bundle changed) unless a fetch is already running. */
  refresh(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#started = true;
    if (this.#inFlight !== undefined) return this.#inFlight;
    this.#clearTimer();
    return this.#runFetch();
  }

  /** When the next fetch is scheduled (ms since the epoch), if one is; for diagnostics and tests. */
  get nextFetchAt(): number | undefined {
    return this.#timerDue;
  }

  /** The state now; validity is judged against the current time on every call. */
  get state(): HolderState {
    if (this.#stopped) return { status: "stopped" };
    const cert = this.#certificate;
    if (cert === undefined) {
      return this.#lastError === undefined
        ? { status: "initializing" }
        : { status: "unavailable", error: this.#lastError };
    }
    const v = validityAt(cert, this.#timers.now());
    if (v.state === "valid") {
      return this.#lastError === undefined
        ? { status: "available", certificate: cert }
        : { status: "available", certificate: cert, lastError: this.#lastError };
    }
    return { status: "unavailable", error: this.#invalidError(cert), certificate: cert };
  }

  /**
   * The certificate to present now. Throws `AmbientError` (`IDENTITY_CERT_UNAVAILABLE`) saying why
   * there is none: still fetching, the last error, or that the held one is expired or not yet
   * valid and by how much.
   */
  certificate(): WorkloadCertificate {
    const s = this.state;
    switch (s.status) {
      case "available":
        return s.certificate;
      case "initializing":
        throw new AmbientError(
          "IDENTITY_CERT_UNAVAILABLE",
          `no certificate for ${formatIdentity(this.identity)} yet: the first fetch from the CA has not completed`,
        );
      case "unavailable":
        throw s.certificate !== undefined
          ? s.error
          : new AmbientError(
              "IDENTITY_CERT_UNAVAILABLE",
              `no certificate for ${formatIdentity(this.identity)}: ${s.error.message}`,
              { cause: s.error },
            );
      case "stopped":
        throw new AmbientError(
          "IDENTITY_HOLDER_STOPPED",
          `the certificate holder for ${formatIdentity(this.identity)} was stopped`,
        );
    }
  }

  /** Resolves with the first usable certificate (at once if one is held); rejects on stop(). */
  ready(): Promise<WorkloadCertificate> {
    const s = this.state;
    if (s.status === "available") return Promise.resolve(s.certificate);
    if (s.status === "stopped")
      return Promise.reject(
        new AmbientError("IDENTITY_HOLDER_STOPPED", "the certificate holder was stopped"),
      );
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  #runFetch(): Promise<void> {
    const p = this.#fetchOnce().finally(() => {
      if (this.#inFlight === p) this.#inFlight = undefined;
    });
    this.#inFlight = p;
    return p;
  }

  async #fetchOnce(): Promise<void> {
    let cert: WorkloadCertificate;
    try {
      cert = await this.#fetch(this.identity);
      this.#check(cert);
    } catch (err) {
      if (!this.#stopped) this.#onFailure(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (!this.#stopped) this.#onSuccess(cert);
  }

  /** Rejects what ztunnel rejects: another identity, or a certificate already expired. */
  #check(cert: WorkloadCertificate): void {
    if (!identitiesEqual(cert.identity, this.identity)) {
      throw new AmbientError(
        "IDENTITY_CERT_MISMATCH",
        `the CA returned a certificate for ${formatIdentity(cert.identity)}, but ${formatIdentity(this.identity)} was requested`,
      );
    }
    const v = validityAt(cert, this.#timers.now());
    if (v.state === "expired") {
      throw new AmbientError(
        "IDENTITY_CERT_EXPIRED",
        `the CA returned a certificate that is ${v.message}`,
      );
    }
  }

  #onSuccess(cert: WorkloadCertificate): void {
    const previous = this.#certificate;
    this.#certificate = cert;
    this.#lastError = undefined;
    this.#failures = 0;
    const now = this.#timers.now();
    const nb = cert.notBefore.getTime();
    const halfLife = nb + (cert.notAfter.getTime() - nb) / 2;
    const delay = Math.max(this.#minRefreshDelay, halfLife - now);
    this.#schedule(delay);
    this.#log?.info("certificate fetched", {
      identity: formatIdentity(this.identity),
      expires: cert.notAfter.toISOString(),
      refresh_in: formatDuration(delay),
    });
    for (const w of this.#waiters.splice(0)) w.resolve(cert);
    this.emit("rotated", cert, previous);
  }

  #onFailure(error: Error): void {
    this.#lastError = error;
    const base = Math.min(
      this.#maxBackoff,
      this.#initialBackoff * 2 ** Math.min(this.#failures, 30),
    );
    this.#failures++;
    const factor = 1 - this.#jitter + 2 * this.#jitter * this.#random();
    const delay = Math.max(1, Math.min(this.#maxBackoff, Math.round(base * factor)));
    this.#schedule(delay);
    const held = this.#certificate;
    const heldNote =
      held === undefined
        ? "no certificate held"
        : `keeping the held certificate, ${validityAt(held, this.#timers.now()).message}`;
    this.#log?.warn("certificate fetch failed", {
      identity: formatIdentity(this.identity),
      error: error.message,
      attempt: this.#failures,
      retry_in: formatDuration(delay),
      held: heldNote,
    });
    this.emit("fetchFailed", error, delay);
  }

  #schedule(delay: number): void {
    this.#clearTimer();
    this.#timerDue = this.#timers.now() + delay;
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      this.#timerDue = undefined;
      if (!this.#stopped && this.#inFlight === undefined) void this.#runFetch();
    }, delay);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = undefined;
  }

  #invalidError(cert: WorkloadCertificate): AmbientError {
    const v = validityAt(cert, this.#timers.now());
    const id = formatIdentity(this.identity);
    const last =
      this.#lastError !== undefined ? `; the last refresh failed: ${this.#lastError.message}` : "";
    return new AmbientError(
      v.state === "expired" ? "IDENTITY_CERT_EXPIRED" : "IDENTITY_CERT_NOT_YET_VALID",
      `the certificate for ${id} is ${v.message}${last}`,
      this.#lastError !== undefined ? { cause: this.#lastError } : undefined,
    );
  }
}
