/**
 * What a cluster runs and where, for `up`'s summary and `ambient status`: gathered from the
 * supervisor's status file, the pid files, the network state and the API server (pure
 * formatting in format.ts).
 */
import type { Topology } from "../network/index.ts";
import { ApiClient, podMesh, podReady, type Pod, type Service } from "./api.ts";
import type { ClusterPlan } from "./components.ts";
import type { ClusterLayout } from "./layout.ts";
import { livePid } from "./pid-file.ts";
import { readStatus, type ComponentStatus } from "./status-file.ts";

export interface ComponentRow {
  readonly name: string;
  readonly pid: number | undefined;
  readonly state: string;
  readonly restarts: number;
  readonly endpoints: readonly string[];
  readonly log: string;
  readonly detail: string;
}

export interface NodeRow {
  readonly name: string;
  readonly address: string;
  readonly podCidr: string;
  readonly ready: string;
}

export interface PodRow {
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
  readonly ip: string;
  readonly ready: string;
  readonly status: string;
  readonly restarts: number;
  readonly mesh: string;
}

export interface ServiceRow {
  readonly namespace: string;
  readonly name: string;
  readonly vip: string;
  readonly ports: string;
}

export interface ClusterView {
  readonly cluster: string;
  readonly stateDir: string;
  readonly configDir: string;
  readonly supervisor: { readonly pid: number | undefined; readonly log: string };
  readonly components: readonly ComponentRow[];
  readonly nodes: readonly NodeRow[];
  readonly pods: readonly PodRow[];
  readonly services: readonly ServiceRow[];
  /** Set when the API server could not be asked. */
  readonly apiProblem?: string;
}

export function podRow(p: Pod): PodRow {
  const statuses = p.status?.containerStatuses ?? [];
  const readyCount = statuses.filter((c) => c.ready).length;
  return {
    namespace: p.metadata.namespace ?? "",
    name: p.metadata.name,
    node: p.spec.nodeName ?? "-",
    ip: p.status?.podIP ?? "-",
    ready: `${readyCount}/${p.spec.containers.length}`,
    status: p.metadata.deletionTimestamp
      ? "Terminating"
      : podReady(p)
        ? "Running"
        : (statuses.find((c) => c.state?.waiting)?.state?.waiting?.reason ??
          p.status?.phase ??
          "Pending"),
    restarts: statuses.reduce((n, c) => n + c.restartCount, 0),
    mesh: podMesh(p),
  };
}

export function serviceRow(s: Service): ServiceRow {
  return {
    namespace: s.metadata.namespace ?? "",
    name: s.metadata.name,
    vip: s.spec.clusterIP ?? "-",
    ports: (s.spec.ports ?? [])
      .map(
        (p) =>
          `${p.port}${p.targetPort !== undefined && p.targetPort !== p.port ? `→${p.targetPort}` : ""}/${p.protocol ?? "TCP"}${p.name ? ` (${p.name})` : ""}`,
      )
      .join(", "),
  };
}

function componentRow(
  spec: ClusterPlan["components"][number],
  status: ComponentStatus | undefined,
  supervised: boolean,
): ComponentRow {
  const live = livePid(spec.pidFile);
  let state: string;
  if (live === undefined) state = status?.phase === "backoff" ? "backoff" : "down";
  else if (!supervised) state = "running (no supervisor)";
  else state = status?.pid === live.pid ? status.phase : "running";
  return {
    name: spec.name,
    pid: live?.pid,
    state,
    restarts: status?.restarts ?? 0,
    endpoints: spec.endpoints,
    log: spec.logFile,
    detail: status?.detail ?? "",
  };
}

export async function gatherView(
  layout: ClusterLayout,
  plan: ClusterPlan,
  topology: Topology,
): Promise<ClusterView> {
  const sup = livePid(layout.supervisorPidFile);
  const status = readStatus(layout.statusFile);
  const supervised = sup !== undefined && status?.supervisorPid === sup.pid;
  const byName = new Map((supervised ? status.components : []).map((c) => [c.name, c]));
  const components = plan.components.map((c) => componentRow(c, byName.get(c.name), supervised));
  const api = new ApiClient(layout.apiSocket);
  let nodes: NodeRow[] = topology.nodes.map((n) => ({
    name: n.name,
    address: n.address,
    podCidr: n.podCidr,
    ready: "?",
  }));
  let pods: PodRow[] = [];
  let services: ServiceRow[] = [];
  let apiProblem: string | undefined;
  try {
    const [apiNodes, apiPods, apiServices] = await Promise.all([
      api.nodes(),
      api.pods(),
      api.services(),
    ]);
    nodes = nodes.map((n) => {
      const cond = apiNodes
        .find((a) => a.metadata.name === n.name)
        ?.status?.conditions?.find((c) => c.type === "Ready");
      return { ...n, ready: cond?.status ?? "?" };
    });
    const key = (a: { namespace: string; name: string }) => `${a.namespace}/${a.name}`;
    pods = apiPods.map(podRow).sort((a, b) => key(a).localeCompare(key(b)));
    services = apiServices.map(serviceRow).sort((a, b) => key(a).localeCompare(key(b)));
  } catch (err) {
    apiProblem = `the API server does not answer on ${layout.apiSocket}: ${(err as Error).message}`;
  }
  return {
    cluster: layout.cluster,
    stateDir: layout.stateDir,
    configDir: layout.configDir,
    supervisor: { pid: sup?.pid, log: layout.supervisorLog },
    components,
    nodes,
    pods,
    services,
    ...(apiProblem !== undefined ? { apiProblem } : {}),
  };
}
