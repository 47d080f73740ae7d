/**
 * The kubelet's CNI hook, for real (root), with the pieces composed in-process as a library
 * user would: the hook is called with the pod's namespace, address and gateway after the network
 * exists and before any container starts; while it fails the pod stays Pending (saying why) and
 * the call is retried with backoff — no container starts unenrolled; a bare Pod manifest runs
 * as-is; removing the manifest stops the pod, calls the `del` hook and removes the namespace.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { KubeConfigStore } from "../../src/lib/config/index.ts";
import { LogOutput } from "../../src/lib/log/index.ts";
import { KubeConfig } from "@kubernetes/client-node";
import {
  networkDown,
  networkUp,
  podNetns,
  startControlPlaneServices,
  startNodeServices,
  type CniHook,
  type CniPodEvent,
  type ControlPlaneServices,
  type NodeServices,
} from "../../src/local/index.ts";

const log = new LogOutput({ spec: { defaultLevel: "warn", scopes: new Map() } }).logger("t");

async function eventually<T>(what: string, fn: () => T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("kubelet CNI hook", () => {
  const cluster = `c${process.pid}`;
  const base = mkdtempSync(join(tmpdir(), "amb-cni-e2e-"));
  const stateDir = join(base, "state");
  const configDir = join(base, "config");
  const marker = join(base, "started");
  let cp: ControlPlaneServices | undefined;
  let node: NodeServices | undefined;
  let watch: KubeConfigStore | undefined;

  after(async () => {
    await watch?.close();
    await node?.close("stop-pods").catch(() => {});
    await cp?.close().catch(() => {});
    await networkDown(cluster, { stateDir, force: true }).catch(() => {});
    rmSync(base, { recursive: true, force: true });
  });

  it("enrolls before containers start, retries a failing hook, and tells the hook when the pod goes", async () => {
    if (process.getuid?.() !== 0) throw new Error("this test needs root (network namespaces)");
    mkdirSync(configDir, { recursive: true });
    const manifest = join(configDir, "solo.yaml");
    writeFileSync(
      manifest,
      [
        "apiVersion: v1",
        "kind: Pod",
        "metadata: {name: solo, namespace: demo}",
        "spec:",
        "  terminationGracePeriodSeconds: 2",
        "  containers:",
        "    - name: app",
        "      image: none",
        '      command: ["node", "-e", "require(\'fs\').writeFileSync(process.env.MARK, String(Date.now())); setInterval(() => {}, 1000)"]',
        "      env:",
        `        - {name: MARK, value: "${marker}"}`,
        "",
      ].join("\n"),
    );
    await networkUp({ cluster, nodes: [{ name: "node1" }] }, { stateDir });
    cp = await startControlPlaneServices({
      stateDir,
      configDir,
      log,
      host: "127.0.0.1",
      port: 0,
      dnsPort: false,
    });

    const adds: { at: number; ev: CniPodEvent }[] = [];
    const dels: CniPodEvent[] = [];
    let secondFailure: (() => void) | undefined;
    const failedTwice = new Promise<void>((r) => (secondFailure = r));
    const cni: CniHook = {
      add(ev) {
        adds.push({ at: Date.now(), ev });
        if (adds.length <= 2) {
          if (adds.length === 2) secondFailure?.();
          return Promise.reject(new Error("node agent says no"));
        }
        return Promise.resolve();
      },
      del(ev) {
        dels.push(ev);
        return Promise.resolve();
      },
    };
    // The kubelet runs in this process (host namespace): no probes here, so that is fine.
    node = await startNodeServices({
      stateDir,
      node: "node1",
      log,
      cni,
      proxy: false,
      skipNetnsCheck: true,
    });

    const kc = new KubeConfig();
    kc.loadFromFile(cp.kubeconfig);
    watch = new KubeConfigStore({ kubeConfig: kc, log, kinds: ["Pod"] });
    await watch.start();
    const w = watch;

    // While the hook fails: Pending, saying why, and no container.
    await failedTwice;
    await eventually("the failure in the pod's status", () => {
      const c = w
        .get("Pod", "demo", "solo")
        ?.status?.conditions?.find((x) => x.type === "PodReadyToStartContainers");
      return c?.status === "False" && /node agent says no/.test(c.message ?? "") ? true : undefined;
    });
    assert.equal(w.get("Pod", "demo", "solo")?.status?.phase, "Pending");
    assert.equal(existsSync(marker), false, "no container before the hook succeeded");

    // Then it succeeds and the container starts after it.
    await eventually("the pod running", () =>
      w.get("Pod", "demo", "solo")?.status?.phase === "Running" ? true : undefined,
    );
    await eventually("the container's marker", () => (existsSync(marker) ? true : undefined));
    const startedAt = Number(readFileSync(marker, "utf8"));
    assert.equal(adds.length, 3);
    assert.ok(startedAt >= adds[2]!.at, "container started after the successful add");
    assert.ok(adds[2]!.at - adds[1]!.at > adds[1]!.at - adds[0]!.at, "retries back off");
    const ev = adds[2]!.ev;
    const pod = w.get("Pod", "demo", "solo")!;
    assert.deepEqual(
      { ...ev },
      {
        namespace: "demo",
        name: "solo",
        uid: pod.metadata.uid,
        node: "node1",
        netns: podNetns(cluster, "demo", "solo"),
        netnsPath: `/run/netns/${podNetns(cluster, "demo", "solo")}`,
        ip: pod.status?.podIP,
        gateway: "198.19.0.1",
        interface: "eth0",
      },
    );

    // Removing the manifest stops the pod: del hook, namespace gone.
    rmSync(manifest);
    await cp.apiServer.files.rescan();
    await eventually("the del hook", () => (dels.length === 1 ? true : undefined));
    assert.equal(dels[0]!.uid, pod.metadata.uid);
    await eventually("the namespace removed", () =>
      existsSync(`/run/netns/${podNetns(cluster, "demo", "solo")}`) ? undefined : true,
    );
  });
});
