/**
 * One pod on this node, from network to processes: creates its namespace and veth
 * (`podNetworkUp`), writes its resolv.conf (cluster DNS), calls the CNI hook (retrying with
 * backoff until it succeeds: containers never start before), starts each container, restarts
 * them per `restartPolicy` with backoff, runs readiness and liveness probes, and reports status.
 * `stop` sends SIGTERM to every container's process group, SIGKILL after the grace period, kills
 * anything left in the namespace, calls the CNI `del` hook and removes the namespace.
 *
 * What it started is recorded in `<kubeletDir>/pods/<uid>.json` (pids with start times, restart
 * counts, whether the CNI hook ran), so a restarted kubelet adopts the running processes.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "../../lib/exec.ts";
import { isObject, jsonEqual, metaOf, str, type Json } from "../../lib/kube-api/index.ts";
import type { Logger } from "../../lib/log/index.ts";
import { podNetns, podNetworkDown, podNetworkUp, type PodNetwork } from "../network/index.ts";
import type { CniHook, CniPodEvent } from "./cni.ts";
import { containerArgv, containerEnv } from "./env.ts";
import {
  adoptProcess,
  isAlive,
  signalGroup,
  startProcess,
  type Exit,
  type ProcessHandle,
} from "./processes.ts";
import { parseProbe, runProbe, type Probe } from "./probes.ts";
import { podStatus, type ContainerView, type Termination } from "./pod-status.ts";

export interface WorkerDeps {
  readonly cluster: string;
  readonly node: string;
  readonly hostIP: string;
  readonly networkStateDir: string;
  /** Pod records: `<kubeletDir>/pods/<uid>.json`. */
  readonly kubeletDir: string;
  /** Container logs: `<logsDir>/<ns>_<name>_<uid>/<container>/<restartCount>.log`. */
  readonly logsDir: string;
  readonly clusterDns: string;
  readonly clusterDomain: string;
  /** Working directory of every container (the repository root). */
  readonly cwd: string;
  readonly nodeBinDir: string;
  readonly cni: CniHook;
  readonly log: Logger;
  /** Writes the pod's status (merge patch of status); rejects when it could not. */
  writeStatus(namespace: string, name: string, status: Json): Promise<void>;
}

export interface ContainerRecord {
  readonly pid: number;
  readonly startTicks: string;
  readonly startedAt: string;
  readonly restartCount: number;
  readonly last?: Termination;
}

export interface PodRecord {
  readonly version: 1;
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly netns?: string;
  readonly cniAdded: boolean;
  readonly containers: Readonly<Record<string, ContainerRecord>>;
}

interface Container {
  readonly name: string;
  readonly spec: Json;
  handle?: ProcessHandle | undefined;
  state: "waiting" | "running" | "terminated";
  reason?: string | undefined;
  message?: string | undefined;
  startedAt?: string | undefined;
  restartCount: number;
  last?: Termination | undefined;
  terminated?: Termination | undefined;
  ready: boolean;
  readiness?: Probe;
  liveness?: Probe;
  backoffMs: number;
  env?: Record<string, string>;
  /** Bumped per run, so timers of an older run stop. */
  run: number;
}

const MAX_BACKOFF_MS = 60_000;
/** A container that ran this long restarts without delay and resets its backoff. */
const STABLE_RUN_MS = 60_000;

export function recordPath(kubeletDir: string, uid: string): string {
  return join(kubeletDir, "pods", `${uid}.json`);
}

export function resolvConf(namespace: string, dns: string, domain: string): string {
  return (
    `search ${namespace}.svc.${domain} svc.${domain} ${domain}\n` +
    `nameserver ${dns}\n` +
    `options ndots:5\n`
  );
}

export class PodWorker {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly #deps: WorkerDeps;
  #pod: Json;
  #net: PodNetwork | undefined;
  #cniAdded: boolean;
  #sandboxReady = false;
  #sandboxMessage: string | undefined;
  readonly #containers = new Map<string, Container>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #sleepers = new Set<() => void>();
  #setupDone: Promise<void> = Promise.resolve();
  readonly #record: PodRecord | undefined;
  readonly #startTime: string;
  #stopping: Promise<void> | undefined;
  #lastStatus: Json | undefined;
  #statusTimer: NodeJS.Timeout | undefined;
  #writing = false;

  constructor(deps: WorkerDeps, pod: Json, record?: PodRecord) {
    this.#deps = deps;
    this.#pod = pod;
    const m = metaOf(pod);
    this.uid = str(m["uid"]);
    this.namespace = str(m["namespace"]);
    this.name = str(m["name"]);
    this.#record = record;
    this.#cniAdded = record?.cniAdded ?? false;
    const st = isObject(pod["status"]) ? pod["status"] : {};
    this.#startTime = str(st["startTime"]) || new Date().toISOString().replace(/\.\d+Z$/, "Z");
    this.#lastStatus = isObject(pod["status"]) ? pod["status"] : undefined;
    const spec = isObject(pod["spec"]) ? pod["spec"] : {};
    for (const c of Array.isArray(spec["containers"]) ? (spec["containers"] as unknown[]) : []) {
      if (!isObject(c)) continue;
      const name = str(c["name"]);
      const rec = record?.containers[name];
      const container: Container = {
        name,
        spec: c,
        state: "waiting",
        reason: "ContainerCreating",
        restartCount: rec?.restartCount ?? 0,
        ...(rec?.last ? { last: rec.last } : {}),
        ready: false,
        backoffMs: 0,
        run: 0,
      };
      for (const [field, key] of [
        ["readinessProbe", "readiness"],
        ["livenessProbe", "liveness"],
      ] as const) {
        const p = parseProbe(c[field], c);
        if (p?.ok) container[key] = p.value;
        else if (p) deps.log.warn("probe ignored", { pod: this.key, reason: p.reason });
      }
      this.#containers.set(name, container);
    }
  }

  get key(): string {
    return `${this.namespace}/${this.name}`;
  }

  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  get ip(): string | undefined {
    return this.#net?.ip;
  }

  /** The latest version of the pod from the API (labels, annotations for the downward API). */
  update(pod: Json): void {
    this.#pod = pod;
  }

  start(): void {
    this.#setupDone = this.#setup();
  }

  // ---- timers ---------------------------------------------------------------------------------

  #after(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }

  /** Resolves after `ms`, or at once when the pod is being stopped. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.#sleepers.delete(done);
        resolve();
      };
      this.#sleepers.add(done);
      this.#after(ms, done);
    });
  }

  // ---- setup ----------------------------------------------------------------------------------

  #event(): CniPodEvent {
    const net = this.#net!;
    return {
      namespace: this.namespace,
      name: this.name,
      uid: this.uid,
      node: this.#deps.node,
      netns: net.netns,
      netnsPath: net.netnsPath,
      ip: net.ip,
      gateway: net.gateway,
      interface: net.interface,
    };
  }

  async #setup(): Promise<void> {
    const d = this.#deps;
    let backoff = 500;
    while (this.#stopping === undefined) {
      try {
        this.#net = await podNetworkUp(
          d.cluster,
          { namespace: this.namespace, name: this.name, node: d.node },
          { stateDir: d.networkStateDir, log: d.log },
        );
        const dir = join("/etc/netns", this.#net.netns);
        mkdirSync(dir, { recursive: true });
        writeFileSync(
          join(dir, "resolv.conf"),
          resolvConf(this.namespace, d.clusterDns, d.clusterDomain),
        );
        if (this.#stopping !== undefined) return;
        if (!this.#cniAdded) {
          await d.cni.add(this.#event());
          this.#cniAdded = true;
        }
        this.#sandboxReady = true;
        this.#sandboxMessage = undefined;
        break;
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        this.#sandboxMessage = `pod sandbox setup failed (retrying in ${Math.round(backoff / 1000)}s): ${msg}`;
        d.log.warn("pod start failed; retrying", { pod: this.key, error: msg, retryMs: backoff });
        this.#markDirty();
        await this.#sleep(backoff);
        backoff = Math.min(backoff * 2, 30_000);
      }
    }
    if (this.#stopping !== undefined) return;
    this.#save();
    for (const c of this.#containers.values()) {
      const rec = this.#record?.containers[c.name];
      if (rec !== undefined && isAlive(rec.pid, rec.startTicks)) this.#adopt(c, rec);
      else {
        if (rec !== undefined) c.restartCount = rec.restartCount + 1;
        this.#startContainer(c);
      }
    }
    this.#markDirty();
  }

  // ---- containers -----------------------------------------------------------------------------

  #adopt(c: Container, rec: ContainerRecord): void {
    const h = adoptProcess(rec.pid, rec.startTicks, rec.startedAt);
    this.#deps.log.info("adopted running container", {
      pod: this.key,
      container: c.name,
      pid: rec.pid,
    });
    this.#running(c, h);
  }

  #startContainer(c: Container): void {
    const d = this.#deps;
    const net = this.#net!;
    const env = containerEnv(c.spec, {
      pod: this.#pod,
      podIP: net.ip,
      hostIP: d.hostIP,
      nodeName: d.node,
      nodeBinDir: d.nodeBinDir,
      basePath: process.env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin",
      home: process.env["HOME"] ?? "/root",
    });
    const argv = env.ok ? containerArgv(c.spec, env.value) : undefined;
    if (!env.ok || !argv?.ok) {
      c.state = "waiting";
      c.reason = "CreateContainerConfigError";
      c.message = !env.ok ? env.reason.join("; ") : argv && !argv.ok ? argv.reason : "";
      d.log.warn("container cannot start", { pod: this.key, container: c.name, reason: c.message });
      this.#markDirty();
      return;
    }
    c.env = env.value;
    const logPath = join(
      d.logsDir,
      `${this.namespace}_${this.name}_${this.uid}`,
      c.name,
      `${c.restartCount}.log`,
    );
    const h = startProcess({
      netns: net.netns,
      argv: argv.value,
      env: env.value,
      cwd: d.cwd,
      logPath,
    });
    d.log.info("started container", {
      pod: this.key,
      container: c.name,
      pid: h.pid,
      restartCount: c.restartCount,
    });
    this.#running(c, h);
  }

  #running(c: Container, h: ProcessHandle): void {
    c.run++;
    c.handle = h;
    c.state = "running";
    c.reason = undefined;
    c.message = undefined;
    c.terminated = undefined;
    c.startedAt = h.startedAt;
    c.ready = c.readiness === undefined;
    this.#save();
    this.#markDirty();
    this.#probe(c, c.run, "readiness");
    this.#probe(c, c.run, "liveness");
    void h.exited.then((exit) => this.#onExit(c, h, exit));
  }

  #willRestart(c: Container): boolean {
    const policy =
      str((isObject(this.#pod["spec"]) ? this.#pod["spec"] : {})["restartPolicy"]) || "Always";
    if (policy === "Always") return true;
    return policy === "OnFailure" && (c.terminated ?? c.last)?.exitCode !== 0;
  }

  #onExit(c: Container, h: ProcessHandle, exit: Exit): void {
    if (c.handle !== h) return;
    c.handle = undefined;
    c.run++;
    c.ready = false;
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const code = exit.code ?? 255;
    c.terminated = {
      exitCode: code,
      reason: exit.code === undefined ? "Unknown" : code === 0 ? "Completed" : "Error",
      ...(exit.signal !== undefined ? { signal: code - 128 } : {}),
      startedAt: h.startedAt.replace(/\.\d+Z$/, "Z"),
      finishedAt: now,
    };
    c.state = "terminated";
    if (this.#stopping !== undefined) {
      this.#markDirty();
      return;
    }
    this.#deps.log.info("container exited", {
      pod: this.key,
      container: c.name,
      exitCode: code,
      signal: exit.signal ?? "",
    });
    if (this.#willRestart(c)) {
      const ranMs = Date.now() - Date.parse(h.startedAt);
      if (ranMs >= STABLE_RUN_MS) c.backoffMs = 0;
      const delay = c.backoffMs;
      c.last = c.terminated;
      c.terminated = undefined;
      c.state = "waiting";
      c.reason = delay > 0 ? "CrashLoopBackOff" : "ContainerCreating";
      if (delay > 0)
        c.message = `back-off ${Math.round(delay / 1000)}s restarting failed container=${c.name} pod=${this.name}`;
      c.backoffMs = Math.min(Math.max(1000, delay * 2), MAX_BACKOFF_MS);
      const runAtExit = c.run;
      this.#after(delay, () => {
        if (this.#stopping !== undefined || c.run !== runAtExit) return;
        c.restartCount++;
        this.#startContainer(c);
      });
    }
    this.#save();
    this.#markDirty();
  }

  #probe(c: Container, runId: number, kind: "readiness" | "liveness"): void {
    const probe = kind === "readiness" ? c.readiness : c.liveness;
    if (probe === undefined) return;
    let successes = 0;
    let failures = 0;
    const tick = async () => {
      if (this.#stopping !== undefined || c.run !== runId || this.#net === undefined) return;
      const ok = await runProbe(probe, {
        podIP: this.#net.ip,
        netns: this.#net.netns,
        env: c.env ?? {},
        cwd: this.#deps.cwd,
      });
      if (this.#stopping !== undefined || c.run !== runId) return;
      if (ok) {
        successes++;
        failures = 0;
      } else {
        failures++;
        successes = 0;
      }
      if (kind === "readiness") {
        const before = c.ready;
        if (ok && successes >= probe.successThreshold) c.ready = true;
        if (!ok && failures >= probe.failureThreshold) c.ready = false;
        if (before !== c.ready) this.#markDirty();
      } else if (!ok && failures >= probe.failureThreshold && c.handle !== undefined) {
        this.#deps.log.info("liveness probe failed; restarting container", {
          pod: this.key,
          container: c.name,
        });
        const pid = c.handle.pid;
        signalGroup(pid, "SIGTERM");
        this.#after(this.#graceMs(), () => signalGroup(pid, "SIGKILL"));
        return;
      }
      this.#after(probe.periodSeconds * 1000, () => void tick());
    };
    this.#after(probe.initialDelaySeconds * 1000, () => void tick());
  }

  #graceMs(): number {
    const spec = isObject(this.#pod["spec"]) ? this.#pod["spec"] : {};
    const g = spec["terminationGracePeriodSeconds"];
    return (typeof g === "number" && g >= 0 ? g : 30) * 1000;
  }

  // ---- records and status ---------------------------------------------------------------------

  #save(): void {
    const containers: Record<string, ContainerRecord> = {};
    for (const c of this.#containers.values()) {
      if (c.handle === undefined && c.last === undefined && c.restartCount === 0) continue;
      containers[c.name] = {
        pid: c.handle?.pid ?? -1,
        startTicks: c.handle?.startTicks ?? "",
        startedAt: c.handle?.startedAt ?? "",
        restartCount: c.restartCount,
        ...(c.last ? { last: c.last } : {}),
      };
    }
    const rec: PodRecord = {
      version: 1,
      uid: this.uid,
      namespace: this.namespace,
      name: this.name,
      ...(this.#net ? { netns: this.#net.netns } : {}),
      cniAdded: this.#cniAdded,
      containers,
    };
    const path = recordPath(this.#deps.kubeletDir, this.uid);
    mkdirSync(join(this.#deps.kubeletDir, "pods"), { recursive: true });
    writeFileSync(`${path}.tmp`, JSON.stringify(rec) + "\n");
    renameSync(`${path}.tmp`, path);
  }

  #markDirty(): void {
    if (this.#statusTimer !== undefined) return;
    this.#statusTimer = setTimeout(() => {
      this.#statusTimer = undefined;
      void this.#flushStatus();
    }, 20);
  }

  statusNow(): Json {
    const views: ContainerView[] = [...this.#containers.values()].map((c) => ({
      name: c.name,
      state: c.state,
      ...(c.reason !== undefined ? { reason: c.reason } : {}),
      ...(c.message !== undefined ? { message: c.message } : {}),
      ...(c.startedAt !== undefined ? { startedAt: c.startedAt.replace(/\.\d+Z$/, "Z") } : {}),
      ready: c.ready,
      restartCount: c.restartCount,
      ...(c.terminated ? { terminated: c.terminated } : {}),
      ...(c.last ? { last: c.last } : {}),
      ...(c.handle ? { pid: c.handle.pid } : {}),
    }));
    const spec = isObject(this.#pod["spec"]) ? this.#pod["spec"] : {};
    const policy = str(spec["restartPolicy"]);
    return podStatus(
      {
        ...(this.#net ? { podIP: this.#net.ip } : {}),
        hostIP: this.#deps.hostIP,
        startTime: this.#startTime,
        restartPolicy: policy === "Never" || policy === "OnFailure" ? policy : "Always",
        sandboxReady: this.#sandboxReady,
        ...(this.#sandboxMessage !== undefined ? { sandboxMessage: this.#sandboxMessage } : {}),
        containers: views,
        willRestart: (v) => {
          const c = this.#containers.get(v.name);
          return c !== undefined && this.#willRestart(c);
        },
      },
      this.#lastStatus,
      new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    );
  }

  async #flushStatus(): Promise<void> {
    if (this.#writing) {
      this.#markDirty();
      return;
    }
    const status = this.statusNow();
    if (this.#lastStatus !== undefined && jsonEqual(status, this.#lastStatus)) return;
    this.#writing = true;
    try {
      await this.#deps.writeStatus(this.namespace, this.name, status);
      this.#lastStatus = status;
    } catch (err) {
      if (this.#stopping === undefined) {
        this.#deps.log.debug("pod status write failed; retrying", {
          pod: this.key,
          error: String(err),
        });
        this.#after(1000, () => this.#markDirty());
      }
    } finally {
      this.#writing = false;
    }
  }

  // ---- stopping -------------------------------------------------------------------------------

  /** Stops every container (SIGTERM, SIGKILL after `graceSeconds`) and removes the pod's network. */
  stop(graceSeconds: number): Promise<void> {
    this.#stopping ??= this.#stop(graceSeconds);
    return this.#stopping;
  }

  async #stop(graceSeconds: number): Promise<void> {
    const d = this.#deps;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const wake of [...this.#sleepers]) wake();
    clearTimeout(this.#statusTimer);
    // Let a setup step in flight (network, CNI add) finish, so what it made is undone below.
    await this.#setupDone.catch(() => {});
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    const running = [...this.#containers.values()].flatMap((c) => (c.handle ? [c.handle] : []));
    for (const h of running) signalGroup(h.pid, "SIGTERM");
    const all = Promise.all(running.map((h) => h.exited));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>(
        (r) => (timer = setTimeout(() => r(true), Math.max(0, graceSeconds) * 1000)),
      ),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      for (const h of running) signalGroup(h.pid, "SIGKILL");
      await Promise.race([all, new Promise((r) => setTimeout(r, 5000))]);
    }
    const netns =
      this.#net?.netns ?? this.#record?.netns ?? podNetns(d.cluster, this.namespace, this.name);
    await killAllIn(netns);
    if (this.#cniAdded && this.#net !== undefined && d.cni.del !== undefined) {
      try {
        await d.cni.del(this.#event());
      } catch (err) {
        d.log.warn("CNI del hook failed", {
          pod: this.key,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
    try {
      await podNetworkDown(
        d.cluster,
        { namespace: this.namespace, name: this.name },
        { stateDir: d.networkStateDir, log: d.log },
      );
    } catch (err) {
      d.log.warn("cannot remove the pod's network", {
        pod: this.key,
        error: err instanceof Error ? err.message : String(err),
      });
    }
    rmSync(join("/etc/netns", netns), { recursive: true, force: true });
    rmSync(recordPath(d.kubeletDir, this.uid), { force: true });
    d.log.info("pod stopped", { pod: this.key, killed: timedOut });
  }
}

/** Kills every process left in a network namespace (children that left their group). */
export async function killAllIn(netns: string): Promise<void> {
  for (let i = 0; i < 5; i++) {
    const r = await run("ip", ["netns", "pids", netns]).catch(() => undefined);
    const pids = (r?.code === 0 ? r.stdout : "")
      .split(/\s+/)
      .filter((p) => /^\d+$/.test(p))
      .map(Number);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await new Promise((r2) => setTimeout(r2, 100));
  }
}
