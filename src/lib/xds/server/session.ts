/**
 * The server's state for one resource type on one stream: a pure state machine (no I/O, no
 * clock; times are passed in).
 *
 * It tracks what the client holds (`clientHas`: name -> version, from `initial_resource_versions`
 * and from what was sent), its subscription, and a set of *dirty* names whose desired state must
 * be recomputed. A response is planned from the dirty set against the provider's current
 * resources, so any number of changes to a name while a response is in flight coalesce into one
 * entry carrying the latest version (memory is bounded by the number of names, not of changes).
 * At most one response is un-ACKed at a time: `takeResponse` returns nothing while one is.
 *
 * A NACK clears the in-flight response like an ACK, records the rejected names (parsed from the
 * message against the names that response carried) and leaves them in `clientHas` at the
 * rejected version: they are not resent until their version changes, the rest stand.
 */
import { parseRejections } from "../nack.ts";
import type { ResourceProvider } from "./store.ts";
import type { StoredResource } from "./resource.ts";
import { initialSubscription, updateSubscription } from "./subscription.ts";
import type { Subscription, SubscriptionRequest } from "./subscription.ts";

/**
 * Whether a resource belongs to this stream's view. `requested`: an explicit subscription names
 * it, one of its aliases, or one of its `related` names (or their aliases).
 */
export type InView<M> = (
  resource: StoredResource<M>,
  requested: boolean,
  wildcard: boolean,
) => boolean;

export interface SessionRequest extends SubscriptionRequest {
  readonly responseNonce: string;
  readonly errorDetail?: { readonly message: string } | undefined;
  readonly initialResourceVersions: Readonly<Record<string, string>>;
}

export type RequestOutcome =
  | { readonly kind: "ack"; readonly nonce: string }
  | {
      readonly kind: "nack";
      readonly nonce: string;
      readonly message: string;
      readonly rejected: readonly { name: string; reason: string }[];
      /** The NACK names a response older than the latest one sent. */
      readonly stale: boolean;
    }
  /** An ACK of a response older than the latest (ignored for flow control). */
  | { readonly kind: "stale-ack"; readonly nonce: string }
  /** No nonce: a subscription change (or an empty request). */
  | { readonly kind: "request" };

export interface PlannedResponse<M> {
  readonly resources: readonly StoredResource<M>[];
  readonly removed: readonly string[];
  /** Earliest change time (ms) among what is sent, if a published change caused it. */
  readonly oldestChange: number | undefined;
}

export interface RejectedResource {
  readonly version: string;
  readonly reason: string;
  readonly at: number;
}

export interface SessionDebug {
  readonly typeUrl: string;
  readonly wildcard: boolean;
  readonly subscriptions: readonly string[];
  /** What the client holds: name -> version (last sent, or reported on reconnect). */
  readonly sent: Readonly<Record<string, string>>;
  readonly sentCount: number;
  readonly inFlight: { readonly nonce: string; readonly since: number } | undefined;
  readonly lastAck: { readonly nonce: string; readonly at: number } | undefined;
  readonly lastNack:
    { readonly nonce: string; readonly at: number; readonly message: string } | undefined;
  readonly rejected: Readonly<Record<string, RejectedResource>>;
  /** Names waiting to be (re)evaluated and sent. */
  readonly pending: number;
  /** Every resource is due for re-evaluation (first request, wildcard change, resync). */
  readonly fullScan: boolean;
  readonly responses: number;
  readonly acks: number;
  readonly nacks: number;
}

export class TypeSession<M = unknown> {
  readonly typeUrl: string;
  readonly #provider: ResourceProvider<M>;
  readonly #inView: InView<M>;
  readonly #sub: Subscription;
  /** name -> version the client holds. */
  readonly #clientHas = new Map<string, string>();
  /** name -> earliest change time (undefined when a request, not a change, marked it). */
  readonly #dirty = new Map<string, number | undefined>();
  /** Explicitly requested names/aliases that must be answered (found or removed). */
  readonly #answers = new Set<string>();
  readonly #rejected = new Map<string, RejectedResource>();
  #mustRespond = true;
  /**
   * Every resource (and every held name) must be re-evaluated: a first request, a wildcard
   * toggle, a resync. Kept as a flag rather than as dirty entries, so a first sync of N
   * resources does not first copy N names into the dirty set.
   */
  #fullScan = false;
  #inFlight: { nonce: string; since: number; resources: readonly StoredResource<M>[] } | undefined;
  #lastAck: { nonce: string; at: number } | undefined;
  #lastNack: { nonce: string; at: number; message: string } | undefined;
  #responses = 0;
  #acks = 0;
  #nacks = 0;

  /** Starts from the stream's first request for this type. */
  constructor(
    typeUrl: string,
    provider: ResourceProvider<M>,
    inView: InView<M>,
    first: SessionRequest,
  ) {
    this.typeUrl = typeUrl;
    this.#provider = provider;
    this.#inView = inView;
    this.#sub = initialSubscription(first);
    for (const [name, version] of Object.entries(first.initialResourceVersions)) {
      this.#clientHas.set(name, version);
    }
    // Everything is a candidate: wildcard views, and explicit views that also select resources
    // nobody asked for (a ztunnel's node-local workloads). Held names are candidates for removal.
    this.#markAll();
    for (const n of first.resourceNamesSubscribe) if (this.#sub.names.has(n)) this.#answers.add(n);
  }

  get wildcard(): boolean {
    return this.#sub.wildcard;
  }

  get inFlight(): boolean {
    return this.#inFlight !== undefined;
  }

  /** Names waiting to be evaluated or answered. */
  get pending(): number {
    return this.#dirty.size + this.#answers.size;
  }

  /** Something may need sending, and nothing is in flight. */
  get ready(): boolean {
    return (
      this.#inFlight === undefined &&
      (this.#mustRespond || this.#fullScan || this.#dirty.size > 0 || this.#answers.size > 0)
    );
  }

  /** The version the client holds of `name`, if any. */
  held(name: string): string | undefined {
    return this.#clientHas.get(name);
  }

  /** A later request on the stream: ACK/NACK and/or subscription changes. */
  onRequest(req: SessionRequest, now: number): RequestOutcome {
    let outcome: RequestOutcome = { kind: "request" };
    const nonce = req.responseNonce;
    if (nonce !== "") {
      const inFlight = this.#inFlight;
      const current = inFlight !== undefined && inFlight.nonce === nonce;
      if (req.errorDetail !== undefined) {
        const candidates = new Set(
          current ? inFlight.resources.map((r) => r.name) : this.#clientHas.keys(),
        );
        const message = req.errorDetail.message;
        const rejected = parseRejections(message, candidates);
        for (const r of rejected) {
          this.#rejected.set(r.name, {
            version: this.#clientHas.get(r.name) ?? "",
            reason: r.reason,
            at: now,
          });
        }
        this.#lastNack = { nonce, at: now, message };
        this.#nacks += 1;
        outcome = { kind: "nack", nonce, message, rejected, stale: !current };
      } else if (current) {
        // Accepted: a new version of a previously rejected resource clears the rejection.
        if (this.#rejected.size > 0) {
          for (const r of inFlight.resources) this.#rejected.delete(r.name);
        }
        this.#lastAck = { nonce, at: now };
        this.#acks += 1;
        outcome = { kind: "ack", nonce };
      } else {
        outcome = { kind: "stale-ack", nonce };
      }
      if (current) this.#inFlight = undefined;
    }
    const change = updateSubscription(this.#sub, req);
    if (change.wildcardChanged) this.#markAll();
    // Every name in the subscribe list is answered, new or not: a client asking again (a
    // repeated lookup of a missing name) is waiting for it.
    for (const s of req.resourceNamesSubscribe) {
      if (s === "*" || !this.#sub.names.has(s)) continue;
      this.#answers.add(s);
      this.#markResolved(s);
    }
    for (const s of change.removed) {
      this.#answers.delete(s);
      this.#markResolved(s);
    }
    return outcome;
  }

  /**
   * Published changes: `names` changed or were removed at `since` (ms). Only names the client
   * holds or whose resource is in its view are kept. Returns whether anything was.
   */
  onChanged(names: Iterable<string>, since: number): boolean {
    let any = false;
    for (const n of names) {
      if (this.#clientHas.has(n)) {
        this.#mark(n, since);
        any = true;
        continue;
      }
      const r = this.#provider.get(n);
      if (r !== undefined && this.#view(r)) {
        this.#mark(n, since);
        any = true;
      }
    }
    return any;
  }

  /** Re-evaluates every resource (the application's view logic changed). */
  resync(): void {
    this.#markAll();
  }

  /**
   * Plans the next response if one is due and none is in flight; the caller sends it with
   * `nonce`. Returns undefined when there is nothing to send (the dirty set is then cleared).
   */
  takeResponse(nonce: string, now: number): PlannedResponse<M> | undefined {
    if (!this.ready) return undefined;
    const provider = this.#provider;
    const resources: StoredResource<M>[] = [];
    const removed: string[] = [];
    let oldest: number | undefined;

    if (this.#fullScan) {
      this.#fullScan = false;
      for (const name of provider.names()) this.#evaluate(name, resources, removed);
      // Held names the provider no longer has.
      for (const name of this.#clientHas.keys()) {
        if (provider.get(name) === undefined) this.#evaluate(name, resources, removed);
      }
    }
    for (const [name, since] of this.#dirty) {
      if (this.#evaluate(name, resources, removed) && since !== undefined) {
        if (oldest === undefined || since < oldest) oldest = since;
      }
    }
    this.#dirty.clear();

    if (this.#answers.size > 0) this.#answer(resources, removed);

    if (resources.length === 0 && removed.length === 0 && !this.#mustRespond) return undefined;
    this.#mustRespond = false;
    this.#inFlight = { nonce, since: now, resources };
    this.#responses += 1;
    return { resources, removed, oldestChange: oldest };
  }

  /**
   * Brings one name up to date in the plan: sent if in view at a version the client lacks,
   * removed if the client holds it and it left the view. Returns whether it was planned.
   */
  #evaluate(name: string, resources: StoredResource<M>[], removed: string[]): boolean {
    const r = this.#provider.get(name);
    if (r !== undefined && this.#view(r)) {
      if (this.#clientHas.get(name) === r.version) return false;
      resources.push(r);
      this.#clientHas.set(name, r.version);
      return true;
    }
    if (!this.#clientHas.delete(name)) return false;
    this.#rejected.delete(name);
    removed.push(name);
    return true;
  }

  /**
   * Explicit requests are answered even when the client already holds the version: the
   * client is waiting for the name to appear. What resolves to nothing is answered as removed.
   */
  #answer(resources: StoredResource<M>[], removed: string[]): void {
    const included = new Set(resources.map((r) => r.name));
    const removedSet = new Set(removed);
    for (const s of this.#answers) {
      let found = false;
      for (const n of this.#resolve(s)) {
        const r = this.#provider.get(n);
        if (r === undefined || !this.#view(r)) continue;
        found = true;
        if (!included.has(n)) {
          resources.push(r);
          included.add(n);
          this.#clientHas.set(n, r.version);
        }
      }
      if (!found && !removedSet.has(s)) {
        this.#clientHas.delete(s);
        removed.push(s);
        removedSet.add(s);
      }
    }
    this.#answers.clear();
  }

  debug(includeVersions: boolean): SessionDebug {
    return {
      typeUrl: this.typeUrl,
      wildcard: this.#sub.wildcard,
      subscriptions: [...this.#sub.names],
      sent: includeVersions ? Object.fromEntries(this.#clientHas) : {},
      sentCount: this.#clientHas.size,
      inFlight:
        this.#inFlight === undefined
          ? undefined
          : { nonce: this.#inFlight.nonce, since: this.#inFlight.since },
      lastAck: this.#lastAck,
      lastNack: this.#lastNack,
      rejected: Object.fromEntries(this.#rejected),
      pending: this.pending,
      fullScan: this.#fullScan,
      responses: this.#responses,
      acks: this.#acks,
      nacks: this.#nacks,
    };
  }

  #view(r: StoredResource<M>): boolean {
    return this.#inView(r, this.#requested(r), this.#sub.wildcard);
  }

  #requested(r: StoredResource<M>): boolean {
    const names = this.#sub.names;
    if (names.size === 0) return false;
    if (names.has(r.name)) return true;
    for (const a of r.aliases) if (names.has(a)) return true;
    for (const n of r.related) {
      if (names.has(n)) return true;
      const parent = this.#provider.get(n);
      if (parent !== undefined) for (const a of parent.aliases) if (names.has(a)) return true;
    }
    return false;
  }

  /** The resource names a subscription key stands for: the name itself, else its alias holders. */
  #resolve(key: string): Iterable<string> {
    return this.#provider.get(key) !== undefined ? [key] : this.#provider.withAlias(key);
  }

  #mark(name: string, since: number | undefined): void {
    if (!this.#dirty.has(name)) {
      this.#dirty.set(name, since);
      return;
    }
    const old = this.#dirty.get(name);
    if (since !== undefined && (old === undefined || since < old)) this.#dirty.set(name, since);
  }

  #markAll(): void {
    this.#fullScan = true;
  }

  /** A subscription key was added or dropped: what it resolves to, and their dependents. */
  #markResolved(key: string): void {
    if (this.#clientHas.has(key)) this.#mark(key, undefined);
    for (const n of this.#resolve(key)) {
      this.#mark(n, undefined);
      for (const d of this.#provider.dependents(n)) this.#mark(d, undefined);
    }
  }
}
