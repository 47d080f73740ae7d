/** The cluster view as text (pure): components, nodes, pods, services, and commands to try. */
import type { ClusterView, PodRow, ServiceRow } from "./view.ts";

/** Left-aligned columns, two spaces apart. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** `--cluster NAME` for commands to copy, unless it is the default. */
function clusterFlag(cluster: string, defaultCluster: string): string {
  return cluster === defaultCluster ? "" : ` --cluster ${cluster}`;
}

/**
 * Commands worth trying: from a `client` pod to each Service of its namespace (bookinfo's
 * product page when it is there), the metrics and config of the first node's ztunnel.
 */
export function tryCommands(v: ClusterView, defaultCluster: string): string[] {
  const c = clusterFlag(v.cluster, defaultCluster);
  const out: string[] = [];
  const clients = new Set(
    v.pods.filter((p) => /^client(-|$)/.test(p.name)).map((p) => p.namespace),
  );
  for (const ns of [...clients].sort()) {
    const svcs = v.services.filter((s) => s.namespace === ns && s.name !== "client");
    const pick: ServiceRow[] = svcs.filter((s) => s.name === "productpage");
    for (const s of pick.length > 0 ? pick : svcs.slice(0, 2)) {
      const port = /^(\d+)/.exec(s.ports)?.[1];
      if (port === undefined) continue;
      const path = s.name === "productpage" ? "/productpage" : "/";
      out.push(`ambient exec${c} ${ns}/client -- curl -s http://${s.name}:${port}${path}`);
    }
  }
  const node = v.nodes[0]?.name;
  if (node !== undefined) {
    out.push(
      `ambient ztunnel-metrics${c} ${node} | grep istio_tcp_connections_opened_total`,
      `ambient config-dump${c} ${node}`,
    );
  }
  const app = v.pods.find((p) => !/^client(-|$)/.test(p.name));
  if (app !== undefined) out.push(`ambient logs${c} ${app.namespace}/${app.name}`);
  out.push(`ambient status${c}`, `ambient down${c}`);
  return out;
}

function podCells(p: PodRow): string[] {
  return [p.namespace, p.name, p.node, p.ip, p.ready, p.status, String(p.restarts), p.mesh];
}

export function formatView(v: ClusterView): string[] {
  const out: string[] = [];
  out.push(
    `cluster "${v.cluster}"  state ${v.stateDir}  config ${v.configDir}`,
    v.supervisor.pid !== undefined
      ? `supervisor pid ${v.supervisor.pid}  log ${v.supervisor.log}`
      : `supervisor NOT RUNNING (crashed components are not restarted; 'ambient up' starts it)`,
    "",
    "COMPONENTS",
    ...table(
      ["NAME", "PID", "STATE", "RESTARTS", "ENDPOINTS"],
      v.components.map((c) => [
        c.name,
        c.pid === undefined ? "-" : String(c.pid),
        c.state,
        String(c.restarts),
        c.endpoints.join("; "),
      ]),
    ),
    `  logs: ${v.components[0] !== undefined ? v.components[0].log.replace(/[^/]+$/, "") : ""}<component>.log`,
    "",
    "NODES",
    ...table(
      ["NAME", "ADDRESS", "POD CIDR", "READY"],
      v.nodes.map((n) => [n.name, n.address, n.podCidr, n.ready]),
    ),
  );
  const notReady = v.components.filter((c) => c.state !== "ready" && c.detail !== "");
  for (const c of notReady) out.push(`  ${c.name}: ${c.detail}`);
  if (v.apiProblem !== undefined) {
    out.push("", v.apiProblem);
    return out;
  }
  out.push(
    "",
    "PODS",
    ...(v.pods.length === 0
      ? ["  (none)"]
      : table(
          ["NAMESPACE", "NAME", "NODE", "IP", "READY", "STATUS", "RESTARTS", "MESH"],
          v.pods.map(podCells),
        )),
    "",
    "SERVICES",
    ...(v.services.length === 0
      ? ["  (none)"]
      : table(
          ["NAMESPACE", "NAME", "VIP", "PORTS"],
          v.services.map((s) => [s.namespace, s.name, s.vip, s.ports]),
        )),
    "",
    "MESH: 'enabled' = traffic captured by the node's ztunnel (mTLS over HBONE); 'pending' = captured,",
    "      blocked until ztunnel takes the pod; '-' = not in the mesh",
  );
  return out;
}
