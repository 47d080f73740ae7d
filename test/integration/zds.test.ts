/**
 * ZDS end to end in one process, as root: the node agent's ZdsServer and ztunnel's
 * WorkloadManager over a real SEQPACKET socket, real pod network namespaces whose fds travel with
 * SCM_RIGHTS, and real in-pod listeners (a test proxy on createInpodListeners). The steps build on
 * each other: a snapshot of three pods, a second ztunnel (rollout), a delete, a ztunnel restart,
 * an agent restart with pods it has no netns for.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Registry } from "prom-client";
import {
  closeFd,
  createNetnsSocket,
  getMark,
  openNetns,
  socketFd,
} from "../../src/lib/net/index.ts";
import { ManualTimers } from "../../src/testing/manual-timers.ts";
import { ZdsServer, type SnapshotResult } from "../../src/node-agent/zds/index.ts";
import {
  InpodStateManager,
  WorkloadManager,
  connectFromPod,
  createInpodListeners,
  createInpodMetrics,
} from "../../src/ztunnel/inpod/index.ts";
import { TestPod, TestProxies, fdCount, memoryLogger, waitFor } from "./zds-fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "amb-zds-it-"));
const socketPath = join(dir, "var", "run", "ztunnel", "ztunnel.sock"); // the agent makes the directory

/** One ztunnel: its proxies and state (which survive reconnects) and its current ZDS client. */
class Ztunnel {
  readonly proxies = new TestProxies();
  readonly registry = new Registry();
  readonly state: InpodStateManager;
  manager: WorkloadManager;
  readonly sink;

  constructor() {
    const { log, sink } = memoryLogger("inpod");
    this.sink = sink;
    this.state = new InpodStateManager({
      startProxy: this.proxies.start,
      metrics: createInpodMetrics(this.registry),
      log,
    });
    this.manager = this.connect();
  }

  connect(): WorkloadManager {
    this.manager = WorkloadManager.start({
      state: this.state,
      path: socketPath,
      log: memoryLogger("inpod").log,
    });
    return this.manager;
  }

  async metric(name: string): Promise<number> {
    const m = new RegExp(`^${name} (\\S+)$`, "m").exec(
      await this.registry.getSingleMetricAsString(name),
    );
    return Number(m?.[1]);
  }

  async shutdown(): Promise<void> {
    await this.manager.close();
    await this.state.drain();
  }
}

function startAgent(): ZdsServer {
  return ZdsServer.listen({ path: socketPath, log: memoryLogger("zds").log });
}

describe("ZDS: node agent and ztunnel", { concurrency: false }, () => {
  const pods: TestPod[] = [];
  let agent: ZdsServer;
  let zt: Ztunnel;
  let zt2: Ztunnel | undefined;
  const snapshots: SnapshotResult[][] = [];

  before(async () => {
    assert.equal(
      process.getuid?.(),
      0,
      "these tests need root (network namespaces, setns, SO_MARK)",
    );
    for (let i = 0; i < 4; i++) pods.push(await TestPod.create());
    agent = startAgent();
    agent.on("snapshot", ({ results }) => snapshots.push(results));
  });

  after(async () => {
    await zt2?.shutdown();
    await zt?.shutdown();
    await agent?.close();
    for (const p of pods) await p.destroy().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it("snapshot: three enrolled pods reach ztunnel with their netns, listeners run inside each pod", async () => {
    for (const p of pods.slice(0, 3)) {
      const r = await agent.addPod(p.uid, p.info, p.netnsPath);
      assert.ok(
        !r.ok && r.reason.kind === "no-ztunnel",
        "no ztunnel yet: the pod would be marked pending",
      );
    }
    zt = new Ztunnel();
    await waitFor("both ends ready", () => zt.manager.ready && agent.ready);

    assert.deepEqual(
      snapshots[0]?.map((r) => [r.uid, r.sent, r.outcome.ok]),
      pods.slice(0, 3).map((p) => [p.uid, "add", true]),
    );
    for (const p of pods.slice(0, 3)) {
      const ls = await p.listening();
      for (const port of [15001, 15006, 15008]) {
        const l = ls.find((x) => x.proto === "tcp" && x.local === `0.0.0.0:${port}`);
        assert.ok(l, `${p.name} listens on 0.0.0.0:${port}: ${JSON.stringify(ls)}`);
        assert.equal(l.mark, "0x539", `fwmark of ${port}`);
      }
      for (const port of [15001, 15006, 15008]) {
        assert.ok(
          ls.some((x) => x.local === `[::]:${port}` && x.mark === "0x539"),
          `[::]:${port} (the pod has IPv6)`,
        );
      }
      assert.ok(
        ls.some((x) => x.proto === "udp" && x.local === "127.0.0.1:15053" && x.mark === "0x539"),
      );
      assert.ok(ls.some((x) => x.proto === "tcp" && x.local === "127.0.0.1:15053"));
      assert.equal(await p.connect(p.ip, 15008), `proxy ${p.uid} inbound`);
      assert.equal(await p.connect("127.0.0.1", 15001), `proxy ${p.uid} outbound`);
      assert.equal(await p.connect("::1", 15006), `proxy ${p.uid} inbound-plaintext`);
    }
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(zt.state.workloadState()).map(([uid, e]) => [uid, e.state]),
      ),
      Object.fromEntries(pods.slice(0, 3).map((p) => [p.uid, "Up"])),
    );
    assert.deepEqual(zt.state.workloadState()[pods[0]!.uid]?.info, pods[0]!.info);
    assert.equal(await zt.metric("workload_manager_active_proxy_count"), 3);
    assert.equal(await zt.metric("workload_manager_proxies_started_total"), 3);
  });

  it("rollout: a second ztunnel gets the snapshot too; a new pod goes to the newest only; deletes go to both", async () => {
    zt2 = new Ztunnel();
    await waitFor("second ztunnel ready", () => zt2!.manager.ready);
    await waitFor("agent ready for the newest", () => agent.ready && agent.connectionCount === 2);
    assert.equal(zt2.proxies.started, 3, "SO_REUSEPORT lets both ztunnels listen in each pod");

    const p4 = pods[3]!;
    const r = await agent.addPod(p4.uid, p4.info, p4.netnsPath);
    assert.deepEqual(r, { ok: true, value: undefined });
    assert.ok(zt2.proxies.running.has(p4.uid), "the newest ztunnel runs the new pod");
    assert.ok(!zt.proxies.running.has(p4.uid), "the older one was not asked");

    const del = await agent.removePod(pods[2]!.uid);
    assert.deepEqual(del, { ok: true, value: undefined });
    await zt.state.stopped();
    await zt2.state.stopped();
    assert.ok(!zt.proxies.running.has(pods[2]!.uid));
    assert.ok(!zt2.proxies.running.has(pods[2]!.uid));

    // The new ztunnel leaves again (its pods stay with the agent and the first ztunnel).
    await zt2.shutdown();
    await waitFor("second ztunnel gone", () => agent.connectionCount === 1);
    zt2 = undefined;
  });

  it("delete: the proxy stops, its listeners go and every fd of the pod is closed", async () => {
    const p3 = pods[2]!;
    const before = fdCount();
    assert.ok((await agent.addPod(p3.uid, p3.info, p3.netnsPath)).ok);
    assert.ok(fdCount() > before, "the pod holds fds on both sides while enrolled");
    assert.equal(await p3.connect(p3.ip, 15006), `proxy ${p3.uid} inbound-plaintext`);
    assert.ok((await agent.removePod(p3.uid)).ok);
    await zt.state.stopped();
    assert.equal(
      fdCount(),
      before,
      "agent's netns fd, ztunnel's netns fd, the listeners: all closed",
    );
    assert.deepEqual(await p3.listening(), []);
  });

  it("ztunnel restart: a new client gets the snapshot again; pods removed meanwhile are torn down, the rest kept", async () => {
    await zt.manager.close(); // the connection goes; the proxies stay
    await waitFor("agent sees the disconnect", () => !agent.connected);
    const gone = pods[1]!;
    assert.ok((await agent.removePod(gone.uid)).ok, "no ztunnel: nothing to tell");
    const startedBefore = zt.proxies.started;

    zt.connect();
    await waitFor("ztunnel ready again", () => zt.manager.ready && agent.ready);
    await zt.state.stopped();
    // pods[3] came to the agent while the second ztunnel was newest: this one gets it now.
    assert.deepEqual(zt.state.activeUids().sort(), [pods[0]!.uid, pods[3]!.uid].sort());
    assert.equal(
      zt.proxies.started,
      startedBefore + 1,
      "only pods[3] started; pods[0]'s proxy was kept",
    );
    assert.deepEqual(await gone.listening(), []);
    assert.equal(await pods[0]!.connect(pods[0]!.ip, 15008), `proxy ${pods[0]!.uid} inbound`);
  });

  it("agent restart: pods it has no netns for are sent as keep and their proxies stay", async () => {
    const p4 = pods[3]!;
    await agent.close();
    await waitFor("ztunnel notices", () => !zt.manager.connected);
    assert.equal(zt.manager.ready, false, "not ready without the agent");

    agent = startAgent();
    agent.on("snapshot", ({ results }) => snapshots.push(results));
    agent.keepPod(pods[0]!.uid); // known from the pod's annotation, netns not found
    // pods[3] is not known to the restarted agent: its proxy goes.
    const startedBefore = zt.proxies.started;
    await waitFor(
      "ztunnel reconnected and both ends ready",
      () => zt.manager.ready && agent.ready,
      10_000,
    );
    await zt.state.stopped();
    assert.deepEqual(
      snapshots.at(-1)?.map((r) => [r.uid, r.sent, r.outcome.ok]),
      [[pods[0]!.uid, "keep", true]],
    );
    assert.deepEqual(zt.state.activeUids(), [pods[0]!.uid]);
    assert.equal(zt.proxies.started, startedBefore);
    assert.equal(await pods[0]!.connect(pods[0]!.ip, 15008), `proxy ${pods[0]!.uid} inbound`);
    assert.deepEqual(await p4.listening(), []);
  });
});

describe("ZDS: proxy start failure and retry", { concurrency: false }, () => {
  it("answers the add with the error, the pod stays pending, the retry 5 s later succeeds", async () => {
    // Hand-driven timers for ztunnel so "5 s later" takes no time.
    const timers = new ManualTimers();
    const ownDir = mkdtempSync(join(tmpdir(), "amb-zds-it-"));
    const path = join(ownDir, "ztunnel.sock");
    const proxies = new TestProxies();
    const state = new InpodStateManager({
      startProxy: proxies.start,
      log: memoryLogger("inpod").log,
    });
    let pod: TestPod | undefined;
    let agent: ZdsServer | undefined;
    let manager: WorkloadManager | undefined;
    try {
      pod = await TestPod.create();
      agent = ZdsServer.listen({ path, log: memoryLogger("zds").log });
      manager = WorkloadManager.start({ state, path, timers, log: memoryLogger("inpod").log });
      const [m, a, p] = [manager, agent, pod];
      await waitFor("ready", () => m.ready && a.ready);
      proxies.failing.add(p.uid);
      const r = await a.addPod(p.uid, p.info, p.netnsPath);
      assert.ok(!r.ok && r.reason.kind === "ack-error", "the agent marks the pod pending");
      assert.match(
        !r.ok ? r.reason.message : "",
        /failed to start the proxy for pod .*: test proxy for .* refuses to start/,
      );
      assert.equal(m.ready, false);
      assert.deepEqual(state.workloadState()[p.uid]?.state, "Pending");
      assert.deepEqual(timers.armed(), [5000]);

      proxies.failing.delete(p.uid);
      await timers.advance(5000);
      await waitFor("ready after the retry", () => m.ready);
      assert.deepEqual(state.workloadState()[p.uid]?.state, "Up");
      assert.equal(await p.connect(p.ip, 15008), `proxy ${p.uid} inbound`);
    } finally {
      await manager?.close();
      await state.drain();
      await agent?.close();
      await pod?.destroy();
      rmSync(ownDir, { recursive: true, force: true });
    }
  });
});

describe("in-pod sockets for the proxy", { concurrency: false }, () => {
  let pod: TestPod;
  let netns: number;

  before(async () => {
    pod = await TestPod.create();
    netns = openNetns(pod.netnsPath);
  });

  after(async () => {
    closeFd(netns);
    await pod.destroy();
  });

  it("connectFromPod: a marked TCP connection made inside the pod", async () => {
    // A plain app in the pod, listening on its own address.
    const { fd } = createNetnsSocket({
      netns,
      protocol: "tcp",
      family: 4,
      bind: { address: pod.ip, port: 8080 },
      listen: { backlog: 16 },
    });
    const peers: string[] = [];
    const app = createServer((s) => {
      peers.push(s.remoteAddress ?? "");
      s.end("hello from the app");
    });
    await new Promise<void>((r) => app.listen({ fd }, r));
    try {
      const socket = connectFromPod(netns, pod.ip, 8080);
      const got = await new Promise<string>((resolve, reject) => {
        let data = "";
        socket.on("error", reject);
        socket.on("connect", () => {
          assert.equal(getMark(socketFd(socket)), 1337, "SO_MARK 0x539");
        });
        socket.on("data", (d: Buffer) => (data += d.toString()));
        socket.on("end", () => {
          socket.end();
          resolve(data);
        });
      });
      assert.equal(got, "hello from the app");
      assert.deepEqual(peers, [pod.ip], "the connection came from inside the pod");
    } finally {
      await new Promise((r) => app.close(r));
    }
  });

  it("the DNS listener answers UDP on 127.0.0.1:15053 inside the pod", async () => {
    const before = fdCount();
    const proxies = new TestProxies();
    const h = await proxies.start({ uid: "dns", workloadInfo: pod.info, netnsFd: netns });
    try {
      const out = await pod.exec("python3", [
        "-c",
        "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5); s.sendto(b'ping', ('127.0.0.1', 15053)); print(s.recvfrom(64)[0].decode())",
      ]);
      assert.equal(out.trim(), "ping");
    } finally {
      await h.stop("immediate");
    }
    assert.equal(fdCount(), before);
  });

  it("is all or nothing: a port already taken fails the whole set and leaves no fd", async () => {
    const first = await createInpodListeners(netns, {
      outbound: (s) => s.destroy(),
      inboundPlaintext: (s) => s.destroy(),
      inbound: (s) => s.destroy(),
    });
    const before = fdCount();
    await assert.rejects(
      createInpodListeners(
        netns,
        {
          outbound: (s) => s.destroy(),
          inboundPlaintext: (s) => s.destroy(),
          inbound: (s) => s.destroy(),
        },
        { reusePort: false },
      ),
      (err: Error & { code?: string }) =>
        err.code === "EADDRINUSE" && /0\.0\.0\.0:15001/.test(err.message),
    );
    assert.equal(fdCount(), before);
    await first.close();
    await first.close(); // idempotent
    assert.deepEqual(await pod.listening(), []);
  });
});
