/**
 * One pod's network, added or removed on its own (the kubelet's path): the same plan as
 * `networkUp` restricted to that pod's namespace and veth, run against an observation of just
 * the pod's and its node's namespaces, so adding a pod costs a handful of `ip` commands whatever
 * the cluster's size and never touches another pod. The topology must have been brought up with
 * `networkUp` (nodes and control plane); the pod list in the state file is kept current, so a
 * later `networkUp` with that list (see `currentSpec`) keeps every pod.
 *
 * Several kubelets (processes) share the state file: each call takes the state lock, waiting
 * for another holder, and calls from one process run one at a time.
 */
import { AmbientError, errnoCode } from "../../lib/errors.ts";
import { allocate } from "./ipam.ts";
import { podNetns as podNetnsName } from "./names.ts";
import { execute, listNetns, observe, type NetworkOptions } from "./executor.ts";
import { pendingOps } from "./pending.ts";
import { planTopology, type NetOp, type PodNetwork } from "./plan.ts";
import { podKey, type PodSpec, type TopologySpec } from "./spec.ts";
import { lock, readState, writeState, type NetworkState } from "./state.ts";

const queues = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier call for the same state directory in this process. */
function serial<T>(stateDir: string, fn: () => Promise<T>): Promise<T> {
  const prev = queues.get(stateDir) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  queues.set(
    stateDir,
    next.catch(() => {}),
  );
  return next;
}

/** Takes the state lock, waiting (up to `timeoutMs`) while another process holds it. */
async function lockWaiting(stateDir: string, timeoutMs: number): Promise<() => Promise<void>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await lock(stateDir);
    } catch (err) {
      if (!(err instanceof AmbientError) || err.code !== "NETWORK_LOCKED" || Date.now() > end)
        throw err;
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 20));
    }
  }
}

async function upState(stateDir: string): Promise<NetworkState & { spec: TopologySpec }> {
  const { state, problem } = await readState(stateDir);
  if (problem !== undefined) throw new AmbientError("NETWORK_STATE_UNREADABLE", problem);
  if (!state?.spec || !state.ipam) {
    throw new AmbientError(
      "NETWORK_NOT_UP",
      `no local network in ${stateDir}; bring the nodes up (networkUp) before adding pods`,
    );
  }
  return state as NetworkState & { spec: TopologySpec };
}

/** The spec last brought up, with every pod added since: what a later `networkUp` should get. */
export async function currentSpec(stateDir: string): Promise<TopologySpec | undefined> {
  const { state } = await readState(stateDir);
  return state?.spec;
}

/** The ops of the plan that build `pod`: its namespace, its veth and addresses, both routes. */
function podOps(ops: readonly NetOp[], pod: PodNetwork, nodeNetns: string): NetOp[] {
  return ops.filter((op) => {
    if (op.netns === pod.netns) return true;
    if (op.netns !== nodeNetns) return false;
    return "dev" in op && op.dev === pod.hostInterface;
  });
}

/**
 * Creates (or repairs) one pod's namespace and veth on its node and returns its network; the
 * pod keeps its address across calls. Idempotent; a pod that moved node is re-plumbed.
 */
export function podNetworkUp(
  cluster: string,
  pod: PodSpec,
  opts: NetworkOptions & { readonly lockTimeoutMs?: number },
): Promise<PodNetwork> {
  return serial(opts.stateDir, async () => {
    const unlock = await lockWaiting(opts.stateDir, opts.lockTimeoutMs ?? 30_000);
    try {
      const state = await upState(opts.stateDir);
      if (state.cluster !== cluster) {
        throw new AmbientError(
          "NETWORK_STATE_MISMATCH",
          `${opts.stateDir} holds cluster "${state.cluster}", not "${cluster}"`,
        );
      }
      const key = podKey(pod);
      const spec: TopologySpec = {
        ...state.spec,
        pods: [
          ...(state.spec.pods ?? []).filter((p) => podKey(p) !== key),
          { namespace: pod.namespace, name: pod.name, node: pod.node },
        ],
      };
      const allocation = allocate(spec, state.ipam);
      if (!allocation.ok) {
        throw new AmbientError(
          "NETWORK_INVALID_TOPOLOGY",
          `cannot add pod ${key}: ${allocation.reason.join("; ")}`,
        );
      }
      const plan = planTopology(spec, allocation.value);
      const net = plan.topology.pods.find(
        (p) => p.namespace === pod.namespace && p.name === pod.name,
      )!;
      const node = plan.topology.nodes.find((n) => n.name === pod.node)!;
      const namespaces = [...state.namespaces];
      if (!namespaces.some((n) => n.netns === net.netns))
        namespaces.push({ netns: net.netns, role: "pod" });
      // Write-ahead, so a crash from here on leaves the namespace known to `networkDown`.
      await writeState(opts.stateDir, { ...state, spec, ipam: allocation.value, namespaces });
      const ops = podOps(plan.ops, net, node.netns);
      const obs = await observe(ops, opts.timeoutMs);
      const todo = pendingOps(ops, obs, [allocation.value.cidrs.pods]);
      await execute(todo, opts);
      opts.log?.debug("pod network up", { pod: key, ip: net.ip, changes: todo.length });
      return net;
    } finally {
      await unlock();
    }
  });
}

/** Deletes one pod's namespace (its veth goes with it) and releases its address. */
export function podNetworkDown(
  cluster: string,
  pod: { readonly namespace: string; readonly name: string },
  opts: NetworkOptions & { readonly lockTimeoutMs?: number },
): Promise<void> {
  return serial(opts.stateDir, async () => {
    const unlock = await lockWaiting(opts.stateDir, opts.lockTimeoutMs ?? 30_000);
    try {
      const state = await upState(opts.stateDir);
      const key = podKey(pod);
      const spec: TopologySpec = {
        ...state.spec,
        pods: (state.spec.pods ?? []).filter((p) => podKey(p) !== key),
      };
      const allocation = allocate(spec, state.ipam);
      if (!allocation.ok) {
        throw new AmbientError(
          "NETWORK_INVALID_TOPOLOGY",
          `cannot remove pod ${key}: ${allocation.reason.join("; ")}`,
        );
      }
      const netns =
        state.namespaces.find(
          (n) => n.role === "pod" && n.netns === podNetnsName(cluster, pod.namespace, pod.name),
        )?.netns ?? podNetnsName(cluster, pod.namespace, pod.name);
      if ((await listNetns(opts.timeoutMs)).includes(netns)) {
        await execute([{ kind: "netns-delete", netns }], opts);
      }
      await writeState(opts.stateDir, {
        ...state,
        spec,
        ipam: allocation.value,
        namespaces: state.namespaces.filter((n) => n.netns !== netns),
      });
      opts.log?.debug("pod network down", { pod: key });
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return;
      throw err;
    } finally {
      await unlock();
    }
  });
}
