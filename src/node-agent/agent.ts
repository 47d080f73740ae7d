/**
 * The node agent (istio-cni's ambient role): enrolls this node's pods into the mesh and takes
 * them out again, without restarting them.
 *
 * Inputs: pod events from the runtime (plugin ADD/DEL on a unix socket — the only source of a
 * pod's netns path), and a watch of Pods and Namespaces. Per pod, a level-triggered reconcile
 * (`planPod`) compares what the labels ask for with what is done and takes one action:
 * enroll = rules in the pod netns → ZDS add → annotation `enabled` (or `pending` when ztunnel
 * has not taken the pod: it stays captured, its traffic blocked — fail closed); unenroll = ZDS
 * del → rules removed → annotation removed. One pod's reconciles run one at a time; different
 * pods in parallel, bounded. The node's probe SNAT rules follow the set of captured pods.
 *
 * Start-up (also after a crash): read the state file, sync the watch, re-register pods that are
 * still enrolled with the ZDS server before it accepts anyone (so ztunnel's first snapshot
 * holds them: `add` with the netns where the path is known, `keep` where not), then reconcile
 * every pod (enroll the missing, unenroll the stale, re-apply rules by diff).
 */
import { existsSync } from "node:fs";
import { Registry } from "prom-client";
import { ambientEnrollment, annotation as ambientAnnotation } from "../lib/ambient/index.ts";
import type { ConfigBatch, ConfigEvent, ConfigStore } from "../lib/config/index.ts";
import { AmbientError, fail, ok } from "../lib/errors.ts";
import { LogOutput, type Logger } from "../lib/log/index.ts";
import { systemTimers, type Timers } from "../lib/timers.ts";
import type { NodeAgentConfig } from "./config.ts";
import {
  createNodeAgentMetrics,
  type NodeAgentMetrics,
  type PluginEventResult,
  type PodCounts,
} from "./metrics.ts";
import { MonitoringServers } from "./monitoring.ts";
import {
  describeAction,
  planPod,
  type PodAction,
  type RedirectionAnnotation,
  type RulesState,
  type ZdsState,
} from "./plan.ts";
import type { PluginAddEvent, PluginDelEvent } from "./plugin-event.ts";
import { PluginEventServer, type PluginAnswer } from "./plugin-server.ts";
import { isTerminal, podName, redirectionOf, statusIps, workloadInfo, type Pod } from "./pod.ts";
import { ReconcileQueue } from "./reconcile-queue.ts";
import {
  applyHostProbeRules,
  applyPodRules,
  buildPodRules,
  podSettingsFromAnnotations,
  removePodRules,
  type HostProbeSettings,
  type NodeRedirectionSettings,
  type PodRules,
} from "./rules/index.ts";
import { StateFile, type PodNetnsRecord } from "./state-file.ts";
import { ZdsServer, type SnapshotResult, type ZdsServerOptions } from "./zds/index.ts";

/** The rule operations the agent performs; tests wrap the real ones. */
export interface RulesBackend {
  applyPodRules(netns: string, rules: PodRules): Promise<void>;
  removePodRules(netns: string): Promise<void>;
  applyHostProbeRules(netns: string, settings: HostProbeSettings): Promise<void>;
}

export const linuxRules: RulesBackend = {
  applyPodRules: (netns, rules) => applyPodRules(netns, rules),
  removePodRules: (netns) => removePodRules(netns),
  applyHostProbeRules: (netns, settings) => applyHostProbeRules(netns, settings),
};

export interface NodeAgentOptions {
  readonly config: NodeAgentConfig;
  /** Pods and Namespaces (a KubeConfigStore in production). Started here if not yet. */
  readonly store: ConfigStore;
  readonly logOutput?: LogOutput;
  /** Where the metrics go; a fresh registry by default. */
  readonly registry?: Registry;
  readonly rules?: RulesBackend;
  readonly timers?: Timers;
  /** Overrides for the ZDS server (tests: timeouts, a memory listener). */
  readonly zds?: Omit<ZdsServerOptions, "path" | "log" | "timers">;
  /** Serve /metrics and /readyz on the configured ports (default true). */
  readonly monitoring?: boolean;
  /** How often pods ztunnel has not taken are offered to it again. Default 5 s. */
  readonly pendingRetryMs?: number;
}

/** What a reconcile decided and did, as the plugin ADD reports it. */
export interface ReconcileResult {
  readonly pod: string;
  readonly uid: string;
  /** The labels put the pod in the mesh and it is captured (enabled or pending). */
  readonly enrolled: boolean;
  readonly redirection: "enabled" | "pending" | undefined;
  readonly reason: string;
  readonly message: string;
  readonly action: string;
}

/** One pod as the agent tracks it (a debugging and test view). */
export interface PodView {
  readonly uid: string;
  readonly pod: string;
  readonly netns: string | undefined;
  readonly zds: ZdsState;
  readonly rules: RulesState;
  readonly annotation: RedirectionAnnotation;
}

interface PodRecord {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  netns: string | undefined;
  containerId: string;
  /** From the plugin ADD: the CNI chain's first-hand IPs (the API may not have them yet). */
  ips: string[];
  captured: boolean;
  /** The runtime tore the sandbox down (plugin DEL). */
  sandboxGone: boolean;
  /** Deleted from the API. */
  deleted: boolean;
  /** The redirection annotation as last seen on the pod. */
  annotation: RedirectionAnnotation;
  /** Our last annotation write, until the watch shows the pod at or past its resourceVersion. */
  written: { readonly value: RedirectionAnnotation; readonly rv: string } | undefined;
  zds: ZdsState;
  rules: RulesState;
  /** The settings the current rules were built from. */
  rulesKey: string | undefined;
  waitingForNetns: boolean;
  lastDecision: string | undefined;
  retryMs: number;
  retryTimer: unknown;
}

const MIN_RETRY_MS = 100;
const MAX_RETRY_MS = 5_000;
const DEFAULT_PENDING_RETRY_MS = 5_000;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function errorCode(err: unknown): string | undefined {
  return err instanceof AmbientError ? err.code : undefined;
}

export class NodeAgent {
  readonly config: NodeAgentConfig;
  readonly registry: Registry;
  readonly #store: ConfigStore;
  readonly #log: Logger;
  readonly #logOutput: LogOutput;
  readonly #rules: RulesBackend;
  readonly #timers: Timers;
  readonly #metrics: NodeAgentMetrics;
  readonly #nodeSettings: NodeRedirectionSettings;
  readonly #pods = new Map<string, PodRecord>();
  readonly #queue: ReconcileQueue<ReconcileResult>;
  readonly #stateFile: StateFile;
  readonly #podWaiters = new Set<() => void>();
  readonly #opts: NodeAgentOptions;
  #zds: ZdsServer | undefined;
  #plugin: PluginEventServer | undefined;
  #monitoring: MonitoringServers | undefined;
  #unsubscribe: (() => void) | undefined;
  #pendingTimer: unknown;
  #probeLoop: Promise<void> | undefined;
  #probeAgain = false;
  #probeApplied: string | undefined;
  #started = false;
  #closed = false;

  private constructor(opts: NodeAgentOptions) {
    this.#opts = opts;
    this.config = opts.config;
    this.#store = opts.store;
    this.#logOutput = opts.logOutput ?? new LogOutput();
    this.#log = this.#logOutput.logger("cni-agent");
    this.#rules = opts.rules ?? linuxRules;
    this.#timers = opts.timers ?? systemTimers;
    this.registry = opts.registry ?? new Registry();
    this.#metrics = createNodeAgentMetrics(this.registry, () => this.#counts());
    this.#nodeSettings = {
      ipv4: true,
      ipv6: opts.config.ipv6,
      dnsCapture: opts.config.dnsCapture,
      probeSnatIpv4: opts.config.probeSnatIpv4,
      probeSnatIpv6: opts.config.probeSnatIpv6,
    };
    this.#queue = new ReconcileQueue({
      run: (uid) => this.#reconcile(uid),
      limit: opts.config.maxConcurrentEnrollments,
    });
    this.#stateFile = new StateFile(
      opts.config.stateFile,
      () => this.#stateRecords(),
      this.#logOutput.logger("cni-agent"),
    );
  }

  /** Builds the agent and starts it (see the file comment for the order). */
  static async start(opts: NodeAgentOptions): Promise<NodeAgent> {
    const agent = new NodeAgent(opts);
    try {
      await agent.#start();
    } catch (err) {
      await agent.close();
      throw err;
    }
    return agent;
  }

  get ready(): boolean {
    return this.notReadyReason() === undefined;
  }

  notReadyReason(): string | undefined {
    if (this.#closed) return "the node agent is shutting down";
    if (!this.#store.hasSynced) {
      return "waiting for the first list of Pods and Namespaces from the API server";
    }
    if (!this.#started) return "the node agent is starting";
    return undefined;
  }

  /** The ZDS server (its `ready`, `connectionCount`, events). */
  get zds(): ZdsServer | undefined {
    return this.#zds;
  }

  /** The bound metrics / readiness ports (0 when not serving). */
  port(role: "metrics" | "readiness"): number {
    return this.#monitoring?.port(role) ?? 0;
  }

  /** The most pods that were ever reconciled at once. */
  get maxConcurrentReconciles(): number {
    return this.#queue.maxActive;
  }

  pods(): PodView[] {
    return [...this.#pods.values()].map((r) => ({
      uid: r.uid,
      pod: `${r.namespace}/${r.name}`,
      netns: r.netns,
      zds: r.zds,
      rules: r.rules,
      annotation: r.annotation,
    }));
  }

  /** Resolves when no reconcile runs or waits (tests, shutdown). */
  idle(): Promise<void> {
    return this.#queue.idle();
  }

  /** Stops serving; leaves every pod's rules and ztunnel's proxies as they are. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#timers.clearTimeout(this.#pendingTimer);
    for (const r of this.#pods.values()) this.#timers.clearTimeout(r.retryTimer);
    for (const w of this.#podWaiters) w();
    this.#unsubscribe?.();
    await this.#plugin?.close();
    this.#queue.resume(); // runs queued during a failed start finish (each sees #closed early)
    await this.#queue.idle();
    await this.#probeLoop;
    await this.#zds?.close();
    await this.#monitoring?.close();
    await this.#stateFile.save().catch((err: unknown) => {
      this.#log.error("cannot write the state file at shutdown", { error: message(err) });
    });
    this.#log.info("node agent stopped");
  }

  // ---- start-up ---------------------------------------------------------------------------------

  async #start(): Promise<void> {
    const c = this.config;
    // First, so /readyz says what start-up waits for (the API server, typically).
    if (this.#opts.monitoring ?? true) {
      this.#monitoring = await MonitoringServers.start({
        host: c.monitoringHost,
        metricsPort: c.monitoringPort,
        readinessPort: c.readinessPort,
        registry: this.registry,
        notReadyReason: () => this.notReadyReason(),
      });
    }
    this.#log.info("node agent starting", {
      metricsPort: this.port("metrics"),
      readinessPort: this.port("readiness"),
      node: c.nodeName,
      zds: c.ztunnelSocket,
      plugin: c.pluginSocket,
      state: c.stateFile,
      dnsCapture: c.dnsCapture,
      ipv6: c.ipv6,
    });
    const saved = await this.#stateFile.load();
    this.#unsubscribe = this.#store.subscribe((b) => this.#onBatch(b), {
      kinds: ["Pod", "Namespace"],
    });
    await this.#store.start();
    await this.#store.synced;
    if (this.#closed) return;

    this.#restoreRecords(saved);
    this.#zds = ZdsServer.listen({
      ...this.#opts.zds,
      path: c.ztunnelSocket,
      log: this.#logOutput.logger("zds"),
      timers: this.#timers,
    });
    // Same tick as listen: the server accepts asynchronously, so every pod registered here is in
    // the first snapshot any ztunnel gets (an empty one would make ztunnel drop all proxies).
    this.#registerRestored(this.#zds);
    this.#zds.on("connect", () => this.#metrics.setZtunnelConnections(this.#zds!.connectionCount));
    this.#zds.on("disconnect", () =>
      this.#metrics.setZtunnelConnections(this.#zds!.connectionCount),
    );
    this.#zds.on("snapshot", ({ results }) => this.#onSnapshot(results));
    this.#zds.on("ready", (ready) => {
      if (ready) this.#retryPending("ztunnel ready");
    });

    this.#plugin = await PluginEventServer.listen(
      c.pluginSocket,
      { add: (ev) => this.handleAdd(ev), del: (ev) => this.handleDel(ev) },
      this.#logOutput.logger("cni-plugin-events"),
    );
    await this.#saveState();
    this.#scheduleHostProbe();
    this.#armPendingRetry();
    this.#queue.resume();
    for (const uid of this.#pods.keys()) this.#schedule(uid);
    this.#started = true;
    this.#log.info("node agent ready", {
      pods: this.#pods.size,
      metricsPort: this.port("metrics"),
      readinessPort: this.port("readiness"),
    });
  }

  #newRecord(uid: string, namespace: string, name: string): PodRecord {
    const r: PodRecord = {
      uid,
      namespace,
      name,
      netns: undefined,
      containerId: "",
      ips: [],
      captured: false,
      sandboxGone: false,
      deleted: false,
      annotation: undefined,
      written: undefined,
      zds: "none",
      rules: "none",
      rulesKey: undefined,
      waitingForNetns: false,
      lastDecision: undefined,
      retryMs: 0,
      retryTimer: undefined,
    };
    this.#pods.set(uid, r);
    return r;
  }

  #onNode(pod: Pod): boolean {
    return pod.spec.nodeName === this.config.nodeName;
  }

  /** Records from the state file (pods still in the API) and from the API (pods on this node). */
  #restoreRecords(saved: readonly PodNetnsRecord[]): void {
    for (const s of saved) {
      const pod = this.#store.get("Pod", s.namespace, s.name);
      if (pod === undefined || pod.metadata.uid !== s.uid) {
        this.#log.info("forgetting a pod deleted while the agent was down", {
          pod: `${s.namespace}/${s.name}`,
          uid: s.uid,
        });
        continue;
      }
      const r = this.#newRecord(s.uid, s.namespace, s.name);
      if (existsSync(s.netns)) {
        r.netns = s.netns;
        r.containerId = s.containerId;
        r.captured = s.captured;
        r.rules = s.captured ? "stale" : "none";
      } else {
        this.#log.warn("the pod's network namespace is gone; waiting for the runtime's next ADD", {
          pod: `${s.namespace}/${s.name}`,
          netns: s.netns,
        });
      }
      r.ips = [...s.ips];
    }
    for (const pod of this.#store.list("Pod")) {
      const uid = pod.metadata.uid;
      if (!this.#pods.has(uid) && this.#onNode(pod)) {
        this.#newRecord(uid, pod.metadata.namespace, pod.metadata.name);
      }
    }
    // Pods an earlier run enrolled (annotated) and that should stay: the next snapshot carries them.
    for (const r of this.#pods.values()) {
      const pod = this.#currentPod(r);
      if (pod === undefined) continue;
      r.annotation = redirectionOf(pod);
      if (r.annotation === undefined || isTerminal(pod)) continue;
      if (!this.#enrollment(pod).enrolled) continue;
      if (r.netns !== undefined) {
        r.zds = "snapshot";
        r.captured = true;
        if (this.config.reconcileRulesOnStartup) {
          r.rules = "stale";
        } else {
          r.rules = "current";
          r.rulesKey = this.#rulesFor(pod).key;
        }
      } else {
        r.zds = "kept";
        r.rules = "stale";
      }
    }
  }

  #registerRestored(zds: ZdsServer): void {
    let adds = 0;
    let keeps = 0;
    for (const r of this.#pods.values()) {
      const pod = this.#currentPod(r);
      if (pod === undefined) continue;
      if (r.zds === "snapshot" && r.netns !== undefined) {
        adds++;
        void zds.addPod(r.uid, workloadInfo(pod), r.netns).then((outcome) => {
          if (!outcome.ok && outcome.reason.kind === "netns" && r.zds === "snapshot") {
            // Gone between the check and the open: keep ztunnel's proxy until the next ADD.
            r.netns = undefined;
            r.zds = "kept";
            zds.keepPod(r.uid, workloadInfo(pod));
          }
        });
      } else if (r.zds === "kept") {
        keeps++;
        zds.keepPod(r.uid, workloadInfo(pod));
        this.#log.info("enrolled pod's network namespace is unknown; ztunnel keeps its proxy", {
          pod: podName(pod),
          uid: r.uid,
        });
      }
    }
    this.#log.info("restored enrolled pods for ztunnel's snapshot", { add: adds, keep: keeps });
  }

  // ---- events -----------------------------------------------------------------------------------

  #onBatch(batch: ConfigBatch): void {
    // The initial list is read directly at start-up; only changes come through here.
    if (batch.initial || this.#closed) return;
    for (const e of batch.events) {
      this.#metrics.reconcileEvent(
        e.type === "added" ? "add" : e.type === "updated" ? "update" : "delete",
      );
      if (e.kind === "Pod") this.#onPodEvent(e);
      else if (e.kind === "Namespace") this.#onNamespaceEvent(e);
    }
    for (const w of [...this.#podWaiters]) w();
  }

  #onPodEvent(e: ConfigEvent<"Pod">): void {
    const pod = e.type === "deleted" ? e.old : e.new;
    const uid = pod.metadata.uid;
    let r = this.#pods.get(uid);
    if (e.type === "deleted") {
      if (r !== undefined) {
        r.deleted = true;
        this.#schedule(uid);
      }
      return;
    }
    if (r === undefined) {
      if (!this.#onNode(pod)) return;
      r = this.#newRecord(uid, pod.metadata.namespace, pod.metadata.name);
    }
    r.annotation = this.#observedAnnotation(r, pod);
    this.#schedule(uid);
  }

  #onNamespaceEvent(e: ConfigEvent<"Namespace">): void {
    const name = (e.new ?? e.old).metadata.name;
    if (
      e.type === "updated" &&
      JSON.stringify(e.old.metadata.labels) === JSON.stringify(e.new.metadata.labels)
    ) {
      return;
    }
    for (const r of this.#pods.values()) if (r.namespace === name) this.#schedule(r.uid);
  }

  #onSnapshot(results: readonly SnapshotResult[]): void {
    for (const res of results) {
      const r = this.#pods.get(res.uid);
      if (r === undefined || res.sent !== "add") continue;
      if (r.zds === "none" || r.zds === "kept") continue;
      r.zds = res.outcome.ok ? "acked" : "pending";
      this.#schedule(r.uid);
    }
  }

  #schedule(uid: string): void {
    if (this.#closed) return;
    this.#queue.schedule(uid).catch((err: unknown) => {
      // Logged where it happened; the record knows whether to retry.
      this.#log.debug("reconcile failed", { uid, error: message(err) });
    });
  }

  #retryLater(r: PodRecord): void {
    if (r.retryTimer !== undefined || this.#closed) return;
    r.retryMs = Math.min(Math.max(r.retryMs * 2, MIN_RETRY_MS), MAX_RETRY_MS);
    r.retryTimer = this.#timers.setTimeout(() => {
      r.retryTimer = undefined;
      this.#schedule(r.uid);
    }, r.retryMs);
  }

  #armPendingRetry(): void {
    const every = this.#opts.pendingRetryMs ?? DEFAULT_PENDING_RETRY_MS;
    this.#pendingTimer = this.#timers.setTimeout(() => {
      this.#retryPending("periodic retry");
      this.#scheduleHostProbe();
      if (!this.#closed) this.#armPendingRetry();
    }, every);
  }

  #retryPending(why: string): void {
    if (this.#zds?.ready !== true) return;
    const pending = [...this.#pods.values()].filter((r) => r.zds === "pending");
    if (pending.length === 0) return;
    this.#log.debug("offering pending pods to ztunnel again", { pods: pending.length, why });
    for (const r of pending) this.#schedule(r.uid);
  }

  // ---- plugin events ----------------------------------------------------------------------------

  /**
   * A pod sandbox was created (before its containers start). Records the netns, then enrolls the
   * pod if its labels say so, answering only once the rules are in (fail closed). Exposed for
   * runtimes that embed the agent in-process.
   */
  async handleAdd(ev: PluginAddEvent): Promise<PluginAnswer> {
    const who = `${ev.podNamespace}/${ev.podName}`;
    const answer = (result: PluginEventResult, a: PluginAnswer): PluginAnswer => {
      this.#metrics.pluginEvent("add", result);
      return a;
    };
    if (this.#closed) return answer("error", fail(`the node agent is shutting down (pod ${who})`));
    const pod = await this.#waitForPod(ev.podNamespace, ev.podName, ev.podUid);
    if (pod === undefined) {
      const m =
        `pod ${who}${ev.podUid === undefined ? "" : ` (uid ${ev.podUid})`} is not in the API ` +
        `server watch after ${this.config.podLookupTimeoutMs} ms; check that it exists and that ` +
        `the node agent can list pods`;
      this.#log.error("plugin ADD for an unknown pod", { pod: who, netns: ev.netns, error: m });
      return answer("error", fail(m));
    }
    if (pod.spec.nodeName !== undefined && pod.spec.nodeName !== this.config.nodeName) {
      this.#log.warn("plugin ADD for a pod scheduled to another node; taking it anyway", {
        pod: who,
        podNode: pod.spec.nodeName,
        node: this.config.nodeName,
      });
    }
    const uid = pod.metadata.uid;
    const r = this.#pods.get(uid) ?? this.#newRecord(uid, ev.podNamespace, ev.podName);
    const newSandbox =
      r.sandboxGone ||
      (r.netns !== undefined && r.netns !== ev.netns) ||
      (r.containerId !== "" && ev.containerId !== "" && r.containerId !== ev.containerId);
    if (newSandbox) {
      // A fresh netns has none of our rules, and ztunnel holds the old one: redo both.
      r.rules = "none";
      r.rulesKey = undefined;
      r.captured = false;
      if (r.zds !== "none") r.zds = "pending";
    }
    r.netns = ev.netns;
    r.containerId = ev.containerId;
    if (ev.ips.length > 0) r.ips = [...ev.ips];
    r.sandboxGone = false;
    r.annotation = this.#observedAnnotation(r, pod);
    await this.#saveState();
    this.#log.info("plugin ADD", {
      pod: who,
      uid,
      netns: ev.netns,
      container: ev.containerId,
      ips: ev.ips.join(","),
    });
    let result: ReconcileResult;
    try {
      result = await this.#queue.schedule(uid);
    } catch (err) {
      return answer("error", fail(`cannot enroll pod ${who}: ${message(err)}`));
    }
    const outcome: PluginEventResult = !result.enrolled
      ? "skipped"
      : result.redirection === "enabled"
        ? "enrolled"
        : "pending";
    return answer(
      outcome,
      ok({
        pod: who,
        uid,
        enrolled: result.enrolled,
        redirection: result.redirection ?? null,
        reason: result.reason,
        message: result.message,
      }),
    );
  }

  /** A pod sandbox was torn down: ztunnel lets go of the pod; the netns is forgotten. */
  async handleDel(ev: PluginDelEvent): Promise<PluginAnswer> {
    const who = `${ev.podNamespace}/${ev.podName}`;
    const r =
      (ev.podUid !== undefined ? this.#pods.get(ev.podUid) : undefined) ??
      [...this.#pods.values()].find(
        (p) => p.namespace === ev.podNamespace && p.name === ev.podName && p.netns !== undefined,
      );
    if (r === undefined || r.netns === undefined) {
      this.#metrics.pluginEvent("del", "skipped");
      return ok({ pod: who, known: false });
    }
    if (ev.containerId !== "" && r.containerId !== "" && ev.containerId !== r.containerId) {
      this.#log.info("plugin DEL for an older sandbox; ignored", {
        pod: who,
        container: ev.containerId,
        current: r.containerId,
      });
      this.#metrics.pluginEvent("del", "skipped");
      return ok({ pod: who, known: true, stale: true });
    }
    this.#log.info("plugin DEL", { pod: who, uid: r.uid, container: ev.containerId });
    r.sandboxGone = true;
    try {
      await this.#queue.schedule(r.uid);
    } catch (err) {
      this.#metrics.pluginEvent("del", "error");
      return fail(`cannot remove pod ${who}: ${message(err)}`);
    }
    this.#metrics.pluginEvent("del", "removed");
    return ok({ pod: who, known: true, removed: true });
  }

  async #waitForPod(ns: string, name: string, uid: string | undefined): Promise<Pod | undefined> {
    const match = (): Pod | undefined => {
      const p = this.#store.get("Pod", ns, name);
      return p !== undefined && (uid === undefined || p.metadata.uid === uid) ? p : undefined;
    };
    const deadline = this.#timers.now() + this.config.podLookupTimeoutMs;
    for (;;) {
      const p = match();
      if (p !== undefined || this.#closed) return p;
      const left = deadline - this.#timers.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.#timers.clearTimeout(t);
          this.#podWaiters.delete(done);
          resolve();
        };
        const t = this.#timers.setTimeout(done, left);
        this.#podWaiters.add(done);
      });
    }
  }

  // ---- reconcile --------------------------------------------------------------------------------

  #currentPod(r: PodRecord): Pod | undefined {
    const pod = this.#store.get("Pod", r.namespace, r.name);
    return pod !== undefined && pod.metadata.uid === r.uid ? pod : undefined;
  }

  /**
   * The annotation as the watch shows it, unless the watch has not caught up with our own write
   * yet (then what we wrote): acting on the older view would only write the same thing again.
   */
  #observedAnnotation(r: PodRecord, pod: Pod): RedirectionAnnotation {
    const w = r.written;
    if (w !== undefined) {
      const seen = pod.metadata.resourceVersion;
      if (/^\d+$/.test(seen) && /^\d+$/.test(w.rv) && BigInt(seen) < BigInt(w.rv)) return w.value;
      r.written = undefined;
    }
    return redirectionOf(pod);
  }

  #enrollment(pod: Pod) {
    const ns = this.#store.get("Namespace", "", pod.metadata.namespace);
    return ambientEnrollment(pod, ns, this.config.systemNamespace);
  }

  #rulesFor(pod: Pod): { rules: PodRules; key: string; warnings: string[] } {
    const { settings, warnings } = podSettingsFromAnnotations(
      pod.metadata.annotations,
      this.#nodeSettings,
    );
    return { rules: buildPodRules(settings), key: JSON.stringify(settings), warnings };
  }

  async #reconcile(uid: string): Promise<ReconcileResult> {
    const r = this.#pods.get(uid);
    if (r === undefined || this.#closed) {
      return {
        pod: r ? `${r.namespace}/${r.name}` : uid,
        uid,
        enrolled: false,
        redirection: undefined,
        reason: "unknown",
        message: this.#closed
          ? "the node agent is shutting down"
          : "the agent does not know the pod",
        action: "none",
      };
    }
    const who = `${r.namespace}/${r.name}`;
    const pod = this.#currentPod(r);
    if (pod !== undefined) r.annotation = this.#observedAnnotation(r, pod);
    const enrollment =
      pod !== undefined
        ? this.#enrollment(pod)
        : { enrolled: false, reason: "pod-deleted", message: "the pod is deleted" };
    const gone = pod === undefined || isTerminal(pod) || r.sandboxGone;
    const built = pod !== undefined ? this.#rulesFor(pod) : undefined;
    const rules: RulesState =
      r.rules === "current" && built !== undefined && r.rulesKey !== built.key ? "stale" : r.rules;
    const action = planPod({
      desired: enrollment.enrolled,
      gone,
      netns: r.netns !== undefined,
      annotation: r.annotation,
      zds: r.zds,
      rules,
    });
    r.waitingForNetns = action.kind === "wait-netns";
    this.#logDecision(r, pod, action, enrollment.reason, enrollment.message, built?.warnings ?? []);

    try {
      switch (action.kind) {
        case "none":
        case "wait-netns":
          break;
        case "keep":
          this.#zds?.keepPod(uid, workloadInfo(pod!));
          r.zds = "kept";
          r.rules = "stale";
          this.#scheduleHostProbe();
          break;
        case "enroll":
          await this.#enroll(r, pod!, action, built!);
          break;
        case "unenroll":
          await this.#unenroll(r, action, gone);
          break;
      }
    } catch (err) {
      this.#log.error("enrollment action failed", {
        pod: who,
        uid,
        action: describeAction(action),
        error: message(err),
      });
      throw err;
    }

    if (r.sandboxGone && r.zds === "none") {
      r.netns = undefined;
      r.containerId = "";
      r.captured = false;
      r.rules = "none";
      await this.#saveState();
    }
    if (pod === undefined && r.zds === "none") {
      this.#timers.clearTimeout(r.retryTimer);
      this.#pods.delete(uid);
      await this.#saveState();
    }
    if (r.retryTimer === undefined) r.retryMs = 0;
    const captured = enrollment.enrolled && !gone && r.rules !== "none";
    const redirection =
      r.zds === "acked" ? "enabled" : r.zds === "pending" ? "pending" : r.annotation;
    return {
      pod: who,
      uid,
      enrolled: captured,
      redirection: captured ? redirection : undefined,
      reason: enrollment.reason,
      message: enrollment.message,
      action: describeAction(action),
    };
  }

  #logDecision(
    r: PodRecord,
    pod: Pod | undefined,
    action: PodAction,
    reason: string,
    detail: string,
    warnings: readonly string[],
  ): void {
    const decision = `${describeAction(action)} ${reason}`;
    const changed = decision !== r.lastDecision;
    r.lastDecision = decision;
    const fields = {
      pod: `${r.namespace}/${r.name}`,
      uid: r.uid,
      action: describeAction(action),
      reason,
      detail,
      zds: r.zds,
      rules: r.rules,
      annotation: r.annotation ?? "none",
    };
    // A pod that is not running yet has simply not had its ADD; say so quietly.
    const quiet =
      action.kind === "none" || (action.kind === "wait-netns" && pod?.status?.phase !== "Running");
    if (!changed && action.kind === "none") return;
    if (quiet) this.#log.debug("pod decision", fields);
    else this.#log.info("pod decision", fields);
    for (const w of warnings) {
      if (changed) this.#log.warn("pod annotation ignored", { pod: fields.pod, problem: w });
    }
  }

  async #enroll(
    r: PodRecord,
    pod: Pod,
    action: Extract<PodAction, { kind: "enroll" }>,
    built: { rules: PodRules; key: string },
  ): Promise<void> {
    const t0 = performance.now();
    const who = podName(pod);
    const netns = r.netns!;
    if (action.applyRules) {
      if (!r.captured) {
        // Written before the rules go in, so a crash in between still knows to look.
        r.captured = true;
        await this.#saveState();
      }
      try {
        await this.#rules.applyPodRules(netns, built.rules);
      } catch (err) {
        this.#metrics.ruleFailure("apply");
        r.rules = "stale";
        const fresh = r.zds === "none" && r.annotation === undefined;
        if (fresh) await this.#cleanUpFailedApply(r, netns);
        throw new AmbientError(
          "POD_RULES_FAILED",
          `cannot install the redirection rules in the network namespace ${netns} of pod ${who}: ${message(err)}`,
          { cause: err },
        );
      }
      r.rules = "current";
      r.rulesKey = built.key;
    }
    if (action.addToZtunnel && this.#zds !== undefined) {
      const outcome = await this.#zds.addPod(r.uid, workloadInfo(pod), netns);
      r.zds = outcome.ok ? "acked" : "pending";
      if (!outcome.ok) {
        this.#log.warn(
          "ztunnel has not taken the pod; it stays captured with its traffic blocked until ztunnel does",
          {
            pod: who,
            uid: r.uid,
            reason: outcome.reason.kind,
            error: outcome.reason.message,
          },
        );
      }
    }
    const target = r.zds === "acked" ? "enabled" : r.zds === "pending" ? "pending" : undefined;
    if (target !== undefined && target !== r.annotation) {
      if (await this.#annotate(r, target)) {
        this.#log.info(
          `pod ${target === "enabled" ? "enrolled" : "captured, waiting for ztunnel"}`,
          {
            pod: who,
            uid: r.uid,
            redirection: target,
          },
        );
      }
    }
    this.#scheduleHostProbe();
    if (action.addToZtunnel) this.#metrics.enrollDone((performance.now() - t0) / 1000);
  }

  /** A first enrollment failed half-way: take away what went in, so the app is as it was. */
  async #cleanUpFailedApply(r: PodRecord, netns: string): Promise<void> {
    try {
      await this.#rules.removePodRules(netns);
      r.rules = "none";
      r.captured = false;
      await this.#saveState();
    } catch (err) {
      if (errorCode(err) === "RULES_NETNS_MISSING") {
        r.rules = "none";
        r.captured = false;
        return;
      }
      this.#log.warn("cannot clean up after the failed rule install", {
        pod: `${r.namespace}/${r.name}`,
        error: message(err),
      });
    }
  }

  async #unenroll(
    r: PodRecord,
    action: Extract<PodAction, { kind: "unenroll" }>,
    gone: boolean,
  ): Promise<void> {
    const who = `${r.namespace}/${r.name}`;
    if (action.zdsDel && this.#zds !== undefined) {
      const res = await this.#zds.removePod(r.uid);
      if (!res.ok) {
        // Not fatal: the pod is out of our set, so any later snapshot drops it too.
        this.#log.warn("ztunnel did not confirm the pod delete", {
          pod: who,
          uid: r.uid,
          error: res.reason.message,
        });
      }
    }
    r.zds = "none";
    if (action.removeRules && r.netns !== undefined) {
      try {
        await this.#rules.removePodRules(r.netns);
      } catch (err) {
        if (errorCode(err) !== "RULES_NETNS_MISSING") {
          this.#metrics.ruleFailure("remove");
          this.#retryLater(r);
          throw new AmbientError(
            "POD_RULES_REMOVE_FAILED",
            `cannot remove the redirection rules from the network namespace ${r.netns} of pod ${who}: ${message(err)}`,
            { cause: err },
          );
        }
        // The netns went away: nothing of ours is left in it.
        r.netns = undefined;
      }
      r.rules = "none";
      r.rulesKey = undefined;
      r.captured = false;
      await this.#saveState();
    } else if (gone) {
      r.rules = "none";
      r.rulesKey = undefined;
    } else if (r.rules !== "none" && r.netns === undefined) {
      // istio-cni would find the netns by scanning /proc for the pod's processes; our runtime's
      // pods have no pod cgroup to find, so the rules stay until the pod's sandbox is re-created.
      this.#log.warn(
        "cannot remove the pod's rules: its network namespace is unknown; it stays captured (traffic blocked) until it restarts",
        {
          pod: who,
          uid: r.uid,
        },
      );
    }
    if (action.removeAnnotation && (await this.#annotate(r, null))) {
      this.#log.info("pod removed from the mesh", { pod: who, uid: r.uid });
    }
    this.#scheduleHostProbe();
  }

  /** Writes (or with null removes) the redirection annotation; on failure retries later. */
  async #annotate(r: PodRecord, v: "enabled" | "pending" | null): Promise<boolean> {
    const res = await this.#store.writeStatus({
      type: "podAnnotations",
      namespace: r.namespace,
      name: r.name,
      annotations: { [ambientAnnotation.redirection]: v },
    });
    if (res.ok) {
      r.annotation = v ?? undefined;
      r.written = { value: r.annotation, rv: res.value.metadata.resourceVersion };
      return true;
    }
    if (res.reason.code === "not-found") return false;
    this.#log.warn("cannot write the pod's redirection annotation; will retry", {
      pod: `${r.namespace}/${r.name}`,
      value: v ?? "(remove)",
      error: res.reason.message,
    });
    this.#retryLater(r);
    return false;
  }

  // ---- host probe rules -------------------------------------------------------------------------

  #probeIps(): string[] {
    const ips = new Set<string>();
    for (const r of this.#pods.values()) {
      if (r.sandboxGone || r.deleted || (r.rules === "none" && r.zds !== "kept")) continue;
      const pod = this.#currentPod(r);
      const own = r.ips.length > 0 ? r.ips : pod !== undefined ? statusIps(pod) : [];
      for (const ip of own) if (this.config.ipv6 || !ip.includes(":")) ips.add(ip);
    }
    return [...ips].sort();
  }

  #scheduleHostProbe(): void {
    if (!this.config.hostProbeRules || this.#closed) return;
    if (this.#probeLoop !== undefined) {
      this.#probeAgain = true;
      return;
    }
    this.#probeLoop = (async () => {
      do {
        this.#probeAgain = false;
        await this.#syncHostProbe();
      } while (this.#probeAgain && !this.#closed);
    })().finally(() => {
      this.#probeLoop = undefined;
    });
  }

  async #syncHostProbe(): Promise<void> {
    const ips = this.#probeIps();
    const key = ips.join(",");
    if (key === this.#probeApplied) return;
    try {
      await this.#rules.applyHostProbeRules(this.config.hostNetns, {
        ipv6: this.config.ipv6,
        podIps: ips,
        probeSnatIpv4: this.config.probeSnatIpv4,
        probeSnatIpv6: this.config.probeSnatIpv6,
      });
      this.#probeApplied = key;
      this.#log.debug("node probe rules updated", { pods: ips.length });
    } catch (err) {
      this.#probeApplied = undefined;
      this.#metrics.ruleFailure("host-probe");
      this.#log.error(
        "cannot update the node's probe SNAT rules; kubelet-style probes of enrolled pods may fail",
        {
          netns: this.config.hostNetns,
          error: message(err),
        },
      );
    }
  }

  // ---- state ------------------------------------------------------------------------------------

  #stateRecords(): PodNetnsRecord[] {
    const out: PodNetnsRecord[] = [];
    for (const r of this.#pods.values()) {
      if (r.netns === undefined) continue;
      out.push({
        uid: r.uid,
        namespace: r.namespace,
        name: r.name,
        netns: r.netns,
        containerId: r.containerId,
        ips: r.ips,
        captured: r.captured,
      });
    }
    return out;
  }

  async #saveState(): Promise<void> {
    try {
      await this.#stateFile.save();
    } catch (err) {
      this.#log.error(
        "cannot write the node agent state file; a restart may lose pods' netns paths",
        {
          path: this.#stateFile.path,
          error: message(err),
        },
      );
    }
  }

  #counts(): PodCounts {
    let enrolled = 0;
    let pending = 0;
    let waitingForNetns = 0;
    for (const r of this.#pods.values()) {
      if (r.waitingForNetns) waitingForNetns++;
      if (r.zds === "none" || r.sandboxGone || r.deleted) continue;
      const state = r.zds === "acked" || r.zds === "pending" ? r.zds : r.annotation;
      if (state === "acked" || state === "enabled") enrolled++;
      else if (state === "pending") pending++;
    }
    return { enrolled, pending, waitingForNetns };
  }
}
