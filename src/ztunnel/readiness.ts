/**
 * When ztunnel is ready to serve (`:15021/healthz/ready`), as in istio/ztunnel `readiness.rs`:
 * each start-up task must have completed, and in-pod mode must hold the node agent's snapshot:
 *
 * - `xds`: the first response of every watched type was applied and ACKed (or the static config
 *   loaded);
 * - `certificates`: a certificate is held for every node-local identity known when xDS synced
 *   (identities that stop being local meanwhile no longer count); once met it stays met, so a
 *   CA outage later does not take a serving node out of rotation;
 * - `inpod`: connected to the node agent, its snapshot applied, and no proxy pending (live:
 *   losing the agent makes ztunnel unready, like ztunnel's workload manager);
 * - `proxy` (dedicated mode): the workload's proxy started;
 * - never while draining.
 */
import { formatIdentity, identityKey, type Identity } from "../lib/identity/index.ts";

export interface ReadinessSources {
  /** Whether a certificate is held for an identity now. */
  readonly certificateAvailable: (id: Identity) => boolean;
  /** The node-local identities that need certificates now. */
  readonly localIdentities: () => readonly Identity[];
}

/** The in-pod manager's side of readiness (in-pod mode only). */
export interface InpodReadiness {
  readonly connected: boolean;
  readonly snapshotReceived: boolean;
  readonly pendingUids: readonly string[];
}

export interface ReadinessReport {
  readonly ready: boolean;
  /** Names of the unmet conditions, sorted (`certificates`, `draining`, `inpod`, `proxy`, `xds`). */
  readonly pending: readonly string[];
  /** One line per unmet condition, for operators. */
  readonly details: readonly string[];
}

export class Readiness {
  readonly #sources: ReadinessSources;
  #xdsSynced = false;
  /** Identities whose certificates gate readiness; undefined until xDS synced. */
  #required: Map<string, Identity> | undefined;
  #certificatesMet = false;
  #proxyRequired = false;
  #proxyStarted = false;
  #draining = false;

  constructor(sources: ReadinessSources) {
    this.#sources = sources;
  }

  /** xDS (or static config) delivered its first full view. */
  markXdsSynced(): void {
    if (this.#xdsSynced) return;
    this.#xdsSynced = true;
    this.#required = new Map(this.#sources.localIdentities().map((id) => [identityKey(id), id]));
  }

  get xdsSynced(): boolean {
    return this.#xdsSynced;
  }

  /** Dedicated mode: readiness also waits for `markProxyStarted`. */
  requireProxy(): void {
    this.#proxyRequired = true;
  }

  markProxyStarted(): void {
    this.#proxyStarted = true;
  }

  /** Shutting down: never ready again. */
  markDraining(): void {
    this.#draining = true;
  }

  /** The report now; `inpod` is given in in-pod mode. */
  check(inpod?: InpodReadiness): ReadinessReport {
    const unmet: [string, string][] = [];
    if (this.#draining) unmet.push(["draining", "draining: ztunnel is shutting down"]);
    if (!this.#xdsSynced) {
      unmet.push([
        "xds",
        "xds: waiting for the first response of each type from the control plane",
      ]);
    } else if (!this.#certificatesMet) {
      const missing = this.#missingCertificates();
      if (missing.length === 0) this.#certificatesMet = true;
      else {
        unmet.push([
          "certificates",
          `certificates: none held yet for ${missing.map(formatIdentity).join(", ")}`,
        ]);
      }
    }
    if (this.#proxyRequired && !this.#proxyStarted) {
      unmet.push(["proxy", "proxy: the workload's proxy has not started"]);
    }
    if (inpod !== undefined) {
      if (!inpod.connected) {
        unmet.push(["inpod", "inpod: not connected to the node agent (ZDS)"]);
      } else if (!inpod.snapshotReceived) {
        unmet.push(["inpod", "inpod: waiting for the node agent's snapshot"]);
      } else if (inpod.pendingUids.length > 0) {
        unmet.push([
          "inpod",
          `inpod: proxies failed to start and are retried: ${[...inpod.pendingUids].sort().join(", ")}`,
        ]);
      }
    }
    unmet.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return {
      ready: unmet.length === 0,
      pending: unmet.map(([n]) => n),
      details: unmet.map(([, d]) => d),
    };
  }

  #missingCertificates(): Identity[] {
    const required = this.#required;
    if (required === undefined) return [];
    const stillLocal = new Set(this.#sources.localIdentities().map(identityKey));
    const missing: Identity[] = [];
    for (const [key, id] of required) {
      if (!stillLocal.has(key)) required.delete(key);
      else if (!this.#sources.certificateAvailable(id)) missing.push(id);
    }
    return missing;
  }
}

/** The readiness endpoint's answer: 200 `ready`, else 503 listing what is missing. */
export function readinessResponse(report: ReadinessReport): { status: number; body: string } {
  if (report.ready) return { status: 200, body: "ready\n" };
  return {
    status: 503,
    body: `not ready, pending: ${report.pending.join(", ")}\n${report.details.map((d) => `- ${d}\n`).join("")}`,
  };
}
