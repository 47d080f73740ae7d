/**
 * The kubelet of one local node. Runs inside the node's network namespace (so probes come from
 * the node, as on Kubernetes). Registers its Node (Ready, InternalIP, podCIDR), reads pods with
 * the ordinary `KubeConfigStore`, and keeps one PodWorker per pod bound to it: pods appear, are
 * marked terminating (stopped, then removed from the API with grace 0), or vanish (a manifest
 * removed: stopped). Restarting the kubelet adopts the running pods (processes recorded with
 * their start time; the CNI hook is not called again) and stops what no longer belongs here,
 * including namespaces of pods it has no record of.
 *
 * `close("stop-pods")` stops every pod and marks the Node NotReady (a clean `ambient down`);
 * `close("leave-pods")` leaves them running for the next kubelet to adopt.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { KubeConfigStore, type ConfigObject } from "../../lib/config/index.ts";
import { KubeClient, resourcePath, str, type Json } from "../../lib/kube-api/index.ts";
import type { Logger } from "../../lib/log/index.ts";
import { AmbientError } from "../../lib/errors.ts";
import {
  currentSpec,
  loadTopology,
  nodeNetns,
  podNetworkDown,
  podNetns,
} from "../network/index.ts";
import type { CniHook } from "./cni.ts";
import { killAllIn, PodWorker, type PodRecord, type WorkerDeps } from "./pod-worker.ts";

export interface KubeletOptions {
  readonly cluster: string;
  readonly node: string;
  readonly kubeConfig: KubeConfig;
  /** The network state directory shared with `networkUp` (the supervisor's). */
  readonly networkStateDir: string;
  /** This kubelet's records (`<dir>/pods/<uid>.json`). */
  readonly kubeletDir: string;
  /** Container log files. */
  readonly logsDir: string;
  /** The cluster DNS server's address (resolv.conf `nameserver`). */
  readonly clusterDns: string;
  readonly clusterDomain?: string;
  /** Containers' working directory: the repository root. */
  readonly cwd: string;
  /** The directory whose `node` is the project's Node 24. */
  readonly nodeBinDir: string;
  readonly cni: CniHook;
  readonly log: Logger;
  /** Also watch these kinds in the shared store (kube-proxy needs Services and EndpointSlices). */
  readonly extraKinds?: readonly ("Service" | "EndpointSlice")[];
  /** Tries to register the Node before giving up (the API server may be starting); default 60. */
  readonly registerAttempts?: number;
  /** Skip the check that this process runs in the node's network namespace (tests). */
  readonly skipNetnsCheck?: boolean;
}

/** The wire form of a config-store pod (what workers read). */
function podJson(p: ConfigObject<"Pod">): Json {
  return p as unknown as Json;
}

export class Kubelet {
  readonly store: KubeConfigStore;
  readonly #opts: KubeletOptions;
  readonly #log: Logger;
  readonly #client: KubeClient;
  readonly #workers = new Map<string, PodWorker>();
  readonly #finishing = new Set<string>();
  #deps: WorkerDeps | undefined;
  #hostIP = "";
  #unsubscribe: (() => void) | undefined;
  #scheduled = false;
  #closed = false;

  constructor(opts: KubeletOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#client = new KubeClient(opts.kubeConfig);
    this.store = new KubeConfigStore({
      kubeConfig: opts.kubeConfig,
      log: opts.log.child("kubelet-store"),
      kinds: ["Pod", ...(opts.extraKinds ?? [])],
    });
  }

  /** The node's address (InternalIP). */
  get hostIP(): string {
    return this.#hostIP;
  }

  async start(): Promise<void> {
    const o = this.#opts;
    const topo = await loadTopology(o.networkStateDir);
    const node = topo?.nodes.find((n) => n.name === o.node);
    if (!topo || !node) {
      throw new AmbientError(
        "KUBELET_NO_NODE",
        `node "${o.node}" is not in the local network of ${o.networkStateDir}; bring the nodes up first`,
      );
    }
    if (!o.skipNetnsCheck) checkNetns(nodeNetns(o.cluster, o.node));
    this.#hostIP = node.address;
    this.#deps = {
      cluster: o.cluster,
      node: o.node,
      hostIP: node.address,
      networkStateDir: o.networkStateDir,
      kubeletDir: o.kubeletDir,
      logsDir: o.logsDir,
      clusterDns: o.clusterDns,
      clusterDomain: o.clusterDomain ?? "cluster.local",
      cwd: o.cwd,
      nodeBinDir: o.nodeBinDir,
      cni: o.cni,
      log: o.log,
      writeStatus: async (namespace, name, status) => {
        const r = await this.store.writeStatus({
          type: "status",
          kind: "Pod",
          namespace,
          name,
          status,
        });
        if (!r.ok) throw new Error(r.reason.message);
      },
    };
    // The API server may still be starting: keep trying (the store retries on its own after).
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#registerNode(node.podCidr, true);
        break;
      } catch (err) {
        if (this.#closed || attempt >= (o.registerAttempts ?? 60)) throw err;
        if (attempt % 5 === 1) {
          this.#log.warn("cannot register the node yet; retrying", {
            error: err instanceof Error ? err.message : String(err),
          });
        }
        await new Promise((r) => setTimeout(r, Math.min(250 * attempt, 2000)));
      }
    }
    await this.store.start();
    await this.#adoptOrClean();
    this.#unsubscribe = this.store.subscribe(() => this.#schedule(), { kinds: ["Pod"] });
    this.#reconcile();
    this.#log.info("kubelet started", {
      node: o.node,
      address: node.address,
      pods: this.#workers.size,
    });
  }

  async #registerNode(podCidr: string, ready: boolean): Promise<void> {
    const o = this.#opts;
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const status = {
      addresses: [
        { type: "InternalIP", address: this.#hostIP },
        { type: "Hostname", address: o.node },
      ],
      conditions: [
        {
          type: "Ready",
          status: ready ? "True" : "False",
          reason: ready ? "KubeletReady" : "KubeletStopped",
          message: ready ? "kubelet is posting ready status" : "kubelet stopped",
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
      ],
      nodeInfo: {
        machineID: readOr("/etc/machine-id", o.node),
        systemUUID: readOr("/etc/machine-id", o.node),
        bootID: readOr("/proc/sys/kernel/random/boot_id", ""),
        kernelVersion: release(),
        osImage: "ambient local runtime",
        containerRuntimeVersion: "process://ambient",
        kubeletVersion: "v1.33.0-ambient",
        kubeProxyVersion: "v1.33.0-ambient",
        operatingSystem: "linux",
        architecture: process.arch === "x64" ? "amd64" : process.arch,
      },
    };
    const path = resourcePath("v1", "nodes");
    if (ready) {
      const created = await this.#client.create(path, {
        apiVersion: "v1",
        kind: "Node",
        metadata: {
          name: o.node,
          labels: { "kubernetes.io/hostname": o.node, "kubernetes.io/os": "linux" },
        },
        spec: { podCIDR: podCidr, podCIDRs: [podCidr] },
        status,
      });
      if (created.ok) return;
      if (created.reason.code !== 409)
        throw new AmbientError(
          "KUBELET_REGISTER",
          `cannot register node ${o.node}: ${created.reason.message}`,
        );
    }
    const r = await this.#client.patch(
      resourcePath("v1", "nodes", { name: o.node, subresource: "status" }),
      { status },
    );
    if (!r.ok) {
      const msg = `cannot update node ${o.node}: ${r.reason.message}`;
      if (ready) throw new AmbientError("KUBELET_REGISTER", msg);
      this.#log.warn(msg);
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#reconcile();
    });
  }

  #mine(): Map<string, Json> {
    const out = new Map<string, Json>();
    for (const p of this.store.list("Pod")) {
      if (p.spec.nodeName === this.#opts.node) out.set(p.metadata.uid, podJson(p));
    }
    return out;
  }

  #reconcile(): void {
    if (this.#closed || this.#deps === undefined) return;
    const desired = this.#mine();
    // Workers whose pod is gone from the API: stop with the pod's own grace period.
    for (const [uid, w] of this.#workers) {
      if (!desired.has(uid) && !w.stopping) {
        const spec = this.#workerGrace(w);
        void this.#stopWorker(uid, w, spec, false);
      }
    }
    for (const [uid, pod] of desired) {
      const m = pod["metadata"] as Json;
      const w = this.#workers.get(uid);
      if (str(m["deletionTimestamp"]) !== "") {
        const grace = Math.max(
          0,
          Math.ceil((Date.parse(str(m["deletionTimestamp"])) - Date.now()) / 1000),
        );
        if (w !== undefined) {
          if (!w.stopping) void this.#stopWorker(uid, w, grace, true);
        } else if (!this.#finishing.has(uid)) {
          // Nothing runs here for it (already stopped): finish the deletion.
          this.#finishing.add(uid);
          void this.#finish(pod).finally(() => this.#finishing.delete(uid));
        }
        continue;
      }
      if (w !== undefined) {
        w.update(pod);
        continue;
      }
      const phase = str((pod["status"] as Json | undefined)?.["phase"]);
      if (phase === "Succeeded" || phase === "Failed") continue;
      // Another incarnation with the same name still stopping: wait for it.
      const sameName = [...this.#workers.values()].some(
        (x) => x.namespace === str(m["namespace"]) && x.name === str(m["name"]),
      );
      if (sameName) continue;
      this.#startWorker(pod, undefined);
    }
  }

  #workerGrace(w: PodWorker): number {
    const p = this.store.get("Pod", w.namespace, w.name);
    const g = p?.spec.terminationGracePeriodSeconds;
    return typeof g === "number" ? g : 30;
  }

  #startWorker(pod: Json, record: PodRecord | undefined): void {
    const w = new PodWorker(this.#deps!, pod, record);
    this.#workers.set(w.uid, w);
    this.#log.info(record ? "adopting pod" : "starting pod", { pod: w.key });
    w.start();
  }

  async #stopWorker(uid: string, w: PodWorker, grace: number, deleteAfter: boolean): Promise<void> {
    this.#log.info("stopping pod", { pod: w.key, graceSeconds: grace });
    await w.stop(grace);
    this.#workers.delete(uid);
    if (deleteAfter) {
      const p = this.store.get("Pod", w.namespace, w.name);
      if (p?.metadata.uid === uid) await this.#finish(podJson(p));
    }
    this.#schedule();
  }

  /** Removes a terminating pod from the API once nothing of it runs here. */
  async #finish(pod: Json): Promise<void> {
    const m = pod["metadata"] as Json;
    const r = await this.#client.delete(
      resourcePath("v1", "pods", { namespace: str(m["namespace"]), name: str(m["name"]) }),
      { gracePeriodSeconds: 0 },
    );
    if (!r.ok && r.reason.code !== 404)
      this.#log.warn("cannot remove terminated pod", {
        pod: `${str(m["namespace"])}/${str(m["name"])}`,
        error: r.reason.message,
      });
  }

  /** After a restart: adopt recorded pods that still belong here, stop the rest. */
  async #adoptOrClean(): Promise<void> {
    const o = this.#opts;
    const desired = this.#mine();
    const dir = join(o.kubeletDir, "pods");
    let files: string[] = [];
    try {
      files = readdirSync(dir).filter((f) => f.endsWith(".json"));
    } catch {
      // first start
    }
    const known = new Set<string>();
    for (const f of files) {
      let rec: PodRecord;
      try {
        rec = JSON.parse(readFileSync(join(dir, f), "utf8")) as PodRecord;
      } catch {
        continue;
      }
      known.add(`${rec.namespace}/${rec.name}`);
      const pod = desired.get(rec.uid);
      if (pod !== undefined && str((pod["metadata"] as Json)["deletionTimestamp"]) === "") {
        this.#startWorker(pod, rec);
        continue;
      }
      // Its pod is gone or going: stop what the record names.
      const w = new PodWorker(
        this.#deps!,
        pod ?? { metadata: { uid: rec.uid, namespace: rec.namespace, name: rec.name }, spec: {} },
        rec,
      );
      for (const c of Object.values(rec.containers)) {
        if (c.pid > 0) {
          try {
            process.kill(-c.pid, "SIGKILL");
          } catch {
            // gone
          }
        }
      }
      await w.stop(0);
      if (pod !== undefined) await this.#finish(pod);
    }
    // Pod namespaces of this node that no record explains (a crash between setup and record).
    const spec = await currentSpec(o.networkStateDir);
    for (const p of spec?.pods ?? []) {
      if (p.node !== o.node || known.has(`${p.namespace}/${p.name}`)) continue;
      const alive = [...desired.values()].some((d) => {
        const m = d["metadata"] as Json;
        return m["namespace"] === p.namespace && m["name"] === p.name;
      });
      if (alive) continue;
      this.#log.info("removing the namespace of an unknown pod", {
        pod: `${p.namespace}/${p.name}`,
      });
      await killAllIn(podNetns(o.cluster, p.namespace, p.name));
      await podNetworkDown(o.cluster, p, { stateDir: o.networkStateDir, log: o.log }).catch(
        () => {},
      );
    }
  }

  /**
   * Stops the kubelet. "stop-pods" stops every pod on the node (their grace periods, at most
   * `maxGraceSeconds`) and marks the Node NotReady; "leave-pods" leaves them for the next run.
   */
  async close(mode: "stop-pods" | "leave-pods", maxGraceSeconds = 30): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    if (mode === "stop-pods") {
      await Promise.all(
        [...this.#workers.values()].map((w) =>
          w.stop(Math.min(this.#workerGrace(w), maxGraceSeconds)),
        ),
      );
      this.#workers.clear();
      await this.#registerNode("", false).catch(() => {});
    }
    await this.store.close();
  }
}

/**
 * Refuses to run outside the node's network namespace (probes and pod routes would be wrong) or
 * in a mount namespace of its own (`ip netns exec` makes one): namespaces it creates with
 * `ip netns add` would then be bind-mounted where no one else sees them.
 */
function checkNetns(netns: string): void {
  const mnt = statSync("/proc/self/ns/mnt");
  // init's (unreadable in some containers), else the parent's: whoever started us runs in the
  // mount namespace everyone shares, and `ip netns exec` is the one step that leaves it.
  const shared = (() => {
    for (const pid of [1, process.ppid]) {
      try {
        return statSync(`/proc/${pid}/ns/mnt`);
      } catch {
        // try the next
      }
    }
    return undefined;
  })();
  if (shared !== undefined && mnt.ino !== shared.ino) {
    throw new AmbientError(
      "KUBELET_WRONG_MOUNT_NAMESPACE",
      `the kubelet runs in a mount namespace of its own (was it started with "ip netns exec"?); pod namespaces it creates would be invisible to everyone else. Start it with "nsenter --net=/run/netns/${netns} ..."`,
    );
  }
  const want = statSync(`/run/netns/${netns}`, { throwIfNoEntry: false });
  const have = statSync("/proc/self/ns/net");
  if (want === undefined || want.ino !== have.ino || want.dev !== have.dev) {
    throw new AmbientError(
      "KUBELET_WRONG_NETNS",
      `the kubelet must run inside its node's network namespace ${netns} (start it with "ip netns exec ${netns} ...")`,
    );
  }
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, "utf8").trim() || fallback;
  } catch {
    return fallback;
  }
}
