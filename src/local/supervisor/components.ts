/**
 * What runs for a local cluster, as a pure plan: each component's namespace, command line,
 * environment, log and pid file, what it needs before it may start, how to tell it is ready,
 * and how to stop it. The supervisor carries the plan out; `down` walks it backwards.
 *
 *   amb-<c>-cp:      apiserver (API, controllers, cluster DNS) → control-plane (xDS + CA)
 *   amb-<c>-<node>:  node-agent → ztunnel → kubelet (its CNI hook calls the node agent)
 */
import { API_PORT } from "../node-runtime.ts";
import type { Topology } from "../network/index.ts";
import {
  clusterLayout,
  componentLog,
  componentName,
  nodeLayout,
  pidFile,
  type ClusterLayout,
  type ComponentKind,
} from "./layout.ts";

/** Ports the components listen on inside their namespaces (Istio's where Istio has one). */
export const PORTS = Object.freeze({
  api: API_PORT,
  dns: 53,
  xds: 15012,
  controlPlaneHttp: 15014,
  ztunnelAdmin: 15000,
  ztunnelMetrics: 15020,
  ztunnelReadiness: 15021,
  nodeAgentMetrics: 15014,
  nodeAgentReadiness: 8000,
});

/** The name ztunnel's certificate check accepts for the control plane (one of its SANs). */
export const CONTROL_PLANE_HOSTNAME = "istiod.istio-system.svc";

export type ReadinessProbe =
  /** HTTP 200 from a unix socket (the API server's). */
  | { readonly type: "unix-http"; readonly socket: string; readonly path: string }
  /** HTTP 200 from inside a network namespace; `files` must exist too. */
  | {
      readonly type: "netns-http";
      readonly netns: string;
      readonly host: string;
      readonly port: number;
      readonly path: string;
      readonly files?: readonly string[];
    }
  /** The kubelet has reported its Node Ready since it started. */
  | { readonly type: "node-ready"; readonly node: string };

export interface Dependency {
  readonly name: string;
  /** "ready": the dependency passed its readiness probe; "running": it has been started. */
  readonly need: "ready" | "running";
}

export interface ComponentSpec {
  readonly name: string;
  readonly kind: ComponentKind;
  readonly node?: string;
  readonly netns: string;
  readonly netnsPath: string;
  /** Arguments after `ambient`. */
  readonly args: readonly string[];
  /** Variables on top of the minimal environment (PATH, HOME). */
  readonly env: Readonly<Record<string, string>>;
  readonly logFile: string;
  readonly pidFile: string;
  readonly after: readonly Dependency[];
  readonly readiness: ReadinessProbe;
  /** How long a SIGTERM may take before SIGKILL. */
  readonly stopTimeoutMs: number;
  /** What to show users: where it listens. */
  readonly endpoints: readonly string[];
}

export interface ClusterPlan {
  readonly layout: ClusterLayout;
  /** In start order; stop order is `stopOrder(plan)`. */
  readonly components: readonly ComponentSpec[];
}

export interface PlanOptions {
  readonly cluster: string;
  readonly stateDir: string;
  readonly topology: Pick<Topology, "controlPlane" | "nodes">;
  readonly logLevel?: string;
}

export function planCluster(o: PlanOptions): ClusterPlan {
  const layout = clusterLayout(o.cluster, o.stateDir);
  const cp = o.topology.controlPlane;
  const cpIp = cp.address;
  const nodes = o.topology.nodes;
  const level = o.logLevel ?? "info";
  const common = (kind: ComponentKind, node?: string) => {
    const name = componentName(kind, node);
    return { name, kind, logFile: componentLog(layout, name), pidFile: pidFile(layout, name) };
  };
  const components: ComponentSpec[] = [];
  components.push({
    ...common("apiserver"),
    netns: cp.netns,
    netnsPath: cp.netnsPath,
    args: [
      "apiserver",
      "--state-dir",
      layout.stateDir,
      "--config-dir",
      layout.configDir,
      "--log-level",
      level,
    ],
    env: {},
    after: [],
    readiness: { type: "unix-http", socket: layout.apiSocket, path: "/readyz" },
    stopTimeoutMs: 15_000,
    endpoints: [
      `API http://${cpIp}:${PORTS.api} (host: ${layout.apiSocket})`,
      `cluster DNS ${cpIp}:${PORTS.dns}`,
    ],
  });
  components.push({
    ...common("control-plane"),
    netns: cp.netns,
    netnsPath: cp.netnsPath,
    args: [
      "control-plane",
      "--kubeconfig",
      layout.kubeconfig,
      // Node tokens we sign (the files ztunnel reads), not TokenReview: ztunnel runs as a
      // process here, with no service account token of its own.
      "--authentication",
      "local",
      "--state-dir",
      layout.controlPlaneDir,
      "--credentials-dir",
      layout.credentialsDir,
      ...nodes.flatMap((n) => ["--node", n.name]),
      "--log-level",
      level,
    ],
    env: {},
    after: [{ name: "apiserver", need: "ready" }],
    readiness: {
      type: "netns-http",
      netns: cp.netnsPath,
      host: cpIp,
      port: PORTS.controlPlaneHttp,
      path: "/ready",
      files: [layout.rootCert, ...nodes.map((n) => nodeLayout(layout, n.name).token)],
    },
    stopTimeoutMs: 10_000,
    endpoints: [
      `xDS + CA https://${cpIp}:${PORTS.xds}`,
      `metrics/debug http://${cpIp}:${PORTS.controlPlaneHttp}`,
    ],
  });
  for (const n of nodes) {
    const nl = nodeLayout(layout, n.name);
    const agent = componentName("node-agent", n.name);
    const ztunnel = componentName("ztunnel", n.name);
    components.push({
      ...common("node-agent", n.name),
      netns: n.netns,
      netnsPath: n.netnsPath,
      args: [
        "node-agent",
        `--node-name=${n.name}`,
        `--kubeconfig=${layout.kubeconfig}`,
        `--ztunnel-socket=${nl.zdsSocket}`,
        `--run-dir=${nl.cniRunDir}`,
        `--plugin-socket=${nl.pluginSocket}`,
        `--monitoring-port=${PORTS.nodeAgentMetrics}`,
        `--readiness-port=${PORTS.nodeAgentReadiness}`,
        `--log-level=${level}`,
      ],
      env: {},
      after: [{ name: "apiserver", need: "ready" }],
      readiness: {
        type: "netns-http",
        netns: n.netnsPath,
        host: "127.0.0.1",
        port: PORTS.nodeAgentReadiness,
        path: "/readyz",
      },
      stopTimeoutMs: 10_000,
      endpoints: [
        `ZDS ${nl.zdsSocket}`,
        `plugin events ${nl.pluginSocket}`,
        `metrics http://${n.address}:${PORTS.nodeAgentMetrics}/metrics`,
      ],
    });
    components.push({
      ...common("ztunnel", n.name),
      netns: n.netns,
      netnsPath: n.netnsPath,
      args: ["ztunnel"],
      // Istio's variables, as the ztunnel DaemonSet sets them.
      env: {
        XDS_ADDRESS: `https://${cpIp}:${PORTS.xds}`,
        ALT_XDS_HOSTNAME: CONTROL_PLANE_HOSTNAME,
        ALT_CA_HOSTNAME: CONTROL_PLANE_HOSTNAME,
        XDS_ROOT_CA: layout.rootCert,
        CA_ROOT_CA: layout.rootCert,
        AUTH_TOKEN: nl.token,
        NODE_NAME: n.name,
        POD_NAME: `ztunnel-${n.name}`,
        POD_NAMESPACE: "istio-system",
        SERVICE_ACCOUNT: "ztunnel",
        INSTANCE_IP: n.address,
        INPOD_UDS: nl.zdsSocket,
        RUST_LOG: level,
      },
      after: [
        { name: "control-plane", need: "ready" },
        { name: agent, need: "running" },
      ],
      readiness: {
        type: "netns-http",
        netns: n.netnsPath,
        host: "127.0.0.1",
        port: PORTS.ztunnelReadiness,
        path: "/healthz/ready",
      },
      stopTimeoutMs: 15_000,
      endpoints: [
        `admin http://127.0.0.1:${PORTS.ztunnelAdmin} (/config_dump)`,
        `metrics http://${n.address}:${PORTS.ztunnelMetrics}/metrics`,
        `readiness http://${n.address}:${PORTS.ztunnelReadiness}/healthz/ready`,
      ],
    });
    components.push({
      ...common("kubelet", n.name),
      netns: n.netns,
      netnsPath: n.netnsPath,
      args: [
        "kubelet",
        "--state-dir",
        layout.stateDir,
        "--node",
        n.name,
        "--cni-socket",
        nl.pluginSocket,
        "--log-level",
        level,
      ],
      env: {},
      // Pods wait for the node agent (their CNI add is retried until it answers), and start
      // enrolled from the first packet; ztunnel only has to be on its way.
      after: [
        { name: "apiserver", need: "ready" },
        { name: agent, need: "ready" },
        { name: ztunnel, need: "running" },
      ],
      readiness: { type: "node-ready", node: n.name },
      // Pods get their terminationGracePeriodSeconds (at most 30 s) to stop.
      stopTimeoutMs: 45_000,
      endpoints: [],
    });
  }
  return { layout, components };
}

/**
 * Stop order: kubelets first (their pods stop, their CNI del reaches the still-running node
 * agents), then ztunnels, node agents, the control plane, the API server.
 */
export function stopOrder(plan: ClusterPlan): ComponentSpec[] {
  const rank: Record<ComponentKind, number> = {
    kubelet: 0,
    ztunnel: 1,
    "node-agent": 2,
    "control-plane": 3,
    apiserver: 4,
  };
  return [...plan.components].sort((a, b) => rank[a.kind] - rank[b.kind]);
}

/** The full command line: entered into the namespace with nsenter (never `ip netns exec`). */
export function commandLine(
  c: ComponentSpec,
  node: string,
  main: string,
): { file: string; args: string[] } {
  return { file: "nsenter", args: [`--net=${c.netnsPath}`, "--", node, main, ...c.args] };
}
