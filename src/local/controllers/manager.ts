/**
 * The controller manager of the local cluster, in the API server's process: Deployment →
 * ReplicaSet → Pod controllers, the scheduler, and garbage collection (objects whose controlling
 * owner is gone; pods bound to a node that no longer exists). Level-triggered: any change to a
 * Deployment, ReplicaSet, Pod or Node schedules one pass that recomputes everything from the
 * store (cheap at this size) and writes what differs through the Registry — the same admission
 * as API clients. A pass that wrote something is followed by another until nothing changes;
 * a periodic pass catches the rest.
 */
import type { Logger } from "../../lib/log/index.ts";
import {
  isObject,
  metaOf,
  str,
  type ApiOutcome,
  type ApiResource,
  type Json,
  type Registry,
  type WriteContext,
} from "../../lib/kube-api/index.ts";
import { planDeployment } from "./deployment.ts";
import { controllerOf, nameOf, namespaceOf, specOf, statusOf, uidOf } from "./objects.ts";
import { planReplicaSet } from "./replicaset.ts";
import { chooseNode } from "./scheduler.ts";
import { jsonEqual } from "../../lib/kube-api/index.ts";

export interface ControllerManagerOptions {
  readonly registry: Registry;
  readonly log: Logger;
  /** Safety-net full pass period. */
  readonly resyncMs?: number;
}

const CTX: WriteContext = Object.freeze({ user: "system:controller-manager" });
const WATCHED = new Set(["deployments", "replicasets", "pods", "nodes"]);

export class ControllerManager {
  readonly #registry: Registry;
  readonly #log: Logger;
  readonly #res: { deploy: ApiResource; rs: ApiResource; pod: ApiResource; node: ApiResource };
  readonly #resyncMs: number;
  #unsubscribe: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #interval: NodeJS.Timeout | undefined;
  #running = false;
  #again = false;
  #closed = false;
  #idle: (() => void)[] = [];

  constructor(opts: ControllerManagerOptions) {
    this.#registry = opts.registry;
    this.#log = opts.log;
    this.#resyncMs = opts.resyncMs ?? 10_000;
    const t = opts.registry.store.resources;
    const need = (g: string, k: string) => {
      const r = t.forKind(g, k);
      if (r === undefined) throw new Error(`the API server does not serve ${k}`);
      return r;
    };
    this.#res = {
      deploy: need("apps", "Deployment"),
      rs: need("apps", "ReplicaSet"),
      pod: need("", "Pod"),
      node: need("", "Node"),
    };
  }

  start(): void {
    this.#unsubscribe = this.#registry.store.subscribe((ev) => {
      if (WATCHED.has(ev.resource.plural)) this.#schedule();
    });
    this.#interval = setInterval(() => this.#schedule(), this.#resyncMs);
    this.#interval.unref();
    this.#schedule();
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribe?.();
    clearTimeout(this.#timer);
    clearInterval(this.#interval);
  }

  /** Resolves once no pass is pending or running (for tests). */
  settled(): Promise<void> {
    if (!this.#running && this.#timer === undefined) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #schedule(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer !== undefined) return;
    // Coalesce a burst of events (a pass writes many objects) into one pass.
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#run();
    }, 5);
  }

  #run(): void {
    this.#running = true;
    let wrote = false;
    try {
      wrote = this.syncOnce();
    } catch (err) {
      this.#log.error("controller pass failed", {
        error: err instanceof Error ? err.message : String(err),
      });
    } finally {
      this.#running = false;
    }
    if ((wrote || this.#again) && !this.#closed) {
      this.#again = false;
      this.#schedule();
      return;
    }
    for (const f of this.#idle.splice(0)) f();
  }

  #write(what: string, r: ApiOutcome): boolean {
    if (r.ok) return true;
    // A conflict or a vanished object is normal in a level-triggered loop: the next pass redoes it.
    if (r.code !== 409 && r.code !== 404) {
      this.#log.warn("controller write refused", {
        what,
        code: r.code,
        reason: String(r.status["message"]),
      });
    }
    return false;
  }

  /** One full pass. Returns whether anything was written. */
  syncOnce(): boolean {
    const store = this.#registry.store;
    const reg = this.#registry;
    const { deploy, rs: rsRes, pod: podRes, node: nodeRes } = this.#res;
    let wrote = false;

    // Garbage collection: controlled objects whose owner (same uid) is gone.
    const exists = (res: ApiResource, ns: string, name: string, uid: string) =>
      str(metaOf(store.get(res, ns, name) ?? {})["uid"]) === uid;
    for (const rs of store.list(rsRes)) {
      const o = controllerOf(rs);
      if (o?.kind === "Deployment" && !exists(deploy, namespaceOf(rs), o.name, o.uid)) {
        wrote =
          this.#write(
            `delete ReplicaSet ${nameOf(rs)}`,
            reg.delete(CTX, rsRes, namespaceOf(rs), nameOf(rs)),
          ) || wrote;
      }
    }
    const nodes = store.list(nodeRes);
    const nodeNames = new Set(nodes.map(nameOf));
    for (const p of store.list(podRes)) {
      const o = controllerOf(p);
      const node = str(specOf(p)["nodeName"]);
      if (
        o?.kind === "ReplicaSet" &&
        !exists(rsRes, namespaceOf(p), o.name, o.uid) &&
        str(metaOf(p)["deletionTimestamp"]) === ""
      ) {
        wrote =
          this.#write(
            `delete Pod ${nameOf(p)}`,
            reg.delete(CTX, podRes, namespaceOf(p), nameOf(p)),
          ) || wrote;
      } else if (node !== "" && !nodeNames.has(node) && nodes.length > 0 && o !== undefined) {
        // Its node was removed from the cluster: nothing will ever stop it there.
        wrote =
          this.#write(
            `delete Pod ${nameOf(p)}`,
            reg.delete(CTX, podRes, namespaceOf(p), nameOf(p), { gracePeriodSeconds: 0 }),
          ) || wrote;
      }
    }

    // Deployments → ReplicaSets.
    const allRs = store.list(rsRes);
    for (const d of store.list(deploy)) {
      const ns = namespaceOf(d);
      const plan = planDeployment(
        d,
        allRs.filter((r) => namespaceOf(r) === ns),
      );
      if (plan.create) {
        const r = reg.create(CTX, rsRes, ns, plan.create);
        if (this.#write(`create ReplicaSet ${nameOf(plan.create)}`, r)) {
          wrote = true;
          this.#log.info("created ReplicaSet", {
            deployment: `${ns}/${nameOf(d)}`,
            replicaSet: nameOf(plan.create),
          });
        }
      }
      for (const [name, replicas] of plan.scale) {
        const r = reg.patch(CTX, rsRes, ns, name, "merge", { spec: { replicas } }, "");
        if (this.#write(`scale ReplicaSet ${name}`, r)) {
          wrote = true;
          this.#log.info("scaled ReplicaSet", { replicaSet: `${ns}/${name}`, replicas });
        }
      }
      for (const name of plan.delete)
        wrote = this.#write(`delete ReplicaSet ${name}`, reg.delete(CTX, rsRes, ns, name)) || wrote;
      if (!statusEqual(statusOf(d), plan.status)) {
        wrote =
          this.#write(
            `status of Deployment ${nameOf(d)}`,
            reg.patch(CTX, deploy, ns, nameOf(d), "merge", { status: plan.status }, "status"),
          ) || wrote;
      }
    }

    // ReplicaSets → Pods.
    let pods = store.list(podRes);
    for (const rs of store.list(rsRes)) {
      const ns = namespaceOf(rs);
      const plan = planReplicaSet(
        rs,
        pods.filter((p) => namespaceOf(p) === ns),
      );
      for (const p of plan.create) {
        wrote = this.#write(`create Pod ${nameOf(p)}`, reg.create(CTX, podRes, ns, p)) || wrote;
      }
      for (const name of plan.delete) {
        wrote = this.#write(`delete Pod ${name}`, reg.delete(CTX, podRes, ns, name)) || wrote;
      }
      if (!statusEqual(statusOf(rs), plan.status)) {
        wrote =
          this.#write(
            `status of ReplicaSet ${nameOf(rs)}`,
            reg.patch(CTX, rsRes, ns, nameOf(rs), "merge", { status: plan.status }, "status"),
          ) || wrote;
      }
    }

    // Scheduler: bind pods without a node, counting each binding for the next choice.
    pods = store.list(podRes);
    for (const p of pods) {
      if (str(specOf(p)["nodeName"]) !== "" || str(metaOf(p)["deletionTimestamp"]) !== "") continue;
      const node = chooseNode(p, nodes, store.list(podRes));
      if (node === undefined) continue;
      const r = reg.bind(CTX, namespaceOf(p), nameOf(p), {
        apiVersion: "v1",
        kind: "Binding",
        metadata: { name: nameOf(p), namespace: namespaceOf(p), uid: uidOf(p) },
        target: { apiVersion: "v1", kind: "Node", name: node },
      });
      if (this.#write(`bind Pod ${nameOf(p)}`, r)) {
        wrote = true;
        this.#log.debug("scheduled pod", { pod: `${namespaceOf(p)}/${nameOf(p)}`, node });
      }
    }
    return wrote;
  }
}

/** Status equality that ignores condition timestamps. */
function statusEqual(a: Json, b: Json): boolean {
  const strip = (s: Json): Json => {
    const c = s["conditions"];
    if (!Array.isArray(c)) return s;
    return {
      ...s,
      conditions: (c as unknown[]).map((x): unknown => {
        if (!isObject(x)) return x;
        const y = { ...x };
        delete y["lastTransitionTime"];
        delete y["lastUpdateTime"];
        return y;
      }),
    };
  };
  return jsonEqual(strip(a), strip(b));
}
