/**
 * `ambient down`: stops everything of a cluster and removes every trace — even after a crash of
 * the supervisor, of components, or of `up` itself. Each step works from what is left:
 *
 * 1. the supervisor, if it runs, stops the components in order (kubelets first: their pods stop
 *    and their CNI del reaches the node agents; then ztunnels, node agents, control plane, API
 *    server);
 * 2. components it did not stop (it was killed, or timed out) are stopped from their pid files;
 * 3. any process still inside one of the cluster's namespaces (`amb-<c>-*`, found by name, so a
 *    lost state file does not matter) is killed — pods of a kubelet that crashed, for example;
 * 4. the namespaces go (their veths, bridge, routes and every iptables rule inside them go
 *    with them: nothing we run writes rules in the host's namespace), then `/etc/netns/amb-<c>-*`,
 *    the state directory and the `/run/ambient/<c>` link.
 */
import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { runChecked } from "../../lib/exec.ts";
import type { Logger } from "../../lib/log/index.ts";
import { isAlive } from "../kubelet/index.ts";
import { listNetns, loadTopology, networkDown, prefixOf } from "../network/index.ts";
import { readClusterFile } from "./cluster-file.ts";
import { planCluster, stopOrder } from "./components.ts";
import { clusterLayout, defaultStateDir } from "./layout.ts";
import { livePid, readPidFile } from "./pid-file.ts";
import { stopProcess } from "./process-control.ts";
import { stopComponents } from "./supervisor.ts";

/** Longest a supervisor may take to stop the cluster (kubelets: pods' grace; then the rest). */
const SUPERVISOR_STOP_MS = 120_000;
/** What `down` may remove from a state directory it did not create (no cluster.json). */
const KNOWN_ENTRIES = [
  "cluster.json",
  "config",
  "network.json",
  "network.lock",
  "kubeconfig",
  "apiserver.sock",
  "apiserver",
  "control-plane",
  "kubelet",
  "nodes",
  "run",
  "logs",
];

export interface DownOptions {
  readonly cluster: string;
  readonly stateDir: string;
  readonly log: Logger;
  /** Progress lines for the user. */
  readonly say?: (line: string) => void;
}

export interface DownReport {
  readonly supervisor: "stopped" | "killed" | "not running";
  /** Processes killed in the namespace sweep (pid: netns). */
  readonly swept: readonly string[];
  readonly namespaces: readonly string[];
  readonly removed: readonly string[];
}

export async function clusterDown(o: DownOptions): Promise<DownReport> {
  const say = o.say ?? (() => {});
  const layout = clusterLayout(o.cluster, o.stateDir);
  const file = readClusterFile(layout.clusterFile);

  // 1. The supervisor stops the components in order.
  let supervisor: DownReport["supervisor"] = "not running";
  const sup = livePid(layout.supervisorPidFile);
  if (sup !== undefined) {
    say(`stopping the supervisor (pid ${sup.pid}) and the components it runs`);
    const how = await stopProcess(sup, SUPERVISOR_STOP_MS);
    supervisor = how === "killed" ? "killed" : "stopped";
  }

  // 2. Components left running (the supervisor was gone, or gave up).
  const topology = await loadTopology(o.stateDir).catch(() => undefined);
  if (topology !== undefined) {
    const plan = planCluster({ cluster: o.cluster, stateDir: o.stateDir, topology });
    await stopComponents(stopOrder(plan), o.log, (name, stopping) => {
      if (stopping) say(`stopping ${name}`);
    });
  }
  // Pid files of components the plan does not know (a lost network state).
  if (existsSync(layout.runDir)) {
    for (const f of readdirSync(layout.runDir).filter((n) => n.endsWith(".pid"))) {
      const r = readPidFile(join(layout.runDir, f));
      if (r !== undefined && isAlive(r.pid, r.startTicks)) {
        say(`stopping ${f.slice(0, -4)} (pid ${r.pid})`);
        await stopProcess(r, 15_000);
      }
    }
  }

  // 3. Anything still inside the cluster's namespaces.
  const swept = await sweepNamespaces(o.cluster, say);

  // 4. Namespaces, /etc/netns entries, state.
  const down = await networkDown(o.cluster, { stateDir: o.stateDir, force: true, log: o.log });
  if (down.deleted.length > 0) say(`deleted ${down.deleted.length} network namespaces`);
  const removed: string[] = [];
  const prefix = prefixOf(o.cluster);
  if (existsSync("/etc/netns")) {
    for (const n of readdirSync("/etc/netns").filter((x) => x.startsWith(prefix))) {
      rmSync(join("/etc/netns", n), { recursive: true, force: true });
      removed.push(join("/etc/netns", n));
    }
  }
  removed.push(...removeStateDir(o.cluster, o.stateDir, file?.cluster === o.cluster));
  rmSync(layout.registryLink, { force: true });
  return { supervisor, swept, namespaces: down.deleted, removed };
}

/** Kills every process in a namespace named `amb-<c>-*`: SIGTERM to its group, SIGKILL after 5 s. */
async function sweepNamespaces(cluster: string, say: (l: string) => void): Promise<string[]> {
  const prefix = prefixOf(cluster);
  const found = async () => {
    const out: { pid: number; netns: string }[] = [];
    for (const ns of (await listNetns()).filter((n) => n.startsWith(prefix))) {
      const text = await runChecked("ip", ["netns", "pids", ns]).catch(() => "");
      for (const p of text.split(/\s+/).filter(Boolean)) out.push({ pid: Number(p), netns: ns });
    }
    return out;
  };
  const first = await found();
  if (first.length === 0) return [];
  say(`stopping ${first.length} leftover processes in the cluster's namespaces`);
  const kill = (pid: number, sig: NodeJS.Signals) => {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, sig);
      } catch {
        // gone, or not a group leader
      }
    }
  };
  for (const p of first) kill(p.pid, "SIGTERM");
  for (let i = 0; i < 50 && (await found()).length > 0; i++) await sleep(100);
  for (const p of await found()) kill(p.pid, "SIGKILL");
  for (let i = 0; i < 50 && (await found()).length > 0; i++) await sleep(100);
  return first.map((p) => `${p.pid}: ${p.netns}`);
}

/**
 * Removes the state directory when it is the cluster's own (its cluster.json, or the default
 * path); otherwise only the entries `up` makes, and the directory if that empties it.
 */
function removeStateDir(cluster: string, stateDir: string, ours: boolean): string[] {
  const dir = resolve(stateDir);
  if (!existsSync(dir)) return [];
  if (dir === "/" || dir.split("/").filter(Boolean).length < 2 || !statSync(dir).isDirectory()) {
    return [];
  }
  if (ours || dir === defaultStateDir(cluster)) {
    rmSync(dir, { recursive: true, force: true });
    return [dir];
  }
  const removed: string[] = [];
  for (const e of KNOWN_ENTRIES) {
    const p = join(dir, e);
    if (existsSync(p)) {
      rmSync(p, { recursive: true, force: true });
      removed.push(p);
    }
  }
  if (readdirSync(dir).length === 0) {
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}
