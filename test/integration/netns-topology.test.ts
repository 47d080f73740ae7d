/**
 * The local network for real (root): two nodes with two pods each and the control plane, as
 * network namespaces. Pods reach each other on the same node and across nodes, and the control
 * plane; a second `up` changes nothing; teardown leaves no namespace, link or state behind, also
 * after the process bringing it up was killed half-way, and when the state file is lost.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  networkDown,
  networkUp,
  readState,
  type Topology,
  type TopologySpec,
} from "../../src/local/network/index.ts";

const node = process.execPath;
const probe = join(import.meta.dirname, "netns-probe.ts");
const crashChild = join(import.meta.dirname, "netns-crash-child.ts");

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: "pipe" });
}

function spec(cluster: string): TopologySpec {
  return {
    cluster,
    nodes: [{ name: "node1" }, { name: "node2" }],
    pods: [
      { namespace: "default", name: "a1", node: "node1" },
      { namespace: "default", name: "a2", node: "node1" },
      { namespace: "shop", name: "b1", node: "node2" },
      { namespace: "shop", name: "b2", node: "node2" },
    ],
    services: [{ namespace: "shop", name: "web" }],
  };
}

class Processes {
  readonly #children: ChildProcess[] = [];

  async serve(netns: string, label: string): Promise<void> {
    const child = spawn("ip", ["netns", "exec", netns, node, probe, "serve", "7000", label], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#children.push(child);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server in ${netns} not ready`)), 10_000);
      child.stdout.on("data", (b: Buffer) => {
        if (b.toString().includes("ready")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on("exit", (code) => reject(new Error(`server in ${netns} exited with ${code}`)));
    });
  }

  reach(netns: string, ips: readonly string[]): Record<string, string> {
    const out = execFileSync("ip", ["netns", "exec", netns, node, probe, "reach", "7000", ...ips], {
      encoding: "utf8",
      timeout: 15_000,
    });
    return JSON.parse(out) as Record<string, string>;
  }

  stopAll(): void {
    for (const c of this.#children)
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  }
}

function linkIndexes(netns: string): string {
  return sh("ip", ["-n", netns, "-o", "link", "show"])
    .split("\n")
    .map((l) => l.split(":").slice(0, 2).join(":"))
    .join("\n");
}

function ourNetns(prefix: string): string[] {
  return sh("ip", ["netns", "list"])
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(prefix));
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error("this test needs root (network namespaces)");
}

describe("local network topology", () => {
  const dirs: string[] = [];
  const clusters: string[] = [];
  const procs = new Processes();
  const tmp = (): string => {
    const d = mkdtempSync(join(tmpdir(), "amb-netns-test-"));
    dirs.push(d);
    return join(d, "state");
  };
  const cluster = (tag: string): string => {
    const c = `${tag}${process.pid}`;
    clusters.push(c);
    return c;
  };

  before(() => requireRoot());
  after(async () => {
    procs.stopAll();
    for (const c of clusters) {
      // Safety net: anything a failed test left behind (scan by prefix, state in a fresh dir).
      await networkDown(c, {
        stateDir: join(tmpdir(), `amb-netns-cleanup-${c}`),
        force: true,
      }).catch(() => {});
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("connects every pod to every other pod and to the control plane; up again is a no-op; down cleans up", async () => {
    const stateDir = tmp();
    const c = cluster("nt");
    const rootRoutesBefore = sh("ip", ["-4", "route", "show"]);
    const rootForward = sh("sysctl", ["-n", "net.ipv4.ip_forward"]);

    const first = await networkUp(spec(c), { stateDir });
    const t: Topology = first.topology;
    assert.equal(t.pods.length, 4);
    assert.ok(first.applied.length > 0);
    for (const ns of t.namespaces) assert.ok(existsSync(`/run/netns/${ns.netns}`), ns.netns);

    for (const p of t.pods) await procs.serve(p.netns, `${p.namespace}/${p.name}`);
    await procs.serve(t.controlPlane.netns, "control-plane");

    for (const p of t.pods) {
      const targets = [...t.pods.filter((o) => o !== p).map((o) => o.ip), t.controlPlane.address];
      const got = procs.reach(p.netns, targets);
      const want: Record<string, string> = { [t.controlPlane.address]: "control-plane" };
      for (const o of t.pods) if (o !== p) want[o.ip] = `${o.namespace}/${o.name}`;
      assert.deepEqual(got, want, `from ${p.namespace}/${p.name} (${p.ip})`);
    }
    // Nodes reach the control plane and every pod (ztunnel and the agent run there).
    for (const n of t.nodes) {
      const got = procs.reach(n.netns, [t.controlPlane.address, ...t.pods.map((p) => p.ip)]);
      assert.ok(
        Object.values(got).every((v) => !v.startsWith("error")),
        JSON.stringify(got),
      );
    }

    // Up again: nothing to do, nothing re-created.
    const before = t.namespaces.map((n) => linkIndexes(n.netns)).join("\n");
    const second = await networkUp(spec(c), { stateDir });
    assert.deepEqual(second.applied, []);
    assert.deepEqual(second.topology, t);
    assert.equal(t.namespaces.map((n) => linkIndexes(n.netns)).join("\n"), before);

    // The host namespace was not touched.
    assert.equal(sh("ip", ["-4", "route", "show"]), rootRoutesBefore);
    assert.equal(sh("sysctl", ["-n", "net.ipv4.ip_forward"]), rootForward);
    const rootLinks = sh("ip", ["-o", "link", "show"]);
    for (const p of t.pods) assert.ok(!rootLinks.includes(p.hostInterface));

    procs.stopAll();
    await new Promise((r) => setTimeout(r, 200));
    const down = await networkDown(c, { stateDir });
    assert.equal(down.deleted.length, t.namespaces.length);
    assert.deepEqual(ourNetns(t.prefix), []);
    assert.equal(existsSync(stateDir), false, "state directory removed");
    assert.ok(!sh("ip", ["-o", "link", "show"]).includes(t.pods[0]!.hostInterface));
    // Down again with nothing left is fine.
    assert.deepEqual((await networkDown(c, { stateDir })).deleted, []);
  });

  it("applies topology changes: removed pods and node go, a moved pod follows, the rest stays", async () => {
    const stateDir = tmp();
    const c = cluster("nc");
    const s = spec(c);
    const { topology: t1 } = await networkUp(s, { stateDir });
    const keep = t1.pods.find((p) => p.name === "a2")!;

    const changed: TopologySpec = {
      ...s,
      nodes: [{ name: "node1" }],
      pods: [
        { namespace: "default", name: "a2", node: "node1" },
        { namespace: "shop", name: "b1", node: "node1" },
        { namespace: "shop", name: "b3", node: "node1" },
      ],
    };
    const keepLinks = linkIndexes(keep.netns);
    const { topology: t2, applied } = await networkUp(changed, { stateDir });
    assert.ok(applied.some((o) => o.kind === "netns-delete" && o.netns === `amb-${c}-node2`));
    assert.deepEqual(ourNetns(t2.prefix).sort(), t2.namespaces.map((n) => n.netns).sort());
    assert.equal(t2.pods.find((p) => p.name === "a2")!.ip, keep.ip, "unchanged pod keeps its IP");
    assert.equal(linkIndexes(keep.netns), keepLinks, "unchanged pod's interfaces not re-created");
    const moved = t2.pods.find((p) => p.name === "b1")!;
    assert.equal(moved.node, "node1");
    // Nothing routes to the departed node2's pod range any more.
    const node2Range = t1.nodes.find((n) => n.name === "node2")!.podCidr;
    for (const ns of [...t2.nodes.map((n) => n.netns), t2.controlPlane.netns]) {
      assert.ok(
        !sh("ip", ["-n", ns, "route"]).includes(node2Range),
        `${ns} still routes ${node2Range}`,
      );
    }

    for (const p of t2.pods) await procs.serve(p.netns, p.name);
    for (const p of t2.pods) {
      const others = t2.pods.filter((o) => o !== p);
      const got = procs.reach(
        p.netns,
        others.map((o) => o.ip),
      );
      assert.deepEqual(got, Object.fromEntries(others.map((o) => [o.ip, o.name])));
    }
    assert.deepEqual((await networkUp(changed, { stateDir })).applied, []);
    procs.stopAll();
    await new Promise((r) => setTimeout(r, 200));
    await networkDown(c, { stateDir });
    assert.deepEqual(ourNetns(t2.prefix), []);
  });

  it("tears down after the process bringing the network up was killed half-way", async () => {
    const stateDir = tmp();
    const c = cluster("nk");
    const child = spawn(node, [crashChild, stateDir, JSON.stringify(spec(c))], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("child never paused")), 30_000);
      let err = "";
      child.stderr.on("data", (b: Buffer) => (err += b.toString()));
      child.stdout.on("data", (b: Buffer) => {
        if (b.toString().includes("paused")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on("exit", (code) => reject(new Error(`child exited early (${code}): ${err}`)));
    });
    child.removeAllListeners("exit");
    const exited = new Promise((r) => child.on("exit", r));
    child.kill("SIGKILL");
    await exited;

    // The crash left namespaces, the state naming them, and a stale lock.
    const left = ourNetns(`amb-${c}-`);
    assert.equal(left.length, 8);
    const { state } = await readState(stateDir);
    assert.deepEqual(state!.namespaces.map((n) => n.netns).sort(), left.sort());
    assert.ok(existsSync(join(stateDir, "network.lock")));

    const down = await networkDown(c, { stateDir });
    assert.equal(down.deleted.length, 8);
    assert.deepEqual(ourNetns(`amb-${c}-`), []);
    assert.equal(existsSync(stateDir), false);
  });

  it("finishes the job when up is run again after a crash", async () => {
    const stateDir = tmp();
    const c = cluster("nr");
    const child = spawn(node, [crashChild, stateDir, JSON.stringify(spec(c))], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("child never paused")), 30_000);
      child.stdout.on("data", (b: Buffer) => {
        if (b.toString().includes("paused")) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const exited = new Promise((r) => child.on("exit", r));
    child.kill("SIGKILL");
    await exited;

    const { topology: t, applied } = await networkUp(spec(c), { stateDir });
    assert.ok(
      !applied.some((o) => o.kind === "netns"),
      "namespaces from the crashed run are reused",
    );
    assert.ok(applied.some((o) => o.kind === "veth"));
    for (const p of t.pods) await procs.serve(p.netns, p.name);
    const from = t.pods[0]!;
    const got = procs.reach(
      from.netns,
      t.pods.slice(1).map((p) => p.ip),
    );
    assert.deepEqual(got, Object.fromEntries(t.pods.slice(1).map((p) => [p.ip, p.name])));
    procs.stopAll();
    await new Promise((r) => setTimeout(r, 200));
    await networkDown(c, { stateDir });
    assert.deepEqual(ourNetns(t.prefix), []);
  });

  it("finds the namespaces by name when the state file is lost or damaged", async () => {
    const c = cluster("nl");
    const stateDir = tmp();
    await networkUp(spec(c), { stateDir });
    unlinkSync(join(stateDir, "network.json"));
    const lost = await networkDown(c, { stateDir });
    assert.equal(lost.deleted.length, 8);
    assert.deepEqual(ourNetns(`amb-${c}-`), []);

    const stateDir2 = tmp();
    await networkUp(spec(c), { stateDir: stateDir2 });
    writeFileSync(join(stateDir2, "network.json"), "{ half a file");
    await assert.rejects(networkUp(spec(c), { stateDir: stateDir2 }), {
      code: "NETWORK_STATE_UNREADABLE",
    });
    const damaged = await networkDown(c, { stateDir: stateDir2 });
    assert.match(damaged.stateProblem ?? "", /is damaged/);
    assert.equal(damaged.deleted.length, 8);
    assert.deepEqual(ourNetns(`amb-${c}-`), []);
  });

  it("refuses to run while another live process holds the state directory", async () => {
    const stateDir = tmp();
    const sleeper = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      sh("mkdir", ["-p", stateDir]);
      writeFileSync(join(stateDir, "network.lock"), String(sleeper.pid));
      await assert.rejects(networkUp(spec(cluster("nx")), { stateDir }), {
        code: "NETWORK_LOCKED",
        message: new RegExp(`in use by process ${sleeper.pid}`),
      });
    } finally {
      sleeper.kill("SIGKILL");
    }
  });

  it("will not delete a namespace processes still run in, unless forced", async () => {
    const stateDir = tmp();
    const c = cluster("nb");
    const { topology: t } = await networkUp(spec(c), { stateDir });
    await procs.serve(t.pods[0]!.netns, "busy");
    await assert.rejects(networkDown(c, { stateDir }), {
      code: "NETWORK_NAMESPACE_BUSY",
      message: new RegExp(t.pods[0]!.netns),
    });
    assert.equal(ourNetns(t.prefix).length, 8, "nothing deleted");
    procs.stopAll();
    await new Promise((r) => setTimeout(r, 200));
    await networkDown(c, { stateDir });
    assert.deepEqual(ourNetns(t.prefix), []);
  });
});
