/**
 * Compositions of the local cluster's pieces, as the `ambient apiserver` and `ambient kubelet`
 * processes run them (and as a supervisor may run them in its own process):
 *
 *   control plane namespace:  API server + controller manager + cluster DNS   (startControlPlaneServices)
 *   each node namespace:      kubelet + kube-proxy                             (startNodeServices)
 *
 * Everything is derived from one cluster state directory: the network state (`network.json`,
 * from `networkUp`) gives the cluster name, the control plane's address, the service range and
 * each node's address; the API server keeps its objects under `apiserver/`, kubelets theirs under
 * `kubelet/<node>/`, container logs go to `logs/`, and the API server writes `kubeconfig`.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { AmbientError } from "../lib/errors.ts";
import type { Json } from "../lib/kube-api/index.ts";
import type { Logger } from "../lib/log/index.ts";
import {
  LocalApiServer,
  apiServerStateDir,
  kubeconfigYaml,
  parseTokenFile,
} from "./apiserver/index.ts";
import { ControllerManager } from "./controllers/index.ts";
import { DnsServer, type DnsSource } from "./dns/index.ts";
import { Kubelet, noopCni, pluginEventHook, type CniHook } from "./kubelet/index.ts";
import { loadTopology, type Topology } from "./network/index.ts";
import { Proxier } from "./proxy/index.ts";
import type { ObjectStore } from "../lib/kube-api/index.ts";

/** The repository root (containers run there) and its Node 24 directory. */
export const REPO_ROOT = resolve(import.meta.dirname, "..", "..");
export const NODE_BIN_DIR = join(REPO_ROOT, "node_modules", ".bin");
export const API_PORT = 6443;
export const DNS_PORT = 53;

export function kubeconfigPath(stateDir: string): string {
  return join(stateDir, "kubeconfig");
}

export async function clusterTopology(stateDir: string): Promise<Topology> {
  const t = await loadTopology(stateDir);
  if (t === undefined) {
    throw new AmbientError(
      "LOCAL_NO_NETWORK",
      `no local network in ${stateDir}; bring the cluster's namespaces up (networkUp) first`,
    );
  }
  return t;
}

/** Cluster DNS fed straight from the API server's store (same process). */
export function storeDnsSource(store: ObjectStore): DnsSource {
  const svc = store.resources.forKind("", "Service")!;
  const pod = store.resources.forKind("", "Pod")!;
  return {
    services: () => store.list(svc),
    pods: () => store.list(pod),
    subscribe: (fn) =>
      store.subscribe((ev) => {
        if (ev.resource === svc || ev.resource === pod) fn();
      }),
  };
}

export interface ControlPlaneServicesOptions {
  readonly stateDir: string;
  readonly configDir: string;
  readonly log: Logger;
  /** Defaults: the control plane's address from the network state, ports 6443 and 53. */
  readonly host?: string;
  readonly port?: number;
  /** `false` turns cluster DNS off. */
  readonly dnsPort?: number | false;
  readonly tokenFile?: string;
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  readonly controllers?: boolean;
  /** Unix socket for tools outside the cluster's namespaces (default `<stateDir>/apiserver.sock`). */
  readonly socketPath?: string;
}

export interface ControlPlaneServices {
  readonly apiServer: LocalApiServer;
  readonly controllers: ControllerManager | undefined;
  readonly dns: DnsServer | undefined;
  readonly kubeconfig: string;
  close(): Promise<void>;
}

export async function startControlPlaneServices(
  o: ControlPlaneServicesOptions,
): Promise<ControlPlaneServices> {
  const topo = await clusterTopology(o.stateDir);
  const host = o.host ?? topo.controlPlane.address;
  const apiServer = await LocalApiServer.start({
    configDir: o.configDir,
    stateDir: apiServerStateDir(o.stateDir),
    host,
    port: o.port ?? API_PORT,
    socketPath: o.socketPath ?? join(o.stateDir, "apiserver.sock"),
    serviceCidr: topo.cidrs.services,
    log: o.log.child("apiserver"),
    ...(o.tokenFile !== undefined ? { tokenFile: o.tokenFile } : {}),
    ...(o.tls !== undefined ? { tls: o.tls } : {}),
  });
  let controllers: ControllerManager | undefined;
  let dns: DnsServer | undefined;
  try {
    registerTopologyNodes(apiServer, topo);
    if (o.controllers !== false) {
      controllers = new ControllerManager({
        registry: apiServer.registry,
        log: o.log.child("controllers"),
      });
      controllers.start();
    }
    if (o.dnsPort !== false) {
      dns = new DnsServer({
        host,
        port: o.dnsPort ?? DNS_PORT,
        source: storeDnsSource(apiServer.store),
        log: o.log.child("dns"),
      });
      await dns.start();
    }
  } catch (err) {
    controllers?.close();
    await apiServer.close();
    throw err;
  }
  const token =
    o.tokenFile !== undefined
      ? (() => {
          const p = parseTokenFile(readFileSync(o.tokenFile, "utf8"), o.tokenFile);
          return p.ok ? p.value[0]?.token : undefined;
        })()
      : undefined;
  const kubeconfig = kubeconfigPath(o.stateDir);
  const caPem = o.tls !== undefined ? readFileSync(o.tls.certFile, "utf8") : undefined;
  // Atomically: kubelets started alongside wait for this file and read it as soon as it exists.
  writeFileSync(
    `${kubeconfig}.tmp`,
    kubeconfigYaml({
      server: `${o.tls ? "https" : "http"}://${host}:${apiServer.port}`,
      cluster: topo.cluster,
      ...(token !== undefined ? { token } : {}),
      ...(caPem !== undefined ? { caPem } : {}),
    }),
    { mode: 0o600 },
  );
  renameSync(`${kubeconfig}.tmp`, kubeconfig);
  return {
    apiServer,
    controllers,
    dns,
    kubeconfig,
    async close() {
      controllers?.close();
      await dns?.close();
      await apiServer.close();
    },
  };
}

/**
 * Creates the Node object of every node in the topology that has none yet, Ready "Unknown"
 * until its kubelet reports: the scheduler then spreads pods over all nodes from the start
 * instead of piling them onto the first kubelet to come up.
 */
export function registerTopologyNodes(apiServer: LocalApiServer, topo: Topology): void {
  const res = apiServer.store.resources.forKind("", "Node")!;
  for (const n of topo.nodes) {
    if (apiServer.store.get(res, "", n.name) !== undefined) continue;
    apiServer.registry.create({ user: "system:apiserver" }, res, undefined, {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name: n.name,
        labels: { "kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux" },
      },
      spec: { podCIDR: n.podCidr, podCIDRs: [n.podCidr] },
      status: {
        addresses: [
          { type: "InternalIP", address: n.address },
          { type: "Hostname", address: n.name },
        ],
        conditions: [
          {
            type: "Ready",
            status: "Unknown",
            reason: "NodeStatusNeverUpdated",
            message: "Kubelet never posted node status.",
          },
        ],
      },
    });
  }
}

export interface NodeServicesOptions {
  readonly stateDir: string;
  readonly node: string;
  readonly log: Logger;
  /** Default `<stateDir>/kubeconfig`. */
  readonly kubeconfig?: string;
  /** The node agent's plugin-event socket; without it the CNI hook does nothing. */
  readonly cniSocket?: string;
  /** Overrides the CNI hook entirely (library use). */
  readonly cni?: CniHook;
  readonly proxy?: boolean;
  readonly clusterDomain?: string;
  readonly skipNetnsCheck?: boolean;
  /** How long to wait for the kubeconfig file to appear (default 60 s). */
  readonly kubeconfigWaitMs?: number;
}

export interface NodeServices {
  readonly kubelet: Kubelet;
  readonly proxier: Proxier | undefined;
  /** "stop-pods": stop every pod, remove kube-proxy rules; "leave-pods": leave both for the next run. */
  close(mode: "stop-pods" | "leave-pods"): Promise<void>;
}

export async function startNodeServices(o: NodeServicesOptions): Promise<NodeServices> {
  const topo = await clusterTopology(o.stateDir);
  const kc = new KubeConfig();
  // Started together with the API server, the kubelet waits for it to write the kubeconfig.
  const file = o.kubeconfig ?? kubeconfigPath(o.stateDir);
  for (let waited = 0; !existsSync(file); waited += 200) {
    if (waited >= (o.kubeconfigWaitMs ?? 60_000)) {
      throw new AmbientError(
        "LOCAL_NO_KUBECONFIG",
        `${file} did not appear; is the API server running?`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  kc.loadFromFile(file);
  const proxy = o.proxy !== false;
  const kubelet = new Kubelet({
    cluster: topo.cluster,
    node: o.node,
    kubeConfig: kc,
    networkStateDir: o.stateDir,
    kubeletDir: join(o.stateDir, "kubelet", o.node),
    logsDir: join(o.stateDir, "logs"),
    clusterDns: topo.controlPlane.address,
    ...(o.clusterDomain !== undefined ? { clusterDomain: o.clusterDomain } : {}),
    cwd: REPO_ROOT,
    nodeBinDir: NODE_BIN_DIR,
    cni: o.cni ?? (o.cniSocket !== undefined ? pluginEventHook(o.cniSocket) : noopCni),
    log: o.log.child("kubelet"),
    ...(proxy ? { extraKinds: ["Service", "EndpointSlice"] as const } : {}),
    ...(o.skipNetnsCheck !== undefined ? { skipNetnsCheck: o.skipNetnsCheck } : {}),
  });
  await kubelet.start();
  let proxier: Proxier | undefined;
  if (proxy) {
    proxier = new Proxier({ store: kubelet.store, log: o.log.child("kube-proxy") });
    try {
      await proxier.start();
    } catch (err) {
      await kubelet.close("leave-pods");
      throw err;
    }
  }
  return {
    kubelet,
    proxier,
    async close(mode) {
      await proxier?.close(mode === "stop-pods");
      await kubelet.close(mode);
    },
  };
}

export type { Json };
