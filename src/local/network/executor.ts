/**
 * Carrying out a network plan with `ip` (batched per namespace and phase), and tearing it down.
 *
 * `networkUp` is idempotent: it observes the namespaces, runs only what is missing, and removes
 * what the topology no longer has. Before creating anything it records every namespace it may
 * create in the state directory, so `networkDown` can remove all of it after a crash; `down` also
 * scans for the cluster's `amb-<cluster>-` prefix in case the state file itself was lost.
 */
import { AmbientError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log/index.ts";
import { run, runChecked, type RunOptions } from "../../lib/exec.ts";
import { allocate } from "./ipam.ts";
import { prefixOf } from "./names.ts";
import {
  PHASES,
  ipCommand,
  pendingOps,
  type Observation,
  type ObservedLink,
  type ObservedNetns,
  type ObservedRoute,
} from "./pending.ts";
import { netnsPath, planTopology, type NetOp, type NetnsRole, type Topology } from "./plan.ts";
import type { TopologySpec } from "./spec.ts";
import {
  lock,
  readState,
  removeState,
  removeStateDirIfEmpty,
  writeState,
  type NetworkState,
} from "./state.ts";

export interface NetworkOptions {
  /** Where the allocation and the list of created namespaces are kept (one per cluster). */
  readonly stateDir: string;
  /** Per-command time limit. */
  readonly timeoutMs?: number;
  readonly log?: Logger;
  /** Called before each phase that has work, e.g. to report progress. */
  readonly onPhase?: (phase: string, ops: readonly NetOp[]) => void | Promise<void>;
}

export interface UpResult {
  readonly topology: Topology;
  /** What was actually done; empty when everything was already in place. */
  readonly applied: readonly NetOp[];
}

export interface DownOptions {
  readonly stateDir: string;
  readonly timeoutMs?: number;
  readonly log?: Logger;
  /** Delete namespaces even when processes still run in them (they keep an unnamed namespace). */
  readonly force?: boolean;
}

export interface DownResult {
  /** Namespaces deleted, in order. */
  readonly deleted: readonly string[];
  /** Why the state file could not be used, if it could not (the prefix scan was used instead). */
  readonly stateProblem?: string;
}

function runOpts(timeoutMs: number | undefined, netns?: string): RunOptions {
  return {
    errorCode: "NETWORK_COMMAND_FAILED",
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(netns !== undefined ? { netns: netnsPath(netns) } : {}),
  };
}

/** Names of all network namespaces (`ip netns list`). */
export async function listNetns(timeoutMs?: number): Promise<string[]> {
  const text = (await runChecked("ip", ["-j", "netns", "list"], runOpts(timeoutMs))).trim();
  if (text === "") return [];
  return (JSON.parse(text) as { name: string }[]).map((n) => n.name);
}

interface LinkJson {
  ifindex: number;
  ifname: string;
  link_index?: number;
  master?: string;
  flags?: string[];
  linkinfo?: { info_kind?: string };
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

interface RouteJson {
  dst: string;
  gateway?: string;
  dev?: string;
  prefsrc?: string;
  flags?: string[];
}

async function observeNetns(
  netns: string,
  sysctlKeys: readonly string[],
  timeoutMs: number | undefined,
): Promise<ObservedNetns> {
  const inNs = runOpts(timeoutMs, netns);
  const [linksText, routesText, sysctlText] = await Promise.all([
    runChecked("ip", ["-n", netns, "-j", "-d", "address", "show"], runOpts(timeoutMs)),
    runChecked("ip", ["-n", netns, "-j", "-4", "route", "show"], runOpts(timeoutMs)),
    sysctlKeys.length === 0
      ? Promise.resolve("")
      : runChecked("sysctl", ["-n", ...sysctlKeys], inNs),
  ]);
  const links = new Map<string, ObservedLink>();
  for (const l of JSON.parse(linksText.trim() || "[]") as LinkJson[]) {
    links.set(l.ifname, {
      ifindex: l.ifindex,
      ...(l.linkinfo?.info_kind !== undefined ? { kind: l.linkinfo.info_kind } : {}),
      ...(l.master !== undefined ? { master: l.master } : {}),
      up: l.flags?.includes("UP") ?? false,
      ...(l.link_index !== undefined ? { peerIfindex: l.link_index } : {}),
      addrs: (l.addr_info ?? [])
        .filter((a) => a.family === "inet" && a.local !== undefined)
        .map((a) => `${a.local}/${a.prefixlen}`),
    });
  }
  const routes: ObservedRoute[] = (JSON.parse(routesText.trim() || "[]") as RouteJson[]).map(
    (r) => ({
      dst: r.dst === "default" || r.dst.includes("/") ? r.dst : `${r.dst}/32`,
      ...(r.dev !== undefined ? { dev: r.dev } : {}),
      ...(r.gateway !== undefined ? { via: r.gateway } : {}),
      ...(r.prefsrc !== undefined ? { src: r.prefsrc } : {}),
      onlink: r.flags?.includes("onlink") ?? false,
    }),
  );
  const values = sysctlText.split("\n").map((v) => v.trim());
  const sysctls = new Map(sysctlKeys.map((k, i) => [k, values[i] ?? ""]));
  return { links, routes, sysctls };
}

/** Observes the namespaces the plan names (at most 8 at a time). */
export async function observe(
  ops: readonly NetOp[],
  timeoutMs: number | undefined,
): Promise<Observation> {
  const existing = new Set(await listNetns(timeoutMs));
  const wanted = [...new Set(ops.map((o) => o.netns))].filter((n) => existing.has(n));
  const result = new Map<string, ObservedNetns>();
  for (let i = 0; i < wanted.length; i += 8) {
    await Promise.all(
      wanted.slice(i, i + 8).map(async (netns) => {
        const keys = ops.flatMap((o) => (o.kind === "sysctl" && o.netns === netns ? [o.key] : []));
        result.set(netns, await observeNetns(netns, keys, timeoutMs));
      }),
    );
  }
  return { netns: result };
}

/** Runs one `ip -batch`; on failure names the namespace and the line that failed. */
async function ipBatch(netns: string | undefined, lines: readonly string[], timeoutMs?: number) {
  const args = netns === undefined ? ["-batch", "-"] : ["-n", netns, "-batch", "-"];
  const r = await run("ip", args, { ...runOpts(timeoutMs), input: lines.join("\n") + "\n" });
  if (r.code !== 0) {
    const lineNo = Number(/Command failed -:(\d+)/.exec(r.stderr)?.[1]);
    const failed = Number.isInteger(lineNo) ? lines[lineNo - 1] : undefined;
    const where = netns === undefined ? "" : ` in netns ${netns}`;
    throw new AmbientError(
      "NETWORK_COMMAND_FAILED",
      `"ip ${failed ?? args.join(" ")}"${where} failed: ${r.stderr.trim() || "(no output)"}`,
    );
  }
}

/** Runs operations phase by phase, batched per namespace. */
export async function execute(ops: readonly NetOp[], opts: NetworkOptions): Promise<void> {
  for (const phase of PHASES) {
    const batch = ops.filter((o) => phase.includes(o.kind));
    if (batch.length === 0) continue;
    await opts.onPhase?.(phase.join("+"), batch);
    opts.log?.debug("network phase", { phase: phase.join("+"), ops: batch.length });
    if (phase.includes("netns") || phase.includes("netns-delete")) {
      await ipBatch(
        undefined,
        batch.map((o) => ipCommand(o)!),
        opts.timeoutMs,
      );
      continue;
    }
    const byNetns = new Map<string, NetOp[]>();
    for (const op of batch) {
      if (!byNetns.has(op.netns)) byNetns.set(op.netns, []);
      byNetns.get(op.netns)!.push(op);
    }
    for (const [netns, nsOps] of byNetns) {
      if (phase.includes("sysctl")) {
        const assignments = nsOps.flatMap((o) =>
          o.kind === "sysctl" ? [`${o.key}=${o.value}`] : [],
        );
        await runChecked("sysctl", ["-q", "-w", ...assignments], runOpts(opts.timeoutMs, netns));
      } else {
        await ipBatch(
          netns,
          nsOps.map((o) => ipCommand(o)!),
          opts.timeoutMs,
        );
      }
    }
  }
}

async function busyNamespaces(names: readonly string[], timeoutMs?: number) {
  const busy: string[] = [];
  for (const netns of names) {
    const pids = (await runChecked("ip", ["netns", "pids", netns], runOpts(timeoutMs))).trim();
    if (pids !== "") busy.push(`${netns} (pids ${pids.split(/\s+/).join(", ")})`);
  }
  return busy;
}

function requireCluster(cluster: string): void {
  if (!/^[a-z0-9]{1,12}$/.test(cluster)) {
    throw new AmbientError(
      "NETWORK_INVALID_TOPOLOGY",
      `cluster name "${cluster}" must be 1-12 lowercase letters or digits (no dashes)`,
    );
  }
}

/**
 * Brings the local network to `spec`: creates what is missing, removes pods and nodes that are
 * gone, and leaves everything else untouched. Safe to run again at any time.
 */
export async function networkUp(spec: TopologySpec, opts: NetworkOptions): Promise<UpResult> {
  requireCluster(spec.cluster);
  const unlock = await lock(opts.stateDir);
  try {
    const { state, problem } = await readState(opts.stateDir);
    if (problem !== undefined) {
      throw new AmbientError(
        "NETWORK_STATE_UNREADABLE",
        `${problem}; run "down" for cluster ${spec.cluster} (it also finds namespaces by name) and try again`,
      );
    }
    if (state && state.cluster !== spec.cluster) {
      throw new AmbientError(
        "NETWORK_STATE_MISMATCH",
        `${opts.stateDir} holds cluster "${state.cluster}", not "${spec.cluster}"; use one state directory per cluster`,
      );
    }
    const allocation = allocate(spec, state?.ipam);
    if (!allocation.ok) {
      throw new AmbientError(
        "NETWORK_INVALID_TOPOLOGY",
        `invalid local topology: ${allocation.reason.join("; ")}`,
      );
    }
    const plan = planTopology(spec, allocation.value);
    const wanted = new Set(plan.topology.namespaces.map((n) => n.netns));
    const existing = new Set(await listNetns(opts.timeoutMs));
    const stale = (state?.namespaces ?? []).filter(
      (n) => !wanted.has(n.netns) && existing.has(n.netns),
    );
    const busy = await busyNamespaces(
      stale.map((n) => n.netns),
      opts.timeoutMs,
    );
    if (busy.length > 0) {
      throw new AmbientError(
        "NETWORK_NAMESPACE_BUSY",
        `cannot remove namespaces no longer in the topology while processes run in them: ${busy.join("; ")}; stop those processes first`,
      );
    }

    // Write-ahead: every namespace that may exist after this run, before creating any.
    const known: { netns: string; role: NetnsRole }[] = [...(state?.namespaces ?? [])];
    for (const n of plan.topology.namespaces) {
      if (!known.some((k) => k.netns === n.netns)) known.push(n);
    }
    await writeState(opts.stateDir, {
      version: 1,
      cluster: spec.cluster,
      ...(state?.spec ? { spec: state.spec } : {}),
      ipam: allocation.value,
      namespaces: known,
    });

    // Deleting a namespace takes its interfaces and their veth peers with it.
    const deletions: NetOp[] = [...stale]
      .reverse()
      .map((n) => ({ kind: "netns-delete", netns: n.netns }));
    const obs = await observe(plan.ops, opts.timeoutMs);
    const todo = [...deletions, ...pendingOps(plan.ops, obs, [allocation.value.cidrs.pods])];
    await execute(todo, opts);

    const final: NetworkState = {
      version: 1,
      cluster: spec.cluster,
      spec,
      ipam: allocation.value,
      namespaces: plan.topology.namespaces,
    };
    await writeState(opts.stateDir, final);
    opts.log?.info("local network up", {
      cluster: spec.cluster,
      nodes: plan.topology.nodes.length,
      pods: plan.topology.pods.length,
      changes: todo.length,
    });
    return { topology: plan.topology, applied: todo };
  } finally {
    await unlock();
  }
}

/** The topology last brought up from `stateDir`, or undefined if there is none. */
export async function loadTopology(stateDir: string): Promise<Topology | undefined> {
  const { state } = await readState(stateDir);
  if (!state?.spec || !state.ipam) return undefined;
  return planTopology(state.spec, state.ipam).topology;
}

const roleOrder: Record<NetnsRole, number> = { pod: 0, node: 1, "control-plane": 2, network: 3 };

/**
 * Removes every namespace of `cluster` — those in the state file and any other named
 * `amb-<cluster>-...` — and then the state. Works after a crash, with a damaged or missing
 * state file, and when nothing is left (then it does nothing).
 */
export async function networkDown(cluster: string, opts: DownOptions): Promise<DownResult> {
  requireCluster(cluster);
  const unlock = await lock(opts.stateDir);
  try {
    const { state, problem } = await readState(opts.stateDir);
    if (state && state.cluster !== cluster) {
      throw new AmbientError(
        "NETWORK_STATE_MISMATCH",
        `${opts.stateDir} holds cluster "${state.cluster}", not "${cluster}"`,
      );
    }
    const existing = await listNetns(opts.timeoutMs);
    const prefix = prefixOf(cluster);
    const roles = new Map((state?.namespaces ?? []).map((n) => [n.netns, n.role]));
    // Unknown (scanned) ones first: they can only be pods or nodes of a lost run.
    const targets = existing
      .filter((n) => roles.has(n) || n.startsWith(prefix))
      .sort(
        (a, b) => (roleOrder[roles.get(a) ?? "pod"] ?? 0) - (roleOrder[roles.get(b) ?? "pod"] ?? 0),
      );
    if (!opts.force) {
      const busy = await busyNamespaces(targets, opts.timeoutMs);
      if (busy.length > 0) {
        throw new AmbientError(
          "NETWORK_NAMESPACE_BUSY",
          `processes still run in: ${busy.join("; ")}; stop them first (or tear down with force)`,
        );
      }
    }
    if (targets.length > 0) {
      await execute(
        targets.map((netns) => ({ kind: "netns-delete", netns })),
        {
          stateDir: opts.stateDir,
          ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
        },
      );
    }
    const left = (await listNetns(opts.timeoutMs)).filter((n) => targets.includes(n));
    if (left.length > 0) {
      throw new AmbientError(
        "NETWORK_COMMAND_FAILED",
        `namespaces still present after delete: ${left.join(", ")}`,
      );
    }
    await removeState(opts.stateDir);
    opts.log?.info("local network down", { cluster, deleted: targets.length });
    return { deleted: targets, ...(problem !== undefined ? { stateProblem: problem } : {}) };
  } finally {
    await unlock();
    await removeStateDirIfEmpty(opts.stateDir);
  }
}
