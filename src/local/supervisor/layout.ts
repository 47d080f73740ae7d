/**
 * Where a local cluster keeps everything: one state directory `S` per cluster (default
 * `/var/lib/ambient/<cluster>`), holding the config directory `C` of manifests, the network and
 * API server state, each component's pid file and log, and each node's sockets. Several nodes
 * share one machine, so nothing uses the components' default `/var/run/...` paths.
 *
 *   S/cluster.json                      what `up` was asked for (cluster, nodes)
 *   S/config/                           C: the manifests (`ambient apply` writes here)
 *   S/network.json, network.lock        the network (network/)
 *   S/kubeconfig, apiserver.sock, apiserver/   the API server
 *   S/control-plane/                    CA, token signing key, root-cert.pem,
 *   S/control-plane/credentials/<node>.token   each node's ztunnel token
 *   S/kubelet/<node>/                   kubelet records
 *   S/nodes/<node>/ztunnel.sock         ZDS (node agent listens, ztunnel connects)
 *   S/nodes/<node>/cni/                 node agent run dir: pluginevent.sock, ambient-pods.json
 *   S/run/<component>.pid               pid files (pid + start time), supervisor.pid
 *   S/run/status.json                   the supervisor's view of the components
 *   S/run/lock                          held by `up`/`down` while they change the cluster
 *   S/logs/<component>.log              component logs (appended across restarts)
 *   S/logs/<ns>_<pod>_<uid>/<container>/<n>.log   container logs (kubelet)
 *
 * `/run/ambient/<cluster>` is a symlink to S, so commands find a cluster started with
 * `--state-dir` by its name alone.
 */
import { join } from "node:path";

export const DEFAULT_CLUSTER = "ambient";
export const STATE_ROOT = "/var/lib/ambient";
export const REGISTRY_DIR = "/run/ambient";
/** A unix socket path must fit `sun_path` (108 bytes with the terminating NUL). */
export const SOCKET_PATH_MAX = 107;

/** The component kinds, in start order. */
export type ComponentKind = "apiserver" | "control-plane" | "node-agent" | "ztunnel" | "kubelet";

export interface ClusterLayout {
  readonly cluster: string;
  readonly stateDir: string;
  readonly clusterFile: string;
  readonly configDir: string;
  readonly kubeconfig: string;
  readonly apiSocket: string;
  readonly controlPlaneDir: string;
  readonly credentialsDir: string;
  readonly rootCert: string;
  readonly runDir: string;
  readonly statusFile: string;
  readonly lockFile: string;
  readonly supervisorPidFile: string;
  readonly logsDir: string;
  readonly supervisorLog: string;
  readonly registryLink: string;
}

export interface NodeLayout {
  readonly dir: string;
  readonly zdsSocket: string;
  readonly cniRunDir: string;
  readonly pluginSocket: string;
  readonly token: string;
}

export function defaultStateDir(cluster: string): string {
  return join(STATE_ROOT, cluster);
}

export function registryLink(cluster: string): string {
  return join(REGISTRY_DIR, cluster);
}

export function clusterLayout(cluster: string, stateDir: string): ClusterLayout {
  const controlPlaneDir = join(stateDir, "control-plane");
  const runDir = join(stateDir, "run");
  const logsDir = join(stateDir, "logs");
  return {
    cluster,
    stateDir,
    clusterFile: join(stateDir, "cluster.json"),
    configDir: join(stateDir, "config"),
    kubeconfig: join(stateDir, "kubeconfig"),
    apiSocket: join(stateDir, "apiserver.sock"),
    controlPlaneDir,
    credentialsDir: join(controlPlaneDir, "credentials"),
    rootCert: join(controlPlaneDir, "root-cert.pem"),
    runDir,
    statusFile: join(runDir, "status.json"),
    lockFile: join(runDir, "lock"),
    supervisorPidFile: join(runDir, "supervisor.pid"),
    logsDir,
    supervisorLog: join(logsDir, "supervisor.log"),
    registryLink: registryLink(cluster),
  };
}

export function nodeLayout(layout: ClusterLayout, node: string): NodeLayout {
  const dir = join(layout.stateDir, "nodes", node);
  const cniRunDir = join(dir, "cni");
  return {
    dir,
    zdsSocket: join(dir, "ztunnel.sock"),
    cniRunDir,
    pluginSocket: join(cniRunDir, "pluginevent.sock"),
    token: join(layout.credentialsDir, `${node}.token`),
  };
}

/** A component's name: `apiserver`, `control-plane`, or `<kind>/<node>`. */
export function componentName(kind: ComponentKind, node?: string): string {
  return node === undefined ? kind : `${kind}/${node}`;
}

/** `ztunnel/node1` → `ztunnel-node1` (file names). */
export function componentFileStem(name: string): string {
  return name.replace(/\//g, "-");
}

export function pidFile(layout: ClusterLayout, name: string): string {
  return join(layout.runDir, `${componentFileStem(name)}.pid`);
}

export function componentLog(layout: ClusterLayout, name: string): string {
  return join(layout.logsDir, `${componentFileStem(name)}.log`);
}

/** Node names a cluster of `count` nodes gets. */
export function nodeNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `node${i + 1}`);
}

/** Every socket path of the layout that must fit `sun_path`; the ones too long. */
export function socketPathProblems(layout: ClusterLayout, nodes: readonly string[]): string[] {
  const paths = [layout.apiSocket];
  for (const n of nodes) {
    const l = nodeLayout(layout, n);
    paths.push(l.zdsSocket, l.pluginSocket);
  }
  return paths
    .filter((p) => Buffer.byteLength(p) > SOCKET_PATH_MAX)
    .map(
      (p) => `socket path ${p} is longer than ${SOCKET_PATH_MAX} bytes; use a shorter --state-dir`,
    );
}
