/**
 * A pod's status as the kubelet reports it, computed from what it knows (pure): phase, podIP(s),
 * hostIP(s), startTime, the PodScheduled/Initialized/ContainersReady/Ready conditions (keeping
 * each condition's lastTransitionTime while its status holds), and one containerStatus per
 * container with state, lastState, ready, started and restartCount.
 */
import { isObject, str, type Json } from "../../lib/kube-api/index.ts";

export interface Termination {
  readonly exitCode: number;
  readonly reason: string;
  readonly signal?: number;
  readonly startedAt: string;
  readonly finishedAt: string;
}

export interface ContainerView {
  readonly name: string;
  readonly state: "waiting" | "running" | "terminated";
  /** For waiting: ContainerCreating, CrashLoopBackOff, CreateContainerConfigError, ... */
  readonly reason?: string;
  readonly message?: string;
  readonly startedAt?: string;
  readonly ready: boolean;
  readonly restartCount: number;
  /** The current termination (state terminated). */
  readonly terminated?: Termination;
  /** The previous run's end. */
  readonly last?: Termination;
  readonly pid?: number;
}

export interface PodView {
  readonly podIP?: string;
  readonly hostIP: string;
  readonly startTime: string;
  readonly restartPolicy: "Always" | "OnFailure" | "Never";
  /** False until the network and the CNI hook are done (reason says what is wrong). */
  readonly sandboxReady: boolean;
  readonly sandboxMessage?: string;
  readonly containers: readonly ContainerView[];
  /** Whether a terminated container will run again. */
  readonly willRestart: (c: ContainerView) => boolean;
}

function termJson(t: Termination): Json {
  return {
    exitCode: t.exitCode,
    reason: t.reason,
    ...(t.signal !== undefined ? { signal: t.signal } : {}),
    startedAt: t.startedAt,
    finishedAt: t.finishedAt,
  };
}

export function phaseOf(v: PodView): "Pending" | "Running" | "Succeeded" | "Failed" {
  if (!v.sandboxReady) return "Pending";
  const cs = v.containers;
  if (cs.length === 0) return "Pending";
  const done = cs.every((c) => c.state === "terminated" && !v.willRestart(c));
  if (done) return cs.every((c) => c.terminated?.exitCode === 0) ? "Succeeded" : "Failed";
  const started = cs.every(
    (c) => c.state !== "waiting" || c.last !== undefined || c.restartCount > 0,
  );
  return started ? "Running" : "Pending";
}

export function podStatus(v: PodView, previous: Json | undefined, now: string): Json {
  const phase = phaseOf(v);
  const containersReady =
    v.sandboxReady && v.containers.length > 0 && v.containers.every((c) => c.ready);
  const prevConds =
    previous && Array.isArray(previous["conditions"]) ? (previous["conditions"] as unknown[]) : [];
  const cond = (type: string, ok: boolean, reason?: string, message?: string): Json => {
    const status = ok ? "True" : "False";
    const prev = prevConds.find((c): c is Json => isObject(c) && c["type"] === type);
    const since =
      prev !== undefined && prev["status"] === status
        ? str(prev["lastTransitionTime"]) || now
        : now;
    return {
      type,
      status,
      lastProbeTime: null,
      lastTransitionTime: since,
      ...(!ok && reason !== undefined ? { reason } : {}),
      ...(!ok && message !== undefined ? { message } : {}),
    };
  };
  const notReady = v.containers.filter((c) => !c.ready).map((c) => c.name);
  const why =
    notReady.length > 0
      ? `containers with unready status: [${notReady.join(" ")}]`
      : v.sandboxMessage;
  const conditions = [
    cond("PodReadyToStartContainers", v.sandboxReady, "SandboxNotReady", v.sandboxMessage),
    cond("Initialized", true),
    cond("Ready", containersReady && phase === "Running", "ContainersNotReady", why),
    cond("ContainersReady", containersReady, "ContainersNotReady", why),
    cond("PodScheduled", true),
  ];
  const containerStatuses = v.containers.map((c) => {
    let state: Json;
    if (c.state === "running") state = { running: { startedAt: c.startedAt } };
    else if (c.state === "terminated" && c.terminated)
      state = { terminated: termJson(c.terminated) };
    else
      state = {
        waiting: {
          reason: c.reason ?? "ContainerCreating",
          ...(c.message ? { message: c.message } : {}),
        },
      };
    return {
      name: c.name,
      state,
      lastState: c.last ? { terminated: termJson(c.last) } : {},
      ready: c.ready,
      restartCount: c.restartCount,
      image: "",
      imageID: "",
      ...(c.pid !== undefined && c.state === "running"
        ? { containerID: `process://${c.pid}` }
        : {}),
      started: c.state === "running",
    };
  });
  return {
    phase,
    conditions,
    hostIP: v.hostIP,
    hostIPs: [{ ip: v.hostIP }],
    ...(v.podIP !== undefined ? { podIP: v.podIP, podIPs: [{ ip: v.podIP }] } : {}),
    startTime: v.startTime,
    containerStatuses,
    qosClass: "BestEffort",
  };
}
