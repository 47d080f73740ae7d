import assert from "node:assert/strict";
import { mkdtempSync, openSync, readdirSync, rmSync, writeFileSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { LogOutput, MemorySink } from "../../lib/log/index.ts";
import {
  MemoryPacketListener,
  decodeAck,
  decodeHello,
  encodeRequest,
  type PacketConn,
  type ZdsRequest,
} from "../../lib/zds/index.ts";
import { InpodStateManager, type StopMode } from "./state-manager.ts";
import { WorkloadManager } from "./workload-manager.ts";
import { ManualTimers, settle } from "../../testing/manual-timers.ts";

const dir = mkdtempSync(join(tmpdir(), "amb-zds-wm-"));
after(() => rmSync(dir, { recursive: true, force: true }));
function nsFd(name: string): number {
  const p = join(dir, name);
  writeFileSync(p, name);
  return openSync(p, "r");
}
const fdCount = (): number => readdirSync("/proc/self/fd").length;
const info = (name: string) => ({ name, namespace: "ns", serviceAccount: "sa" });

/** The node agent's side, by hand. */
class FakeAgent {
  readonly listener = new MemoryPacketListener();
  conn: PacketConn | undefined;

  /** Accepts the next connection and checks its hello. */
  async accept(): Promise<PacketConn> {
    const conn = await this.listener.accept({ timeoutMs: 2000 });
    const hello = await conn.receive({ timeoutMs: 2000 });
    assert.ok(hello !== null);
    assert.deepEqual(decodeHello(hello), { ok: true, value: { version: 1 } });
    this.conn = conn;
    return conn;
  }

  /** Sends a request (an add takes a fresh fd for `ns`) and returns the Ack's error text. */
  async request(request: ZdsRequest, fds: number[] = []): Promise<string> {
    const bytes = encodeRequest(request);
    assert.ok(bytes.ok);
    return this.raw(bytes.value, fds);
  }

  async raw(bytes: Uint8Array, fds: number[] = []): Promise<string> {
    const conn = this.conn!;
    await conn.send(bytes, fds);
    for (const fd of fds) closeSync(fd); // the receiver has its own now
    const p = await conn.receive({ timeoutMs: 2000 });
    assert.ok(p !== null, "ztunnel closed instead of answering");
    const ack = decodeAck(p);
    assert.ok(ack.ok, ack.ok ? "" : ack.reason);
    return ack.value.error;
  }

  add(uid: string, ns = uid): Promise<string> {
    return this.request({ kind: "add", uid, info: info(uid) }, [nsFd(ns)]);
  }

  async ended(): Promise<boolean> {
    return (await this.conn!.receive({ timeoutMs: 2000 })) === null;
  }
}

class Fixture {
  readonly agent = new FakeAgent();
  readonly timers = new ManualTimers();
  readonly sink = new MemorySink();
  readonly failing = new Set<string>();
  readonly stops: { uid: string; mode: StopMode }[] = [];
  started = 0;
  connects = 0;
  /** Connection attempts fail while this is positive. */
  refuse = 0;
  readonly state: InpodStateManager;
  readonly manager: WorkloadManager;
  readonly readiness: boolean[] = [];

  constructor(refuse = 0) {
    this.refuse = refuse;
    const log = new LogOutput({ sink: this.sink }).logger("inpod");
    this.state = new InpodStateManager({
      startProxy: (req) => {
        if (this.failing.has(req.uid)) return Promise.reject(new Error("bind 15001: EADDRINUSE"));
        this.started++;
        return Promise.resolve({
          stop: (mode: StopMode) => {
            this.stops.push({ uid: req.uid, mode });
            return Promise.resolve();
          },
        });
      },
      log,
    });
    this.manager = WorkloadManager.start({
      state: this.state,
      path: "/test/ztunnel.sock",
      connect: () => {
        this.connects++;
        if (this.refuse > 0) {
          this.refuse--;
          throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
        }
        return this.agent.listener.connect();
      },
      timers: this.timers,
      log,
    });
    this.manager.on("ready", (r) => this.readiness.push(r));
  }

  async close(): Promise<void> {
    this.agent.listener.close();
    await this.manager.close();
    await this.state.drain();
    this.agent.conn?.close();
  }
}

describe("WorkloadManager", () => {
  it("says hello, takes the snapshot, Acks each request, and becomes ready", async () => {
    const f = new Fixture();
    await f.agent.accept();
    assert.equal(f.manager.connected, true);
    assert.equal(f.manager.ready, false);
    assert.equal(await f.agent.add("uid-a"), "");
    assert.equal(await f.agent.add("uid-b"), "");
    assert.equal(f.manager.ready, false, "not before snapshot_sent");
    assert.equal(await f.agent.request({ kind: "snapshot-sent" }), "");
    await settle();
    assert.equal(f.manager.ready, true);
    assert.deepEqual(f.readiness, [true]);
    assert.deepEqual(f.state.activeUids().sort(), ["uid-a", "uid-b"]);
    await f.close();
  });

  it("answers a proxy failure with the error, retries 5 s later, then is ready", async () => {
    const f = new Fixture();
    await f.agent.accept();
    f.failing.add("uid-a");
    const error = await f.agent.add("uid-a");
    assert.match(error, /failed to start the proxy for pod uid-a: bind 15001: EADDRINUSE/);
    assert.equal(await f.agent.request({ kind: "snapshot-sent" }), "");
    await settle();
    assert.equal(f.manager.ready, false);
    assert.equal(f.manager.connected, true, "a proxy failure keeps the connection");
    assert.deepEqual(f.timers.armed(), [5000]);

    await f.timers.advance(5000);
    assert.equal(f.manager.ready, false, "still failing");
    assert.deepEqual(f.timers.armed(), [5000], "retried again later");
    f.failing.delete("uid-a");
    await f.timers.advance(5000);
    assert.equal(f.manager.ready, true);
    assert.deepEqual(f.state.workloadState()["uid-a"]?.state, "Up");
    assert.deepEqual(f.timers.armed(), []);
    await f.close();
  });

  for (const [name, violate, expected] of [
    [
      "a second snapshot_sent",
      (a: FakeAgent) => a.request({ kind: "snapshot-sent" }),
      /^protocol error: a second snapshot_sent on one connection$/,
    ],
    [
      "keep after the snapshot",
      (a: FakeAgent) => a.request({ kind: "keep", uid: "uid-a" }),
      /^protocol error: keep for pod uid-a after the snapshot/,
    ],
    [
      "an fd on del",
      (a: FakeAgent) => a.request({ kind: "del", uid: "uid-a" }, [nsFd("stray")]),
      /^failure to read message: ZDS del for pod uid-a carried 1 fd\(s\); only add may carry one$/,
    ],
    [
      "an oversized message",
      (a: FakeAgent) => a.raw(new Uint8Array(2000).fill(0x0a)),
      /^failure to read message: ZDS request was truncated \(2000 bytes, over the 1024-byte ZDS limit\)$/,
    ],
    [
      "an add without its fd",
      (a: FakeAgent) => a.request({ kind: "add", uid: "uid-x", info: info("x") }),
      /came without the pod's netns fd/,
    ],
  ] as const) {
    it(`answers ${name} with a clear error, reconnects after a backoff, keeps the proxies`, async () => {
      const f = new Fixture();
      await f.agent.accept();
      await f.agent.add("uid-a");
      await f.agent.request({ kind: "snapshot-sent" });
      await settle();
      const fds = fdCount();
      assert.match(await violate(f.agent), expected);
      assert.ok(await f.agent.ended(), "the connection is dropped");
      await settle();
      assert.equal(fdCount(), fds, "no fd left behind");
      assert.equal(f.manager.ready, false);
      assert.deepEqual(f.timers.armed(), [10], "reconnects after the first backoff step");
      assert.equal(f.agent.listener.accepted, 1);
      await f.timers.advance(10);
      await f.agent.accept();
      assert.deepEqual(f.state.activeUids(), ["uid-a"], "the running proxy survived");
      assert.equal(await f.agent.add("uid-a"), "", "same namespace: kept");
      assert.equal(await f.agent.request({ kind: "snapshot-sent" }), "");
      assert.equal(f.started, 1);
      assert.deepEqual(f.stops, []);
      assert.ok(f.sink.lines.some((l) => l.includes("ZDS connection to the node agent failed")));
      await f.close();
    });
  }

  it("reconnects at once when the agent closes, and is not ready meanwhile", async () => {
    const f = new Fixture();
    await f.agent.accept();
    await f.agent.request({ kind: "snapshot-sent" });
    await settle();
    assert.equal(f.manager.ready, true);
    f.agent.conn!.close();
    await f.agent.accept();
    assert.deepEqual(f.readiness, [true, false]);
    await f.agent.request({ kind: "snapshot-sent" });
    await settle();
    assert.equal(f.manager.ready, true);
    await f.close();
  });

  it("retries connecting 10 ms, doubling to 15 s", async () => {
    const f = new Fixture(13);
    const delays: number[] = [];
    for (let i = 0; i < 13; i++) {
      await settle();
      const [d] = f.timers.armed();
      assert.ok(d !== undefined);
      delays.push(d);
      await f.timers.advance(d);
    }
    assert.deepEqual(
      delays,
      [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 15000, 15000],
    );
    await f.agent.accept();
    assert.equal(f.connects, 14);
    await f.close();
  });

  it("close() stops reconnecting and leaves the proxies to the state", async () => {
    const f = new Fixture();
    await f.agent.accept();
    await f.agent.add("uid-a");
    await f.manager.close();
    assert.ok(await f.agent.ended());
    assert.equal(f.manager.connected, false);
    assert.deepEqual(f.state.activeUids(), ["uid-a"]);
    await f.state.drain();
    assert.deepEqual(f.stops, [{ uid: "uid-a", mode: "graceful" }]);
    f.agent.conn?.close();
    f.agent.listener.close();
  });
});
