/**
 * The connections a per-pod proxy carries (ztunnel's `ConnectionManager`): every inbound one is
 * registered with what authorization saw, so that when policies change each can be checked again
 * and closed if it is now denied; outbound ones are listed for `/config_dump`.
 *
 * An inbound connection is registered before its upstream exists (ztunnel registers before its
 * first check, so a policy change in between is not missed); a revocation that arrives before the
 * closer is attached closes the connection as soon as it is.
 */
import type { Identity } from "../../lib/identity/index.ts";
import { formatSocketAddr } from "../../lib/net/index.ts";
import {
  authorize,
  type AuthorizationDecision,
  type PolicyLookup,
  type PolicyTarget,
} from "../../lib/rbac/index.ts";
import type { SocketAddr } from "./plan/index.ts";

export interface InboundConnectionInfo {
  /** HBONE (15008) or TCP (plaintext, 15006). */
  readonly protocol: "HBONE" | "TCP";
  /** The TCP peer (policy `source_ips`). */
  readonly src: SocketAddr;
  /** The mTLS peer identity; undefined for plaintext. */
  readonly srcIdentity: Identity | undefined;
  /** The final destination: pod IP and app port (policy `destination_ips/ports`). */
  readonly dst: SocketAddr;
  /** What the client asked for: the CONNECT target (or `forwarded` host), if any. */
  readonly originalDst: string | undefined;
}

export interface OutboundConnectionInfo {
  readonly src: SocketAddr;
  readonly originalDst: SocketAddr;
  readonly actualDst: SocketAddr;
  /** ztunnel's names: TCP, HBONE, DOUBLEHBONE. */
  readonly protocol: "HBONE" | "TCP" | "DOUBLEHBONE";
}

/** One inbound connection's registration. */
export class TrackedInbound {
  readonly info: InboundConnectionInfo;
  readonly #tracker: ConnectionTracker;
  #closer: ((reason: Error) => void) | undefined;
  #revoked: Error | undefined;

  constructor(tracker: ConnectionTracker, info: InboundConnectionInfo) {
    this.#tracker = tracker;
    this.info = info;
  }

  /** Set once the connection is carrying bytes: how to close it when revoked. */
  setCloser(closer: (reason: Error) => void): void {
    this.#closer = closer;
    if (this.#revoked !== undefined) closer(this.#revoked);
  }

  get revoked(): boolean {
    return this.#revoked !== undefined;
  }

  /** Closes the connection (now, or as soon as a closer is set) and stops tracking it. */
  revoke(reason: Error): void {
    if (this.#revoked !== undefined) return;
    this.#revoked = reason;
    this.release();
    this.#closer?.(reason);
  }

  /** The connection is over: stop tracking it. Idempotent. */
  release(): void {
    this.#tracker.forget(this);
  }
}

export interface Revocation {
  readonly connection: TrackedInbound;
  readonly decision: AuthorizationDecision;
}

export interface ConnectionsDump {
  readonly inbound: readonly {
    readonly src: string;
    readonly originalDst: string | undefined;
    readonly actualDst: string;
    readonly protocol: "HBONE" | "TCP";
  }[];
  readonly outbound: readonly {
    readonly src: string;
    readonly originalDst: string;
    readonly actualDst: string;
    readonly protocol: string;
  }[];
}

const fmt = (a: SocketAddr): string => formatSocketAddr(a.ip, a.port);

export class ConnectionTracker {
  readonly #inbound = new Set<TrackedInbound>();
  readonly #outbound = new Set<OutboundConnectionInfo>();

  trackInbound(info: InboundConnectionInfo): TrackedInbound {
    const t = new TrackedInbound(this, info);
    this.#inbound.add(t);
    return t;
  }

  /** Lists an outbound connection until the returned function is called. */
  trackOutbound(info: OutboundConnectionInfo): () => void {
    this.#outbound.add(info);
    return () => this.#outbound.delete(info);
  }

  /** @internal (TrackedInbound.release) */
  forget(t: TrackedInbound): void {
    this.#inbound.delete(t);
  }

  get inboundCount(): number {
    return this.#inbound.size;
  }

  get outboundCount(): number {
    return this.#outbound.size;
  }

  /**
   * Checks every tracked inbound connection against the policies now in force for `target` (the
   * local workload as it is now) and revokes the ones that are denied. Returns them, with the
   * decision, for the caller to log.
   */
  recheck(lookup: PolicyLookup, target: PolicyTarget, reason: () => Error): Revocation[] {
    const out: Revocation[] = [];
    for (const t of [...this.#inbound]) {
      const i = t.info;
      const decision = authorize(lookup, target, {
        srcIp: i.src.ip,
        srcIdentity: i.srcIdentity,
        dstIp: i.dst.ip,
        dstPort: i.dst.port,
      });
      if (decision.allowed) continue;
      t.revoke(reason());
      out.push({ connection: t, decision });
    }
    return out;
  }

  /** `/config_dump`'s view (ztunnel's ConnectionManager serialisation). */
  dump(): ConnectionsDump {
    return {
      inbound: [...this.#inbound].map((t) => ({
        src: fmt(t.info.src),
        originalDst: t.info.originalDst,
        actualDst: fmt(t.info.dst),
        protocol: t.info.protocol,
      })),
      outbound: [...this.#outbound].map((o) => ({
        src: fmt(o.src),
        originalDst: fmt(o.originalDst),
        actualDst: fmt(o.actualDst),
        protocol: o.protocol,
      })),
    };
  }
}
