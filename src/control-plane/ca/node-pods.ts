/**
 * Which service accounts have a live pod on which node, kept from the config store's Pod events:
 * what the CA checks before it lets a node proxy ask for a workload's identity. A pod counts
 * while it is scheduled to a node, not finished (Succeeded/Failed) and not being deleted; a
 * pod still starting counts, since ztunnel fetches its certificate as the pod is enrolled.
 */
import type { ConfigBatch, ConfigObject } from "../../lib/config/index.ts";

type Pod = ConfigObject<"Pod">;

interface Entry {
  readonly node: string;
  readonly account: string;
}

/** `<namespace>/<serviceaccount>` of a pod (the API's default account is `default`). */
function accountOf(pod: Pod): string {
  return `${pod.metadata.namespace}/${pod.spec?.serviceAccountName ?? "default"}`;
}

function liveEntry(pod: Pod): Entry | undefined {
  const node = pod.spec?.nodeName;
  if (node === undefined || node === "") return undefined;
  if (pod.metadata.deletionTimestamp !== undefined) return undefined;
  const phase = pod.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") return undefined;
  return { node, account: accountOf(pod) };
}

export class NodePods {
  /** node -> `<ns>/<sa>` -> number of live pods. */
  readonly #byNode = new Map<string, Map<string, number>>();
  /** `<ns>/<name>` -> the entry counted for it. */
  readonly #counted = new Map<string, Entry>();
  /** `<ns>/<name>` -> uid and node, for TokenReview callers. */
  readonly #pods = new Map<string, { uid: string; node: string | undefined }>();

  /** Applies a config store batch (Pods only are read). */
  apply(batch: ConfigBatch): void {
    for (const e of batch.events) {
      if (e.kind !== "Pod") continue;
      const key = e.key;
      if (e.type === "deleted") this.#set(key, undefined);
      else this.#set(key, e.new);
    }
  }

  /** Whether a live pod with this namespace and service account runs on `node` now. */
  hasAccountOnNode(node: string, namespace: string, serviceAccount: string): boolean {
    return (this.#byNode.get(node)?.get(`${namespace}/${serviceAccount}`) ?? 0) > 0;
  }

  /** A pod's uid and node, if the store holds it. */
  pod(namespace: string, name: string): { uid: string; node: string | undefined } | undefined {
    return this.#pods.get(`${namespace}/${name}`);
  }

  #set(objectKey: string, pod: Pod | undefined): void {
    // Keys are `Pod/<ns>/<name>`.
    const key = objectKey.slice(objectKey.indexOf("/") + 1);
    const old = this.#counted.get(key);
    if (old !== undefined) {
      const accounts = this.#byNode.get(old.node)!;
      const n = (accounts.get(old.account) ?? 1) - 1;
      if (n > 0) accounts.set(old.account, n);
      else accounts.delete(old.account);
      if (accounts.size === 0) this.#byNode.delete(old.node);
      this.#counted.delete(key);
    }
    if (pod === undefined) {
      this.#pods.delete(key);
      return;
    }
    const node = pod.spec?.nodeName;
    this.#pods.set(key, { uid: pod.metadata.uid ?? "", node: node === "" ? undefined : node });
    const entry = liveEntry(pod);
    if (entry === undefined) return;
    let accounts = this.#byNode.get(entry.node);
    if (accounts === undefined) {
      accounts = new Map();
      this.#byNode.set(entry.node, accounts);
    }
    accounts.set(entry.account, (accounts.get(entry.account) ?? 0) + 1);
    this.#counted.set(key, entry);
  }
}
