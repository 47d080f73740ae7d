/**
 * Finding a cluster from the CLI's flags (`--cluster`, `--state-dir`, else `AMBIENT_CLUSTER`,
 * else "ambient"; the state directory from `/run/ambient/<c>`, else the default), and the pieces
 * later commands need: its plan, its pods, a pod's namespace and logs, a node's ztunnel.
 */
import { existsSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { fail, ok, type Result } from "../../lib/errors.ts";
import { loadTopology, podNetns, type Topology } from "../network/index.ts";
import { ApiClient, podReady, podsOfDeployment, type Pod } from "./api.ts";
import { readClusterFile } from "./cluster-file.ts";
import { PORTS, planCluster, type ClusterPlan } from "./components.ts";
import {
  DEFAULT_CLUSTER,
  clusterLayout,
  defaultStateDir,
  registryLink,
  type ClusterLayout,
} from "./layout.ts";
import { netnsHttp, type HttpAnswer } from "./netns-http.ts";

export interface ClusterRef {
  readonly cluster: string;
  readonly stateDir: string;
}

const CLUSTER_NAME = /^[a-z0-9]{1,12}$/;

export function resolveCluster(flags: {
  cluster?: string | undefined;
  stateDir?: string | undefined;
}): Result<ClusterRef, string> {
  const cluster = flags.cluster ?? process.env["AMBIENT_CLUSTER"] ?? DEFAULT_CLUSTER;
  if (!CLUSTER_NAME.test(cluster)) {
    return fail(`cluster name "${cluster}" must be 1-12 lowercase letters or digits (no dashes)`);
  }
  if (flags.stateDir !== undefined) return ok({ cluster, stateDir: flags.stateDir });
  let stateDir = defaultStateDir(cluster);
  try {
    stateDir = readlinkSync(registryLink(cluster));
  } catch {
    // not registered: the default place
  }
  return ok({ cluster, stateDir });
}

export interface OpenCluster {
  readonly layout: ClusterLayout;
  readonly topology: Topology;
  readonly plan: ClusterPlan;
  readonly api: ApiClient;
}

/** A cluster that `up` created (its network state exists), or why it cannot be used. */
export async function openCluster(ref: ClusterRef): Promise<Result<OpenCluster, string>> {
  const layout = clusterLayout(ref.cluster, ref.stateDir);
  const file = readClusterFile(layout.clusterFile);
  if (file !== undefined && file.cluster !== ref.cluster) {
    return fail(`${ref.stateDir} holds cluster "${file.cluster}", not "${ref.cluster}"`);
  }
  const topology = existsSync(ref.stateDir) ? await loadTopology(ref.stateDir) : undefined;
  if (topology === undefined || file === undefined) {
    return fail(
      `cluster "${ref.cluster}" is not up (nothing in ${ref.stateDir}); start it with 'ambient up${ref.cluster === DEFAULT_CLUSTER ? "" : ` --cluster ${ref.cluster}`}'`,
    );
  }
  const plan = planCluster({
    cluster: ref.cluster,
    stateDir: ref.stateDir,
    topology,
    ...(file.logLevel !== undefined ? { logLevel: file.logLevel } : {}),
  });
  return ok({ layout, topology, plan, api: new ApiClient(layout.apiSocket) });
}

/**
 * `<ns>/<name>`: the pod of that name, else a pod of the Deployment of that name (a ready one
 * first, oldest first). Undefined name part → error.
 */
export async function findPod(api: ApiClient, target: string): Promise<Result<Pod, string>> {
  const slash = target.indexOf("/");
  if (slash <= 0 || slash === target.length - 1) {
    return fail(`"${target}" is not <namespace>/<pod or deployment>`);
  }
  const ns = target.slice(0, slash);
  const name = target.slice(slash + 1);
  let pods: Pod[];
  try {
    pods = await api.pods(ns);
  } catch (err) {
    return fail(`cannot list pods (is the cluster up?): ${(err as Error).message}`);
  }
  const exact = pods.find((p) => p.metadata.name === name);
  if (exact !== undefined) return ok(exact);
  const owned = podsOfDeployment(pods, await api.replicaSets(ns), name).filter(
    (p) => p.metadata.deletionTimestamp === undefined,
  );
  const byAge = (a: Pod, b: Pod) =>
    (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? "");
  const pick = owned.filter(podReady).sort(byAge)[0] ?? owned.sort(byAge)[0];
  if (pick !== undefined) return ok(pick);
  return fail(
    `no pod or Deployment "${name}" in namespace "${ns}"${pods.length > 0 ? ` (pods there: ${pods.map((p) => p.metadata.name).join(", ")})` : ""}`,
  );
}

export function podNetnsName(cluster: string, pod: Pod): string {
  return podNetns(cluster, pod.metadata.namespace ?? "default", pod.metadata.name);
}

/**
 * A container's log file: `S/logs/<ns>_<pod>_<uid>/<container>/<restartCount>.log` (the current
 * run's, or `previous` for the one before).
 */
export function containerLog(
  layout: ClusterLayout,
  pod: Pod,
  container: string,
  previous = false,
): Result<string, string> {
  const dir = join(
    layout.logsDir,
    `${pod.metadata.namespace}_${pod.metadata.name}_${pod.metadata.uid}`,
    container,
  );
  let runs: number[];
  try {
    runs = readdirSync(dir)
      .map((f) => /^(\d+)\.log$/.exec(f)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  } catch {
    return fail(
      `no logs for container "${container}" of ${pod.metadata.namespace}/${pod.metadata.name} yet (${dir})`,
    );
  }
  const pick = previous ? runs[runs.length - 2] : runs[runs.length - 1];
  if (pick === undefined) {
    return fail(
      previous
        ? `container "${container}" has not restarted: there is no previous log`
        : `no logs in ${dir}`,
    );
  }
  return ok(join(dir, `${pick}.log`));
}

/** GET from a node's ztunnel: `metrics` (:15020/metrics) or `admin` (127.0.0.1:15000). */
export async function ztunnelGet(
  open: OpenCluster,
  node: string,
  which: "metrics" | "admin",
  path: string,
): Promise<Result<HttpAnswer, string>> {
  const n = open.topology.nodes.find((x) => x.name === node);
  if (n === undefined) {
    return fail(`no node "${node}"; nodes: ${open.topology.nodes.map((x) => x.name).join(", ")}`);
  }
  try {
    return ok(
      await netnsHttp({
        netns: n.netnsPath,
        host: which === "metrics" ? n.address : "127.0.0.1",
        port: which === "metrics" ? PORTS.ztunnelMetrics : PORTS.ztunnelAdmin,
        path,
        timeoutMs: 5000,
      }),
    );
  } catch (err) {
    return fail(`ztunnel on ${node} does not answer: ${(err as Error).message}`);
  }
}
