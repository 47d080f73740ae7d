/**
 * `ambient up`: validate the manifests, write them into the config directory, bring the network
 * up, make sure the supervisor runs (it starts or adopts every component), and wait — bounded —
 * until every component and every pod is ready. Safe to run again: what runs is adopted, what is
 * missing is started, unchanged manifests stay unchanged.
 */
import { spawn } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { AmbientError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log/index.ts";
import { currentSpec, networkUp, type Topology } from "../network/index.ts";
import { REPO_ROOT } from "../node-runtime.ts";
import { ApiClient, podReady, type Pod } from "./api.ts";
import { readClusterFile, writeClusterFile } from "./cluster-file.ts";
import { planCluster, type ClusterPlan } from "./components.ts";
import { clusterLayout, nodeNames, socketPathProblems, type ClusterLayout } from "./layout.ts";
import { takeLock } from "./lock.ts";
import { applyToConfigDir, describeApplied, readManifestInputs } from "./manifests.ts";
import { livePid } from "./pid-file.ts";
import { CLI_MAIN } from "./process-control.ts";
import { readStatus, type ComponentStatus } from "./status-file.ts";

export const DEFAULT_NODES = 2;

export interface UpOptions {
  readonly cluster: string;
  readonly stateDir: string;
  /** Default: what the cluster already has, else 2. */
  readonly nodes?: number;
  /** `-f` paths (files or directories). */
  readonly sources: readonly string[];
  readonly log: Logger;
  readonly say: (line: string) => void;
  /** Bound on waiting for components, then for pods (each). */
  readonly timeoutMs: number;
  readonly logLevel?: string;
}

export type ClusterUpResult =
  | { readonly ok: true; readonly plan: ClusterPlan; readonly topology: Topology }
  | {
      readonly ok: false;
      /** 1: failed while starting; 2: refused (bad input, bad flags). */
      readonly exitCode: 1 | 2;
      readonly problems: readonly string[];
    };

function refused(problems: readonly string[]): ClusterUpResult {
  return { ok: false, exitCode: 2, problems };
}

/** The last lines of a log file, for error messages. */
export function logTail(path: string, lines = 6): string[] {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines);
  } catch {
    return [];
  }
}

export async function clusterUp(o: UpOptions): Promise<ClusterUpResult> {
  const layout = clusterLayout(o.cluster, o.stateDir);
  const existing = readClusterFile(layout.clusterFile);
  if (existing !== undefined && existing.cluster !== o.cluster) {
    return refused([
      `${o.stateDir} holds cluster "${existing.cluster}", not "${o.cluster}"; use one state directory per cluster`,
    ]);
  }
  const count = o.nodes ?? existing?.nodes.length ?? DEFAULT_NODES;
  if (existing !== undefined && existing.nodes.length !== count) {
    return refused([
      `cluster "${o.cluster}" runs with ${existing.nodes.length} nodes; 'ambient down --cluster ${o.cluster}' first to change the number of nodes`,
    ]);
  }
  const nodes = existing?.nodes ?? nodeNames(count);
  const pathProblems = socketPathProblems(layout, nodes);
  if (pathProblems.length > 0) return refused(pathProblems);

  // Validate everything before touching anything.
  const inputs = readManifestInputs(o.sources);
  if (!inputs.ok) return refused(inputs.reason);
  if (inputs.value.length > 0) {
    const check = await applyToConfigDir(layout.configDir, inputs.value, { dryRun: true });
    if (!check.ok) return refused(check.reason);
  }

  const unlock = takeLock(layout.lockFile, `cluster "${o.cluster}"`);
  try {
    writeClusterFile(layout.clusterFile, {
      version: 1,
      cluster: o.cluster,
      nodes,
      createdAt: existing?.createdAt ?? new Date().toISOString(),
      ...(o.logLevel !== undefined
        ? { logLevel: o.logLevel }
        : existing?.logLevel !== undefined
          ? { logLevel: existing.logLevel }
          : {}),
    });
    linkRegistry(layout);
    mkdirSync(layout.configDir, { recursive: true });
    if (inputs.value.length > 0) {
      const applied = await applyToConfigDir(layout.configDir, inputs.value);
      if (!applied.ok) return refused(applied.reason);
      const changed = applied.value.filter((a) => a.action !== "unchanged");
      o.say(
        `config: ${applied.value.length} objects in ${layout.configDir} (${changed.length} created or changed)`,
      );
      for (const a of changed) o.log.debug("applied", { object: describeApplied(a) });
    }

    // The pods the network already has must be passed on, or networkUp would remove them.
    const spec = await currentSpec(o.stateDir);
    const net = await networkUp(
      { ...spec, cluster: o.cluster, nodes: nodes.map((name) => ({ name })) },
      { stateDir: o.stateDir, log: o.log },
    );
    o.say(
      net.applied.length === 0
        ? `network: ${nodes.length} nodes, already in place`
        : `network: ${nodes.length} nodes (${net.applied.length} changes)`,
    );
    const plan = planCluster({
      cluster: o.cluster,
      stateDir: o.stateDir,
      topology: net.topology,
      ...(o.logLevel !== undefined ? { logLevel: o.logLevel } : {}),
    });

    const supervisorPid = ensureSupervisor(layout, o.say);
    const components = await waitForComponents(plan, supervisorPid, o);
    if (!components.ok) return components;
    const pods = await waitForPods(layout, o);
    if (!pods.ok) return pods;
    return { ok: true, plan, topology: net.topology };
  } finally {
    unlock();
  }
}

/** `/run/ambient/<c>` → S, so other commands find the cluster by name. */
function linkRegistry(layout: ClusterLayout): void {
  mkdirSync(dirname(layout.registryLink), { recursive: true });
  try {
    if (readlinkSync(layout.registryLink) === layout.stateDir) return;
  } catch {
    // absent
  }
  rmSync(layout.registryLink, { force: true });
  symlinkSync(layout.stateDir, layout.registryLink);
}

/** The running supervisor's pid (asked to start what waits now), or a new one's. */
function ensureSupervisor(layout: ClusterLayout, say: (l: string) => void): number {
  const live = livePid(layout.supervisorPidFile);
  if (live !== undefined) {
    process.kill(live.pid, "SIGUSR1");
    say(`supervisor: running (pid ${live.pid})`);
    return live.pid;
  }
  mkdirSync(layout.logsDir, { recursive: true });
  const out = openSync(layout.supervisorLog, "a", 0o640);
  let pid: number | undefined;
  try {
    const child = spawn(process.execPath, [CLI_MAIN, "supervise", "--state-dir", layout.stateDir], {
      cwd: REPO_ROOT,
      detached: true,
      stdio: ["ignore", out, out],
    });
    child.unref();
    pid = child.pid;
  } finally {
    closeSync(out);
  }
  if (pid === undefined) {
    throw new AmbientError(
      "LOCAL_SUPERVISOR",
      `cannot start the supervisor; see ${layout.supervisorLog}`,
    );
  }
  say(`supervisor: started (pid ${pid}, log ${layout.supervisorLog})`);
  return pid;
}

/** Crashes of one component while `up` waits that mean it will not come up by itself. */
const CRASH_LOOP = 3;

async function waitForComponents(
  plan: ClusterPlan,
  supervisorPid: number,
  o: UpOptions,
): Promise<ClusterUpResult | { ok: true }> {
  const layout = plan.layout;
  const end = Date.now() + o.timeoutMs;
  const announced = new Set<string>();
  const baseline = new Map<string, number>();
  let last: readonly ComponentStatus[] = [];
  for (;;) {
    const status = readStatus(layout.statusFile);
    const fresh = status !== undefined && status.supervisorPid === supervisorPid;
    if (fresh) {
      last = status.components;
      for (const c of last) {
        if (!baseline.has(c.name)) baseline.set(c.name, c.restarts);
        if (c.phase === "ready" && !announced.has(c.name)) {
          announced.add(c.name);
          o.say(`  ready  ${c.name.padEnd(22)} pid ${c.pid}`);
        }
        if (c.restarts - (baseline.get(c.name) ?? 0) >= CRASH_LOOP) {
          return failed(
            `${c.name} keeps exiting (${c.restarts} restarts; last: ${c.detail})`,
            c.log,
          );
        }
      }
      if (last.length === plan.components.length && last.every((c) => c.phase === "ready")) {
        return { ok: true };
      }
    }
    if (!isRunning(supervisorPid)) {
      return failed(`the supervisor (pid ${supervisorPid}) exited`, layout.supervisorLog);
    }
    if (Date.now() > end) {
      if (!fresh) {
        return failed(
          `the supervisor (pid ${supervisorPid}) reported nothing`,
          layout.supervisorLog,
        );
      }
      const waiting = last.filter((c) => c.phase !== "ready");
      return {
        ok: false,
        exitCode: 1,
        problems: waiting.flatMap((c) => [
          `${c.name} is not ready after ${o.timeoutMs / 1000} s (${c.phase}: ${c.detail}); log: ${c.log}`,
          ...logTail(c.log, 4).map((l) => `    ${l}`),
        ]),
      };
    }
    await sleep(250);
  }
}

function failed(what: string, log: string): ClusterUpResult {
  return {
    ok: false,
    exitCode: 1,
    problems: [`${what}; log: ${log}`, ...logTail(log).map((l) => `    ${l}`)],
  };
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface DeploymentView {
  metadata: { name: string; namespace: string; generation?: number };
  spec: { replicas?: number };
  status?: { readyReplicas?: number; replicas?: number; observedGeneration?: number };
}

/** Why a pod is not ready, for messages. */
export function podProblem(p: Pod): string {
  const waiting = p.status?.containerStatuses?.find((c) => c.state?.waiting !== undefined);
  const w = waiting?.state?.waiting;
  if (w !== undefined) return `${w.reason ?? "waiting"}${w.message ? `: ${w.message}` : ""}`;
  const cond = p.status?.conditions?.find((c) => c.status !== "True");
  return [
    p.status?.phase ?? "Pending",
    p.status?.reason ?? cond?.reason,
    p.status?.message ?? cond?.message,
  ]
    .filter(Boolean)
    .join(": ");
}

async function waitForPods(
  layout: ClusterLayout,
  o: UpOptions,
): Promise<ClusterUpResult | { ok: true }> {
  const api = new ApiClient(layout.apiSocket);
  const end = Date.now() + o.timeoutMs;
  let notReady: Pod[] = [];
  let lagging: string[] = [];
  let shown = -1;
  for (;;) {
    try {
      const [pods, deployments] = await Promise.all([
        api.pods(),
        api.list<DeploymentView>("/apis/apps/v1/deployments"),
      ]);
      notReady = pods.filter((p) => !podReady(p));
      lagging = deployments
        .filter((d) => {
          const want = d.spec.replicas ?? 1;
          return (
            (d.status?.readyReplicas ?? 0) < want ||
            (d.status?.replicas ?? 0) !== want ||
            (d.status?.observedGeneration ?? 0) < (d.metadata.generation ?? 0)
          );
        })
        .map((d) => `${d.metadata.namespace}/${d.metadata.name}`);
      const ready = pods.length - notReady.length;
      if (ready !== shown && pods.length > 0) {
        shown = ready;
        o.say(`  pods   ${ready}/${pods.length} ready`);
      }
      if (notReady.length === 0 && lagging.length === 0) return { ok: true };
    } catch (err) {
      o.log.debug("API not answering", { error: (err as Error).message });
    }
    if (Date.now() > end) {
      return {
        ok: false,
        exitCode: 1,
        problems: [
          `not everything is ready after ${o.timeoutMs / 1000} s:`,
          ...lagging.map((d) => `  Deployment ${d}: not all replicas ready`),
          ...notReady.map(
            (p) =>
              `  pod ${p.metadata.namespace}/${p.metadata.name} on ${p.spec.nodeName ?? "(unscheduled)"}: ${podProblem(p)}; logs: ambient logs ${p.metadata.namespace}/${p.metadata.name}`,
          ),
        ],
      };
    }
    await sleep(500);
  }
}
