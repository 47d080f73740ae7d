/**
 * The supervisor: one detached `ambient supervise` process per cluster. It starts the
 * components in dependency order, adopts those already running (pid files with start times),
 * restarts any that exits with backoff, records what it sees in `S/run/status.json`, and on
 * SIGTERM stops everything in the README's order.
 *
 * Why one process rather than pid files checked by `up`/`status`: restarting a crashed ztunnel
 * or kubelet must not wait for a user to type a command. Why not the parent of everything: the
 * components run in their own sessions and outlive it — a supervisor killed with -9 leaves a
 * working mesh behind, and the next `up` starts a new supervisor that adopts it.
 */
import type { ChildProcess } from "node:child_process";
import type { Logger } from "../../lib/log/index.ts";
import { isAlive } from "../kubelet/index.ts";
import { crashCount, restartDelayMs } from "./backoff.ts";
import { stopOrder, type ClusterPlan, type ComponentSpec } from "./components.ts";
import { livePid, removePidFile, type PidRecord } from "./pid-file.ts";
import { startComponent, stopProcess } from "./process-control.ts";
import { checkReadiness } from "./readiness.ts";
import {
  writeStatus,
  type ComponentPhase,
  type ComponentStatus,
  type SupervisorStatus,
} from "./status-file.ts";

/** How often the supervisor looks at every component. */
const TICK_MS = 500;
/** How often a ready component's readiness is checked again (for `status`). */
const RECHECK_MS = 10_000;
const STATUS_REFRESH_MS = 5000;

interface Tracked {
  readonly spec: ComponentSpec;
  record: PidRecord | undefined;
  child: ChildProcess | undefined;
  exit: { code?: number; signal?: string } | undefined;
  ready: boolean;
  everReady: boolean;
  detail: string;
  checking: boolean;
  checkedAt: number;
  restarts: number;
  crashes: number;
  lastExit: ComponentStatus["lastExit"];
  nextStartAt: number;
  stopping: boolean;
}

export interface SupervisorOptions {
  readonly plan: ClusterPlan;
  readonly log: Logger;
}

export class Supervisor {
  readonly #plan: ClusterPlan;
  readonly #log: Logger;
  readonly #tracked: Tracked[];
  #timer: NodeJS.Timeout | undefined;
  #state: SupervisorStatus["state"] = "running";
  #lastWritten = "";
  #lastWrittenAt = 0;
  #ticking = false;

  constructor(o: SupervisorOptions) {
    this.#plan = o.plan;
    this.#log = o.log;
    this.#tracked = o.plan.components.map((spec) => ({
      spec,
      record: undefined,
      child: undefined,
      exit: undefined,
      ready: false,
      everReady: false,
      detail: "not started",
      checking: false,
      checkedAt: 0,
      restarts: 0,
      crashes: 0,
      lastExit: undefined,
      nextStartAt: 0,
      stopping: false,
    }));
  }

  /** Adopts what runs, then keeps every component running until `stop`. */
  start(): void {
    for (const t of this.#tracked) {
      const live = livePid(t.spec.pidFile);
      if (live !== undefined) {
        t.record = live;
        t.detail = "adopted; checking readiness";
        this.#log.info("adopted a running component", { component: t.spec.name, pid: live.pid });
      } else {
        removePidFile(t.spec.pidFile);
      }
    }
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    this.#tick();
  }

  /** Starts everything that waits (in backoff or for its dependencies) now. */
  retryNow(): void {
    for (const t of this.#tracked) t.nextStartAt = 0;
    this.#tick();
  }

  status(): SupervisorStatus {
    return {
      supervisorPid: process.pid,
      updatedAt: new Date().toISOString(),
      state: this.#state,
      components: this.#tracked.map((t) => this.#componentStatus(t)),
    };
  }

  #componentStatus(t: Tracked): ComponentStatus {
    let phase: ComponentPhase;
    if (t.stopping) phase = t.record ? "stopping" : "stopped";
    else if (this.#state !== "running") phase = t.record ? "stopping" : "stopped";
    else if (t.record === undefined) phase = t.lastExit ? "backoff" : "waiting";
    else if (t.ready) phase = "ready";
    else phase = t.everReady ? "unready" : "starting";
    return {
      name: t.spec.name,
      phase,
      ...(t.record ? { pid: t.record.pid, startedAt: t.record.startedAt } : {}),
      detail: t.detail,
      restarts: t.restarts,
      ...(t.lastExit ? { lastExit: t.lastExit } : {}),
      ...(t.record === undefined && t.nextStartAt > Date.now()
        ? { nextStartAt: new Date(t.nextStartAt).toISOString() }
        : {}),
      log: t.spec.logFile,
    };
  }

  #writeStatus(): void {
    const s = this.status();
    // Rewritten on change (the timestamp aside), and every few seconds to show it is alive.
    const key = JSON.stringify(s.components) + s.state;
    if (key === this.#lastWritten && Date.now() - this.#lastWrittenAt < STATUS_REFRESH_MS) return;
    this.#lastWritten = key;
    this.#lastWrittenAt = Date.now();
    try {
      writeStatus(this.#plan.layout.statusFile, s);
    } catch (err) {
      this.#log.warn("cannot write the status file", { error: (err as Error).message });
    }
  }

  #byName(name: string): Tracked | undefined {
    return this.#tracked.find((t) => t.spec.name === name);
  }

  #depsMet(t: Tracked): string | undefined {
    for (const d of t.spec.after) {
      const dep = this.#byName(d.name);
      if (dep === undefined) continue;
      if (dep.record === undefined) return `waiting for ${d.name} to start`;
      if (d.need === "ready" && !dep.ready) return `waiting for ${d.name} to be ready`;
    }
    return undefined;
  }

  #tick(): void {
    if (this.#ticking || this.#state !== "running") return;
    this.#ticking = true;
    try {
      const now = Date.now();
      for (const t of this.#tracked) {
        if (t.record !== undefined && !isAlive(t.record.pid, t.record.startTicks)) {
          this.#exited(t, now);
        }
        if (t.record === undefined) {
          if (now < t.nextStartAt) continue;
          const blocked = this.#depsMet(t);
          if (blocked !== undefined) {
            t.detail = blocked;
            continue;
          }
          this.#start(t);
          continue;
        }
        if (!t.checking && (!t.ready || now - t.checkedAt >= RECHECK_MS)) this.#check(t);
      }
      this.#writeStatus();
    } finally {
      this.#ticking = false;
    }
  }

  #start(t: Tracked): void {
    const started = startComponent(t.spec);
    if (started === undefined) {
      t.detail = "could not be started";
      t.crashes = crashCount(t.crashes, 0);
      t.nextStartAt = Date.now() + Math.max(restartDelayMs(t.crashes), 1000);
      this.#log.error("cannot start a component", { component: t.spec.name, log: t.spec.logFile });
      return;
    }
    t.record = started.record;
    t.child = started.child;
    t.exit = undefined;
    t.ready = false;
    t.everReady = false;
    t.detail = "started; checking readiness";
    started.child.once("exit", (code, signal) => {
      t.exit = { ...(code !== null ? { code } : {}), ...(signal !== null ? { signal } : {}) };
      this.#tick();
    });
    this.#log.info("started", {
      component: t.spec.name,
      pid: started.record.pid,
      log: t.spec.logFile,
    });
  }

  #exited(t: Tracked, now: number): void {
    const record = t.record!;
    const ranMs = now - Date.parse(record.startedAt);
    t.lastExit = { ...(t.exit ?? {}), at: new Date(now).toISOString() };
    t.record = undefined;
    t.child = undefined;
    t.ready = false;
    t.restarts++;
    t.crashes = crashCount(t.crashes, Number.isFinite(ranMs) ? ranMs : 0);
    const delay = restartDelayMs(t.crashes);
    t.nextStartAt = now + delay;
    t.detail = `exited (${t.exit?.signal ?? `code ${t.exit?.code ?? "unknown"}`}); restarting in ${delay / 1000} s`;
    removePidFile(t.spec.pidFile);
    this.#log.warn("component exited; restarting", {
      component: t.spec.name,
      pid: record.pid,
      code: t.exit?.code ?? "unknown",
      signal: t.exit?.signal ?? "",
      restart_in_ms: delay,
      log: t.spec.logFile,
    });
  }

  #check(t: Tracked): void {
    const record = t.record!;
    t.checking = true;
    void checkReadiness(t.spec.readiness, {
      apiSocket: this.#plan.layout.apiSocket,
      startedAt: record.startedAt,
    }).then((r) => {
      t.checking = false;
      t.checkedAt = Date.now();
      if (t.record !== record) return; // it exited meanwhile
      if (r.ready && !t.ready) {
        this.#log.info("ready", { component: t.spec.name, pid: record.pid });
      } else if (!r.ready && t.ready) {
        this.#log.warn("no longer ready", { component: t.spec.name, reason: r.detail });
      }
      t.ready = r.ready;
      t.everReady ||= r.ready;
      t.detail = r.detail;
      this.#tick();
    });
  }

  /** Stops every component (kubelets first, API server last) and the loop. */
  async stop(reason: string): Promise<void> {
    if (this.#state !== "running") return;
    this.#state = "stopping";
    clearInterval(this.#timer);
    this.#log.info("stopping the cluster", { reason });
    this.#writeStatus();
    await stopComponents(stopOrder(this.#plan), this.#log, (name, stopping) => {
      const t = this.#byName(name);
      if (t === undefined) return;
      t.stopping = true;
      if (!stopping) t.record = undefined;
      this.#writeStatus();
    });
    this.#state = "stopped";
    this.#writeStatus();
    this.#log.info("cluster stopped");
  }
}

/**
 * Stops components in the order given, those of one kind together (both kubelets at once),
 * each bounded by its stop timeout. Works from pid files alone, so `down` uses it when no
 * supervisor runs. `onChange(name, stopping)` reports progress.
 */
export async function stopComponents(
  ordered: readonly ComponentSpec[],
  log: Logger,
  onChange: (name: string, stopping: boolean) => void = () => {},
): Promise<void> {
  const groups: ComponentSpec[][] = [];
  for (const c of ordered) {
    const last = groups[groups.length - 1];
    if (last !== undefined && last[0]!.kind === c.kind) last.push(c);
    else groups.push([c]);
  }
  for (const group of groups) {
    await Promise.all(
      group.map(async (c) => {
        const record = livePid(c.pidFile);
        if (record === undefined) {
          removePidFile(c.pidFile);
          onChange(c.name, false);
          return;
        }
        onChange(c.name, true);
        const how = await stopProcess(record, c.stopTimeoutMs);
        log.info(how === "killed" ? "killed (did not stop in time)" : "stopped", {
          component: c.name,
          pid: record.pid,
          ...(how === "killed" ? { timeout_ms: c.stopTimeoutMs } : {}),
        });
        removePidFile(c.pidFile);
        onChange(c.name, false);
      }),
    );
  }
}
