/**
 * ztunnel's in-pod proxies, driven by ZDS requests (ztunnel's statemanager.rs): one proxy per
 * enrolled pod, started through an injected factory inside the pod's netns, stopped when the pod
 * goes. Proxies that fail to start are kept pending, with their netns, and retried.
 *
 * The state outlives connections to the node agent. Each connection begins with a snapshot: the
 * uids it names (by `add` or `keep`) are remembered until `snapshot_sent`, when every proxy not
 * named is torn down — pods deleted while ztunnel was disconnected.
 *
 * Operations run one at a time, in arrival order (a retry never interleaves with a request).
 * fds: every netns fd handed in is closed exactly once — when its proxy has stopped, when it is a
 * duplicate of a running proxy's namespace, when a pending entry is dropped or replaced, or at once
 * when the manager is shut down.
 */
import { LogOutput, type Logger } from "../../lib/log/index.ts";
import {
  NetnsHandle,
  describeRequest,
  type ReceivedZdsRequest,
  type WorkloadInfo,
} from "../../lib/zds/index.ts";
import { noInpodMetrics, type InpodMetrics } from "./metrics.ts";

/** "immediate": the pod is gone (deleted, replaced). "graceful": ztunnel is shutting down (drain). */
export type StopMode = "immediate" | "graceful";

/** A running per-pod proxy, as the factory returns it. */
export interface ProxyHandle {
  /**
   * Stops the proxy (its listeners and, per `mode`, its connections). Resolves once it no longer
   * uses the pod's netns fd; the manager closes the fd after that.
   */
  stop(mode: StopMode): Promise<void>;
  /** Live connection details for config_dump's workloadState, if the proxy tracks them. */
  connections?(): unknown;
}

export interface StartProxyRequest {
  /** The Kubernetes pod UID. */
  readonly uid: string;
  readonly workloadInfo: WorkloadInfo;
  /** The pod's netns. Owned by the manager: open until stop() settles; never close it. */
  readonly netnsFd: number;
}

/** Starts a proxy for one pod; rejects (with a message for the agent) if it cannot. */
export type StartProxy = (request: StartProxyRequest) => Promise<ProxyHandle>;

/** How a request went: Ack it empty, Ack it with an error, or Ack the error and drop the connection. */
export type HandleOutcome =
  | { readonly kind: "ok" }
  /** The proxy could not start: the pod is pending and retried; the connection stays. */
  | { readonly kind: "proxy-error"; readonly uid: string; readonly message: string }
  /** The agent broke the protocol (second snapshot_sent, keep after the snapshot). */
  | { readonly kind: "protocol-error"; readonly message: string };

/** One pod in config_dump's `workloadState`. */
export interface WorkloadStateEntry {
  readonly state: "Pending" | "Up";
  readonly info: {
    readonly name: string;
    readonly namespace: string;
    readonly serviceAccount: string;
  };
  readonly connections?: unknown;
}

export interface InpodStateManagerOptions {
  readonly startProxy: StartProxy;
  readonly metrics?: InpodMetrics;
  readonly log?: Logger;
  /** Takes ownership of a received netns fd; default NetnsHandle.adopt. */
  readonly adoptNetns?: (fd: number) => NetnsHandle;
}

interface Running {
  readonly info: WorkloadInfo;
  readonly netns: NetnsHandle;
  readonly handle: ProxyHandle;
}

interface Pending {
  readonly info: WorkloadInfo;
  readonly netns: NetnsHandle;
}

const OK: HandleOutcome = { kind: "ok" };

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class InpodStateManager {
  readonly #startProxy: StartProxy;
  readonly #metrics: InpodMetrics;
  readonly #log: Logger;
  readonly #adopt: (fd: number) => NetnsHandle;
  readonly #running = new Map<string, Running>();
  readonly #pending = new Map<string, Pending>();
  /** Pods whose proxy is being started right now (Pending in workloadState). */
  readonly #starting = new Map<string, WorkloadInfo>();
  readonly #stopping = new Set<Promise<void>>();
  /** Uids named by the current connection's snapshot so far. */
  readonly #snapshotNames = new Set<string>();
  #snapshotReceived = false;
  #shutDown = false;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(options: InpodStateManagerOptions) {
    this.#startProxy = options.startProxy;
    this.#metrics = options.metrics ?? noInpodMetrics;
    this.#log = options.log ?? new LogOutput().logger("inpod");
    this.#adopt = options.adoptNetns ?? ((fd) => NetnsHandle.adopt(fd));
    this.#updateGauges();
  }

  /** This connection's snapshot is complete. */
  get snapshotReceived(): boolean {
    return this.#snapshotReceived;
  }

  get activeCount(): number {
    return this.#running.size;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Uids with a pending proxy. */
  pendingUids(): string[] {
    return [...this.#pending.keys()];
  }

  /** Uids with a running proxy. */
  activeUids(): string[] {
    return [...this.#running.keys()];
  }

  /** Ready: the snapshot is in and no proxy is pending (connectivity is the caller's part). */
  get ready(): boolean {
    return this.#snapshotReceived && this.#pending.size === 0;
  }

  /** config_dump's `workloadState`: pod UID -> state and identity. */
  workloadState(): Record<string, WorkloadStateEntry> {
    const out: Record<string, WorkloadStateEntry> = {};
    const entry = (state: "Pending" | "Up", info: WorkloadInfo, connections?: unknown) => {
      const e: WorkloadStateEntry = {
        state,
        info: { name: info.name, namespace: info.namespace, serviceAccount: info.serviceAccount },
      };
      return connections === undefined ? e : { ...e, connections };
    };
    for (const [uid, p] of this.#pending) out[uid] = entry("Pending", p.info);
    for (const [uid, info] of this.#starting) out[uid] = entry("Pending", info);
    for (const [uid, r] of this.#running) out[uid] = entry("Up", r.info, r.handle.connections?.());
    return out;
  }

  /**
   * A new connection to the agent: its snapshot starts from nothing, and pending proxies are
   * dropped (their netns closed) — the snapshot brings every pod again with a fresh fd.
   */
  connectionStarted(): Promise<void> {
    return this.#serial(() => {
      this.#snapshotNames.clear();
      this.#snapshotReceived = false;
      for (const uid of [...this.#pending.keys()]) this.#dropPending(uid);
      this.#updateGauges();
    });
  }

  /**
   * Applies one request. Takes ownership of an add's netns fd (closed on every path). Never rejects.
   */
  handle(request: ReceivedZdsRequest): Promise<HandleOutcome> {
    return this.#serial(() => this.#handle(request));
  }

  /** Tries every pending proxy again. */
  retryPending(): Promise<void> {
    return this.#serial(async () => {
      const entries = [...this.#pending];
      this.#pending.clear();
      for (const [uid, p] of entries) {
        this.#log.info("retrying proxy start", { uid });
        const outcome = await this.#addWorkload(uid, p.info, p.netns);
        if (outcome.kind !== "ok") {
          this.#log.info("retrying proxy start failed", {
            uid,
            error: outcome.kind === "proxy-error" ? outcome.message : "",
          });
        }
      }
      this.#updateGauges();
    });
  }

  /** Resolves once every proxy being stopped has stopped (and its fd is closed). */
  async stopped(): Promise<void> {
    await this.#chain;
    while (this.#stopping.size > 0) await Promise.all(this.#stopping);
  }

  /**
   * ztunnel is shutting down: stops every proxy gracefully, drops pending ones, and waits. Later
   * requests are refused (their fds closed).
   */
  async drain(): Promise<void> {
    await this.#serial(() => {
      this.#shutDown = true;
      for (const uid of [...this.#pending.keys()]) this.#dropPending(uid);
      for (const uid of [...this.#running.keys()]) this.#stop(uid, "graceful");
      this.#updateGauges();
    });
    await this.stopped();
  }

  #serial<T>(work: () => T | Promise<T>): Promise<T> {
    const next = this.#chain.then(work);
    this.#chain = next.catch(() => {});
    return next;
  }

  async #handle(request: ReceivedZdsRequest): Promise<HandleOutcome> {
    if (this.#shutDown) {
      if (request.kind === "add") this.#closeReceived(request.netnsFd);
      return { kind: "protocol-error", message: "ztunnel is shutting down" };
    }
    this.#log.info("received ZDS request", {
      request: describeRequest(request),
      ...(request.kind === "add"
        ? { name: request.info.name, namespace: request.info.namespace }
        : {}),
    });
    switch (request.kind) {
      case "add": {
        const { uid, info } = request;
        if (!this.#snapshotReceived) this.#snapshotNames.add(uid);
        let netns: NetnsHandle;
        try {
          netns = this.#adopt(request.netnsFd);
        } catch (err) {
          return {
            kind: "proxy-error",
            uid,
            message: `the netns fd for pod ${uid} is unusable: ${message(err)}`,
          };
        }
        const outcome = await this.#addWorkload(uid, info, netns);
        this.#updateGauges();
        return outcome;
      }
      case "keep": {
        if (this.#snapshotReceived) {
          return {
            kind: "protocol-error",
            message: `keep for pod ${request.uid} after the snapshot was complete (keep is only valid in a snapshot)`,
          };
        }
        this.#snapshotNames.add(request.uid);
        if (!this.#running.has(request.uid)) {
          this.#log.warn("keep for a pod without a running proxy; nothing to keep", {
            uid: request.uid,
          });
        }
        return OK;
      }
      case "del": {
        const { uid } = request;
        this.#dropPending(uid);
        if (!this.#snapshotReceived) {
          // The snapshot's reconcile stops it, unless a later add names it again.
          this.#snapshotNames.delete(uid);
        } else if (this.#running.has(uid)) {
          this.#stop(uid, "immediate");
        }
        this.#updateGauges();
        return OK;
      }
      case "snapshot-sent": {
        if (this.#snapshotReceived) {
          return { kind: "protocol-error", message: "a second snapshot_sent on one connection" };
        }
        for (const uid of [...this.#running.keys()]) {
          if (!this.#snapshotNames.has(uid)) {
            this.#log.info("pod not in the snapshot; stopping its proxy", { uid });
            this.#stop(uid, "immediate");
          }
        }
        for (const uid of [...this.#pending.keys()]) {
          if (!this.#snapshotNames.has(uid)) this.#dropPending(uid);
        }
        this.#snapshotNames.clear();
        this.#snapshotReceived = true;
        this.#updateGauges();
        return OK;
      }
    }
  }

  /** Starts (or keeps) the proxy for `uid` with `netns`, which this call now owns. */
  async #addWorkload(uid: string, info: WorkloadInfo, netns: NetnsHandle): Promise<HandleOutcome> {
    const existing = this.#running.get(uid);
    if (existing !== undefined) {
      if (existing.netns.sameNamespace(netns)) {
        // The same pod again (a snapshot after a reconnect): keep the running proxy.
        netns.release();
        this.#dropPending(uid);
        return OK;
      }
      // A new netns for the same pod (its sandbox was re-created): replace the proxy.
      this.#log.info("pod has a new network namespace; replacing its proxy", { uid });
      this.#stop(uid, "immediate");
    }
    this.#dropPending(uid);
    this.#starting.set(uid, info);
    let handle: ProxyHandle;
    try {
      handle = await this.#startProxy({ uid, workloadInfo: info, netnsFd: netns.fd });
    } catch (err) {
      this.#starting.delete(uid);
      this.#pending.set(uid, { info, netns });
      const why = message(err);
      this.#log.error("failed to start proxy", {
        uid,
        name: info.name,
        namespace: info.namespace,
        error: why,
      });
      return {
        kind: "proxy-error",
        uid,
        message: `failed to start the proxy for pod ${uid}: ${why}`,
      };
    }
    this.#starting.delete(uid);
    this.#running.set(uid, { info, netns, handle });
    this.#metrics.proxyStarted();
    this.#log.info("proxy started", { uid, name: info.name, namespace: info.namespace });
    return OK;
  }

  #stop(uid: string, mode: StopMode): void {
    const r = this.#running.get(uid);
    if (r === undefined) return;
    this.#running.delete(uid);
    let stop: Promise<void>;
    try {
      stop = r.handle.stop(mode);
    } catch (err) {
      stop = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const stopping: Promise<void> = stop
      .then(
        () => {
          this.#log.debug("proxy stopped", { uid });
        },
        (err: unknown) => {
          this.#log.warn("stopping the proxy failed", { uid, error: message(err) });
        },
      )
      .then(() => {
        r.netns.release();
        this.#metrics.proxyStopped();
        this.#stopping.delete(stopping);
      });
    this.#stopping.add(stopping);
  }

  #dropPending(uid: string): void {
    const p = this.#pending.get(uid);
    if (p === undefined) return;
    this.#pending.delete(uid);
    p.netns.release();
  }

  #closeReceived(fd: number): void {
    try {
      this.#adopt(fd).release();
    } catch {
      // adopt closes the fd itself when it fails.
    }
  }

  #updateGauges(): void {
    this.#metrics.setActiveProxies(this.#running.size);
    this.#metrics.setPendingProxies(this.#pending.size);
  }
}
