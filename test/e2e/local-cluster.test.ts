/**
 * The local Kubernetes for real (root): network namespaces for the control plane and two nodes,
 * `ambient apiserver` in the control plane's namespace and `ambient kubelet` in each node's, as
 * a supervisor starts them, running examples/bookinfo and examples/httpbin without the mesh (no
 * CNI hook). Checks what a user sees: every pod Running and Ready with an address; curl from the
 * client pod through cluster DNS and kube-proxy gets the product page, reviews from v1, v2 and
 * v3; scaling a Deployment (by editing its manifest); a killed container restarted
 * (restartCount 1); a deleted pod replaced; a kubelet restart adopting its pods; and after
 * stopping everything no process, namespace or rule left.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  networkDown,
  networkUp,
  nodeNetns,
  podNetns,
  type Topology,
} from "../../src/local/network/index.ts";

const root = resolve(import.meta.dirname, "..", "..");
const main = join(root, "src", "cli", "main.ts");
const cluster = `k${process.pid}`;

interface Condition {
  type: string;
  status: string;
  lastHeartbeatTime?: string;
}
interface ContainerStatus {
  containerID?: string;
  restartCount: number;
  lastState: { terminated?: { exitCode: number } };
}
/** The parts of a pod these checks read (present once the kubelet has reported). */
interface Pod {
  metadata: {
    name: string;
    uid: string;
    labels: Record<string, string>;
    ownerReferences?: { kind: string }[];
    deletionTimestamp?: string;
  };
  spec: { nodeName: string };
  status: {
    phase: string;
    podIP: string;
    hostIP: string;
    conditions?: Condition[];
    containerStatuses: ContainerStatus[];
  };
}
/** The first container's status. */
function c0(p: Pod): ContainerStatus {
  return p.status.containerStatuses[0]!;
}
function pidOf(p: Pod): number {
  return Number(/(\d+)$/.exec(c0(p).containerID ?? "")?.[1] ?? 0);
}
interface Json {
  items?: unknown[];
  text?: string;
  status?: { conditions?: Condition[] };
  metadata?: { name?: string };
  version?: string;
}

/** A process that exited (a zombie not yet reaped by init counts: it runs nothing). */
function goneOrZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error("this test needs root (network namespaces)");
}

async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  ms = 60_000,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(
        `timed out waiting for ${what}${last ? `: ${last instanceof Error ? last.message : JSON.stringify(last)}` : ""}`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe("local cluster (apiserver + controllers + kubelets + kube-proxy + DNS)", () => {
  const base = mkdtempSync(join(tmpdir(), "amb-local-e2e-"));
  const stateDir = join(base, "state");
  const configDir = join(base, "config");
  const procs = new Map<string, ChildProcess>();
  let topo: Topology;

  /** A JSON request to the API server through its unix socket (the test runs outside the namespaces). */
  const api = (
    method: string,
    path: string,
    body?: unknown,
    type = "application/json",
  ): Promise<{ status: number; json: Json & Partial<Pod> }> =>
    new Promise((resolveReq, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          socketPath: join(stateDir, "apiserver.sock"),
          path,
          method,
          headers: payload
            ? { "content-type": type, "content-length": Buffer.byteLength(payload) }
            : {},
          timeout: 10_000,
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (text += c));
          res.on("end", () => {
            let json: Json & Partial<Pod> = { text };
            try {
              json = text ? (JSON.parse(text) as Json & Partial<Pod>) : {};
            } catch {
              // plain text (health endpoints)
            }
            resolveReq({ status: res.statusCode ?? 0, json });
          });
        },
      );
      req.on("error", reject);
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.end(payload);
    });
  const pods = async (ns?: string): Promise<Pod[]> =>
    (await api("GET", ns ? `/api/v1/namespaces/${ns}/pods` : "/api/v1/pods")).json.items as Pod[];
  const ready = (p: Pod) =>
    p.status.phase === "Running" &&
    (p.status.conditions ?? []).some((c: Condition) => c.type === "Ready" && c.status === "True") &&
    !p.metadata.deletionTimestamp;

  const start = (name: string, netns: string, args: string[]): ChildProcess => {
    const out = openSync(join(base, `${name}.log`), "a");
    // nsenter, not "ip netns exec": the kubelet's `ip netns add` must land in the host's mounts.
    const child = spawn(
      "nsenter",
      [`--net=/run/netns/${netns}`, "--", process.execPath, main, ...args],
      {
        stdio: ["ignore", out, out],
        detached: true,
      },
    );
    closeSync(out);
    procs.set(name, child);
    return child;
  };
  const stop = async (name: string, signal: NodeJS.Signals, ms = 60_000): Promise<void> => {
    const child = procs.get(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill(signal);
    await Promise.race([
      exited,
      new Promise((_, rej) => setTimeout(() => rej(new Error(`${name} did not stop`)), ms)),
    ]);
    procs.delete(name);
  };
  const curl = (ns: string, pod: string, url: string, extra: string[] = []): string =>
    execFileSync(
      "ip",
      ["netns", "exec", podNetns(cluster, ns, pod), "curl", "-s", "--max-time", "5", ...extra, url],
      {
        encoding: "utf8",
        timeout: 15_000,
      },
    );
  const clientPod = async (ns: string): Promise<string> =>
    (await pods(ns)).find((p) => p.metadata.labels?.app === "client" && ready(p))!.metadata.name;

  before(async () => {
    requireRoot();
    mkdirSync(configDir, { recursive: true });
    copyFileSync(join(root, "examples/bookinfo/bookinfo.yaml"), join(configDir, "bookinfo.yaml"));
    copyFileSync(join(root, "examples/httpbin/httpbin.yaml"), join(configDir, "httpbin.yaml"));
    topo = (
      await networkUp({ cluster, nodes: [{ name: "node1" }, { name: "node2" }] }, { stateDir })
    ).topology;
    start("apiserver", topo.controlPlane.netns, [
      "apiserver",
      "--state-dir",
      stateDir,
      "--config-dir",
      configDir,
    ]);
    await eventually(
      "the API server",
      async () =>
        (await api("GET", "/readyz")).status === 200 && existsSync(join(stateDir, "kubeconfig")),
      30_000,
    );
    for (const n of ["node1", "node2"])
      start(`kubelet-${n}`, nodeNetns(cluster, n), [
        "kubelet",
        "--state-dir",
        stateDir,
        "--node",
        n,
      ]);
  });

  after(async () => {
    // What went wrong, if anything: the processes' warnings and errors.
    for (const name of ["apiserver", "kubelet-node1", "kubelet-node2"]) {
      const file = join(base, `${name}.log`);
      if (!existsSync(file)) continue;
      const lines = readFileSync(file, "utf8").split("\n");
      const bad = lines.filter(
        (l) => l !== "" && (/\t(warn|error)\t/.test(l) || !/^\d{4}-/.test(l)),
      );
      if (bad.length > 0) {
        console.error(`--- ${name} warnings/errors:\n${bad.slice(-20).join("\n")}`);
        console.error(`--- ${name} last lines:\n${lines.slice(-8).join("\n")}`);
      }
    }
    const keep = process.env["AMB_E2E_KEEP_LOGS"];
    if (keep !== undefined && keep !== "") {
      mkdirSync(keep, { recursive: true });
      for (const name of ["apiserver", "kubelet-node1", "kubelet-node2"]) {
        if (existsSync(join(base, `${name}.log`)))
          copyFileSync(join(base, `${name}.log`), join(keep, `${name}.log`));
      }
    }
    for (const [name, child] of procs) {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          // gone
        }
      }
      procs.delete(name);
    }
    // Anything a failed test left: processes in our namespaces, then the namespaces.
    const list = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
    for (const line of list.split("\n")) {
      const ns = line.split(" ")[0] ?? "";
      if (!ns.startsWith(`amb-${cluster}-`)) continue;
      const pids = execFileSync("ip", ["netns", "pids", ns], { encoding: "utf8" })
        .split(/\s+/)
        .filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // gone
        }
      }
      rmSync(join("/etc/netns", ns), { recursive: true, force: true });
    }
    await networkDown(cluster, { stateDir: join(base, "cleanup"), force: true }).catch(() => {});
    rmSync(base, { recursive: true, force: true });
  });

  it("runs bookinfo and httpbin: pods Running and Ready with addresses, spread over both nodes", async () => {
    const all = await eventually(
      "9 pods Running and Ready",
      async () => {
        const ps = await pods();
        return ps.length === 9 && ps.every(ready) ? ps : undefined;
      },
      120_000,
    );
    const nodes = new Set(all.map((p) => p.spec.nodeName));
    assert.deepEqual([...nodes].sort(), ["node1", "node2"]);
    for (const p of all) {
      assert.match(p.status.podIP, /^198\.19\.\d+\.\d+$/);
      const node = topo.nodes.find((n) => n.name === p.spec.nodeName)!;
      assert.equal(p.status.hostIP, node.address);
      if (p.metadata.ownerReferences) {
        assert.equal(p.metadata.ownerReferences[0]!.kind, "ReplicaSet");
        assert.ok(p.metadata.labels["pod-template-hash"]);
      }
    }
    const nodeList = (await api("GET", "/api/v1/nodes")).json.items as Pod[];
    assert.deepEqual(nodeList.map((n) => n.metadata.name).sort(), ["node1", "node2"]);
  });

  it("curl from the client pod reaches productpage through cluster DNS and kube-proxy; reviews v1, v2 and v3 answer", async () => {
    const client = await clientPod("bookinfo");
    const index = curl("bookinfo", client, "http://productpage.bookinfo:9080/", [
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
    ]);
    assert.equal(index, "200");
    // The page shows the book with reviews from one of the versions.
    const page = curl("bookinfo", client, "http://productpage.bookinfo:9080/productpage");
    assert.match(page, /The Comedy of Errors/);
    assert.match(page, /class="reviews-version">v[123]</);
    // productpage keeps its upstream connections alive (one reviews pod per connection), so the
    // spread over v1, v2 and v3 is checked with one connection per request, as kube-proxy
    // balances connections.
    const seen = new Set<string>();
    await eventually(
      "reviews from v1, v2 and v3",
      () => {
        const body = curl("bookinfo", client, "http://reviews:9080/reviews/0");
        seen.add((JSON.parse(body) as { version: string }).version);
        return seen.size === 3 ? true : undefined;
      },
      30_000,
    );
    assert.deepEqual([...seen].sort(), ["v1", "v2", "v3"]);
    // httpbin answers through its Service port (8000 to the pod's 8080).
    const hb = await clientPod("httpbin");
    assert.equal(
      curl("httpbin", hb, "http://httpbin:8000/status/418", [
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
      ]),
      "418",
    );
    // A name outside the cluster is refused by cluster DNS: curl cannot resolve it.
    assert.throws(() => curl("httpbin", hb, "http://example.invalid/"));
  });

  it("scales a Deployment up and down when its manifest changes", async () => {
    const file = join(configDir, "httpbin.yaml");
    const text = readFileSync(file, "utf8");
    writeFileSync(
      file,
      text.replace(
        "    version: v1\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: httpbin\n",
        "    version: v1\nspec:\n  replicas: 3\n  selector:\n    matchLabels:\n      app: httpbin\n",
      ),
    );
    const httpbinPods = async () =>
      (await pods("httpbin")).filter((p) => p.metadata.labels.app === "httpbin");
    await eventually(
      "3 httpbin pods ready",
      async () => ((await httpbinPods()).filter(ready).length === 3 ? true : undefined),
      60_000,
    );
    writeFileSync(file, text);
    await eventually(
      "1 httpbin pod left",
      async () => {
        const ps = await httpbinPods();
        return ps.length === 1 && ready(ps[0]!) ? true : undefined;
      },
      60_000,
    );
  });

  it("restarts a killed container (restartCount 1) and replaces a deleted pod", async () => {
    const details = (await pods("bookinfo")).find((p) => p.metadata.labels.app === "details")!;
    const name = details.metadata.name;
    assert.match(c0(details).containerID ?? "", /^process:\/\/\d+$/);
    const pid = pidOf(details);
    process.kill(pid, "SIGKILL");
    const restarted = await eventually(
      "details restarted",
      async () => {
        const p = (await api("GET", `/api/v1/namespaces/bookinfo/pods/${name}`)).json as Pod;
        return c0(p).restartCount === 1 && ready(p) ? p : undefined;
      },
      60_000,
    );
    assert.equal(c0(restarted).lastState.terminated?.exitCode, 137);

    const del = await api("DELETE", `/api/v1/namespaces/bookinfo/pods/${name}`);
    assert.equal(del.status, 200);
    await eventually(
      "details replaced",
      async () => {
        const ps = (await pods("bookinfo")).filter((p) => p.metadata.labels.app === "details");
        return ps.length === 1 && ps[0]!.metadata.name !== name && ready(ps[0]!) ? true : undefined;
      },
      60_000,
    );
    assert.equal(
      existsSync(`/run/netns/${podNetns(cluster, "bookinfo", name)}`),
      false,
      "old namespace removed",
    );
  });

  it("a restarted kubelet adopts its running pods", async () => {
    const before = (await pods()).filter((p) => p.spec.nodeName === "node1");
    await stop("kubelet-node1", "SIGHUP");
    for (const p of before) {
      const pid = pidOf(p);
      assert.doesNotThrow(() => process.kill(pid, 0), `${p.metadata.name} still running`);
    }
    start("kubelet-node1", nodeNetns(cluster, "node1"), [
      "kubelet",
      "--state-dir",
      stateDir,
      "--node",
      "node1",
    ]);
    // Up once it has reported its node again.
    const restartedAt = Date.now();
    await eventually(
      "the new kubelet to report",
      async () => {
        const node = (await api("GET", "/api/v1/nodes/node1")).json;
        const ready = (node.status?.conditions ?? []).find((c) => c.type === "Ready");
        return Date.parse(ready?.lastHeartbeatTime ?? "") >= restartedAt - 1000 ? true : undefined;
      },
      30_000,
    );
    const after2 = await eventually("node1 pods ready", async () => {
      const ps = (await pods()).filter((p) => p.spec.nodeName === "node1");
      return ps.length === before.length && ps.every(ready) ? ps : undefined;
    });
    for (const p of after2) {
      const old = before.find((b) => b.metadata.uid === p.metadata.uid);
      assert.ok(old, `${p.metadata.name} is the same pod`);
      assert.equal(c0(p).containerID, c0(old).containerID);
      assert.equal(c0(p).restartCount, c0(old).restartCount);
    }
  });

  it("keeps pods running across an API server restart; controllers and kubelets carry on", async () => {
    const before = await pods();
    await stop("apiserver", "SIGTERM");
    for (const p of before) assert.ok(!goneOrZombie(pidOf(p)), `${p.metadata.name} still running`);
    start("apiserver", topo.controlPlane.netns, [
      "apiserver",
      "--state-dir",
      stateDir,
      "--config-dir",
      configDir,
    ]);
    await eventually(
      "the API server back",
      async () => ((await api("GET", "/readyz")).status === 200 ? true : undefined),
      30_000,
    );
    const uids = (ps: Pod[]) => ps.map((p) => p.metadata.uid).sort();
    const again = await pods();
    assert.deepEqual(uids(again), uids(before), "the same pods, from the state directory");
    // A pod deleted now is replaced and started: controllers and kubelets resumed their watches.
    const victim = again.find((p) => p.metadata.labels.app === "ratings")!;
    assert.equal(
      (await api("DELETE", `/api/v1/namespaces/bookinfo/pods/${victim.metadata.name}`)).status,
      200,
    );
    await eventually(
      "ratings replaced",
      async () => {
        const ps = (await pods("bookinfo")).filter((p) => p.metadata.labels.app === "ratings");
        return ps.length === 1 && ps[0]!.metadata.name !== victim.metadata.name && ready(ps[0]!)
          ? true
          : undefined;
      },
      60_000,
    );
  });

  it("stops everything with nothing left: processes, namespaces, rules", async () => {
    const all = await pods();
    const pids = all.map((p) => pidOf(p));
    await stop("kubelet-node1", "SIGTERM");
    await stop("kubelet-node2", "SIGTERM");
    for (const n of ["node1", "node2"]) {
      const rules = execFileSync("ip", ["netns", "exec", nodeNetns(cluster, n), "iptables-save"], {
        encoding: "utf8",
      });
      assert.doesNotMatch(rules, /KUBE-/, `no kube-proxy rules left on ${n}`);
    }
    await stop("apiserver", "SIGTERM");
    for (const pid of pids) assert.ok(goneOrZombie(pid), `process ${pid} is gone`);
    const left = execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
      .split("\n")
      .map((l) => l.split(" ")[0] ?? "")
      .filter((n) => n.startsWith(`amb-${cluster}-`));
    assert.deepEqual(
      left.sort(),
      [
        `amb-${cluster}-cp`,
        `amb-${cluster}-net`,
        `amb-${cluster}-node1`,
        `amb-${cluster}-node2`,
      ].sort(),
      "only the cluster's own namespaces",
    );
    // networkDown refuses while any process still runs in them.
    await networkDown(cluster, { stateDir });
    assert.equal(
      execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).includes(`amb-${cluster}-`),
      false,
    );
  });
});
