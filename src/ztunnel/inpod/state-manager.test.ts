import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { Registry } from "prom-client";
import { LogOutput, MemorySink } from "../../lib/log/index.ts";
import { NetnsHandle } from "../../lib/zds/index.ts";
import { createInpodMetrics } from "./metrics.ts";
import { InpodStateManager, type StartProxyRequest, type StopMode } from "./state-manager.ts";

// Plain files stand in for pod network namespaces: identity is (dev, ino) either way.
const dir = mkdtempSync(join(tmpdir(), "amb-zds-state-"));
after(() => rmSync(dir, { recursive: true, force: true }));
function nsFd(name: string): number {
  const p = join(dir, name);
  writeFileSync(p, name);
  return openSync(p, "r");
}

const info = (name: string) => ({ name, namespace: "ns", serviceAccount: "sa" });

class Fixture {
  readonly started: StartProxyRequest[] = [];
  readonly stops: { uid: string; mode: StopMode }[] = [];
  /** Uids whose proxy fails to start. */
  readonly failing = new Set<string>();
  /** fds the manager closed, in order. */
  readonly closed: number[] = [];
  readonly registry = new Registry();
  readonly sink = new MemorySink();
  /** Set to hold stop() open until released. */
  stopGate: Promise<void> | undefined;
  readonly state: InpodStateManager;

  constructor() {
    this.state = new InpodStateManager({
      startProxy: (req) => {
        if (this.failing.has(req.uid)) return Promise.reject(new Error("bind 15008: EADDRINUSE"));
        this.started.push(req);
        return Promise.resolve({
          stop: async (mode: StopMode) => {
            await this.stopGate;
            this.stops.push({ uid: req.uid, mode });
          },
          connections: () => ({ inbound: 1 }),
        });
      },
      metrics: createInpodMetrics(this.registry),
      log: new LogOutput({ sink: this.sink }).logger("inpod"),
      adoptNetns: (fd) =>
        NetnsHandle.adopt(fd, (f) => {
          this.closed.push(f);
          closeSync(f);
        }),
    });
  }

  add(uid: string, fd: number) {
    return this.state.handle({ kind: "add", uid, info: info(uid), netnsFd: fd });
  }

  async metric(name: string): Promise<number> {
    const text = await this.registry.getSingleMetricAsString(name);
    const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
    assert.ok(m, `${name} in\n${text}`);
    return Number(m[1]);
  }
}

describe("InpodStateManager", () => {
  it("starts a proxy per add with the pod's netns fd, and reports it Up", async () => {
    const f = new Fixture();
    const fd = nsFd("a");
    assert.deepEqual(await f.add("uid-a", fd), { kind: "ok" });
    assert.deepEqual(f.started, [{ uid: "uid-a", workloadInfo: info("uid-a"), netnsFd: fd }]);
    assert.deepEqual(f.state.workloadState(), {
      "uid-a": { state: "Up", info: info("uid-a"), connections: { inbound: 1 } },
    });
    assert.equal(await f.metric("workload_manager_active_proxy_count"), 1);
    assert.equal(await f.metric("workload_manager_proxies_started_total"), 1);
    assert.deepEqual(f.closed, [], "the proxy's fd stays open while it runs");
  });

  it("treats an add for the same namespace as a no-op and closes the duplicate fd", async () => {
    const f = new Fixture();
    const first = nsFd("a");
    await f.add("uid-a", first);
    const dup = nsFd("a");
    assert.deepEqual(await f.add("uid-a", dup), { kind: "ok" });
    assert.equal(f.started.length, 1);
    assert.deepEqual(f.closed, [dup]);
  });

  it("replaces the proxy when the pod comes back with a new namespace", async () => {
    const f = new Fixture();
    const oldFd = nsFd("a");
    await f.add("uid-a", oldFd);
    const newFd = nsFd("a2");
    await f.add("uid-a", newFd);
    await f.state.stopped();
    assert.deepEqual(f.stops, [{ uid: "uid-a", mode: "immediate" }]);
    assert.deepEqual(f.closed, [oldFd]);
    assert.equal(f.started.at(-1)?.netnsFd, newFd);
    assert.equal(await f.metric("workload_manager_proxies_stopped_total"), 1);
  });

  it("keeps a failed proxy pending with its fd, then retries it", async () => {
    const f = new Fixture();
    f.failing.add("uid-a");
    const fd = nsFd("a");
    const outcome = await f.add("uid-a", fd);
    assert.equal(outcome.kind, "proxy-error");
    assert.match(
      outcome.kind === "proxy-error" ? outcome.message : "",
      /failed to start the proxy for pod uid-a: bind 15008: EADDRINUSE/,
    );
    assert.deepEqual(f.state.workloadState(), {
      "uid-a": { state: "Pending", info: info("uid-a") },
    });
    assert.equal(await f.metric("workload_manager_pending_proxy_count"), 1);
    await f.state.handle({ kind: "snapshot-sent" });
    assert.equal(f.state.ready, false, "not ready while a proxy is pending");

    await f.state.retryPending();
    assert.equal(f.state.pendingCount, 1, "still failing");
    f.failing.delete("uid-a");
    await f.state.retryPending();
    assert.equal(f.state.pendingCount, 0);
    assert.equal(f.started[0]?.netnsFd, fd, "retried with the fd that came with the add");
    assert.equal(f.state.ready, true);
    assert.equal(await f.metric("workload_manager_pending_proxy_count"), 0);
    assert.deepEqual(f.closed, []);
  });

  it("stops the proxy on del and closes its fd after it stopped", async () => {
    const f = new Fixture();
    await f.state.handle({ kind: "snapshot-sent" });
    const fd = nsFd("a");
    await f.add("uid-a", fd);
    let release!: () => void;
    f.stopGate = new Promise((r) => (release = r));
    assert.deepEqual(await f.state.handle({ kind: "del", uid: "uid-a" }), { kind: "ok" });
    assert.deepEqual(f.state.workloadState(), {});
    assert.deepEqual(f.closed, [], "not while the proxy may still use it");
    release();
    await f.state.stopped();
    assert.deepEqual(f.stops, [{ uid: "uid-a", mode: "immediate" }]);
    assert.deepEqual(f.closed, [fd]);
  });

  it("tears down proxies the snapshot does not name, keeps the ones it does", async () => {
    const f = new Fixture();
    const fds = { a: nsFd("a"), b: nsFd("b"), c: nsFd("c") };
    for (const [k, fd] of Object.entries(fds)) await f.add(`uid-${k}`, fd);
    await f.state.handle({ kind: "snapshot-sent" });

    // A new connection: the agent knows a (with netns) and b (keep), not c.
    await f.state.connectionStarted();
    assert.equal(f.state.ready, false);
    const aAgain = nsFd("a");
    await f.add("uid-a", aAgain);
    await f.state.handle({ kind: "keep", uid: "uid-b" });
    await f.state.handle({ kind: "snapshot-sent" });
    await f.state.stopped();
    assert.deepEqual(f.stops, [{ uid: "uid-c", mode: "immediate" }]);
    assert.deepEqual(f.state.activeUids().sort(), ["uid-a", "uid-b"]);
    assert.deepEqual(f.closed.sort(), [fds.c, aAgain].sort());
    assert.equal(f.started.length, 3, "no proxy restarted");
    assert.equal(f.state.ready, true);
  });

  it("a del before snapshot_sent takes the pod out of the snapshot", async () => {
    const f = new Fixture();
    await f.add("uid-a", nsFd("a"));
    await f.state.handle({ kind: "snapshot-sent" });
    await f.state.connectionStarted();
    await f.add("uid-a", nsFd("a"));
    await f.state.handle({ kind: "del", uid: "uid-a" });
    await f.state.handle({ kind: "snapshot-sent" });
    await f.state.stopped();
    assert.deepEqual(f.state.activeUids(), []);
  });

  it("refuses keep after the snapshot and a second snapshot_sent", async () => {
    const f = new Fixture();
    await f.state.handle({ kind: "snapshot-sent" });
    const keep = await f.state.handle({ kind: "keep", uid: "uid-a" });
    assert.equal(keep.kind, "protocol-error");
    assert.match(
      keep.kind === "protocol-error" ? keep.message : "",
      /keep for pod uid-a after the snapshot/,
    );
    const again = await f.state.handle({ kind: "snapshot-sent" });
    assert.deepEqual(again, {
      kind: "protocol-error",
      message: "a second snapshot_sent on one connection",
    });
  });

  it("drops pending proxies (closing their fds) when a new connection starts", async () => {
    const f = new Fixture();
    f.failing.add("uid-a");
    const fd = nsFd("a");
    await f.add("uid-a", fd);
    await f.state.connectionStarted();
    assert.equal(f.state.pendingCount, 0);
    assert.deepEqual(f.closed, [fd]);
    assert.deepEqual(f.state.workloadState(), {});
  });

  it("a del for a pending pod drops it and closes its fd", async () => {
    const f = new Fixture();
    await f.state.handle({ kind: "snapshot-sent" });
    f.failing.add("uid-a");
    const fd = nsFd("a");
    await f.add("uid-a", fd);
    await f.state.handle({ kind: "del", uid: "uid-a" });
    assert.deepEqual(f.closed, [fd]);
    assert.equal(f.state.ready, true);
  });

  it("drains gracefully at shutdown and then refuses adds, closing their fds", async () => {
    const f = new Fixture();
    const a = nsFd("a");
    await f.add("uid-a", a);
    f.failing.add("uid-b");
    const b = nsFd("b");
    await f.add("uid-b", b);
    await f.state.drain();
    assert.deepEqual(f.stops, [{ uid: "uid-a", mode: "graceful" }]);
    assert.deepEqual(f.closed.sort(), [a, b].sort());
    const late = nsFd("c");
    const r = await f.add("uid-c", late);
    assert.equal(r.kind, "protocol-error");
    assert.ok(f.closed.includes(late));
  });

  it("closes every fd exactly once over many add/del cycles", async () => {
    const f = new Fixture();
    await f.state.handle({ kind: "snapshot-sent" });
    const given: number[] = [];
    for (let i = 0; i < 100; i++) {
      const fd = nsFd(`p${i % 3}`);
      given.push(fd);
      await f.add(`uid-${i % 3}`, fd);
      if (i % 2 === 1) await f.state.handle({ kind: "del", uid: `uid-${i % 3}` });
    }
    for (const uid of f.state.activeUids()) await f.state.handle({ kind: "del", uid });
    await f.state.stopped();
    // fd numbers get reused, so count: every fd handed in was closed once.
    assert.equal(f.closed.length, given.length);
  });
});
