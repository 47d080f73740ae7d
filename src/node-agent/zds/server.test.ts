import assert from "node:assert/strict";
import {
  closeSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { LogOutput, MemorySink } from "../../lib/log/index.ts";
import type { MemoryPacketConn } from "../../lib/zds/index.ts";
import {
  MemoryPacketListener,
  decodeRequest,
  encodeAck,
  encodeHello,
  type ReceivedZdsRequest,
} from "../../lib/zds/index.ts";
import { ZdsServer, type ZdsServerEvents } from "./server.ts";
import { type Timers } from "../../lib/timers.ts";
import { ManualTimers, settle } from "../../testing/manual-timers.ts";

// Plain files stand in for pod network namespaces: identity is (dev, ino) either way.
const dir = mkdtempSync(join(tmpdir(), "amb-zds-agent-"));
after(() => rmSync(dir, { recursive: true, force: true }));
function nsPath(name: string): string {
  const p = join(dir, name);
  writeFileSync(p, name);
  return p;
}

const fdCount = (): number => readdirSync("/proc/self/fd").length;
const info = (name: string) => ({ name, namespace: "default", serviceAccount: "sa-" + name });

/** ztunnel's side, by hand: says hello, reads requests, answers Acks. */
class FakeZtunnel {
  readonly conn: MemoryPacketConn;
  constructor(listener: MemoryPacketListener) {
    this.conn = listener.connect();
  }
  hello(): Promise<void> {
    return this.conn.send(encodeHello());
  }
  async next(): Promise<ReceivedZdsRequest> {
    const p = await this.conn.receive({ maxBytes: 1024, maxFds: 1, timeoutMs: 2000 });
    assert.ok(p !== null, "the agent closed the connection");
    const r = decodeRequest(p);
    assert.ok(r.ok, r.ok ? "" : r.reason);
    return r.value;
  }
  ack(error = ""): Promise<void> {
    return this.conn.send(encodeAck(error));
  }
  /** Acks everything up to snapshot_sent; closes the fds it got; returns what was sent. */
  async takeSnapshot(): Promise<string[]> {
    const seen: string[] = [];
    for (;;) {
      const r = await this.next();
      if (r.kind === "add") closeSync(r.netnsFd);
      seen.push(r.kind === "snapshot-sent" ? "snapshot_sent" : `${r.kind} ${r.uid}`);
      await this.ack();
      if (r.kind === "snapshot-sent") return seen;
    }
  }
  async ended(): Promise<boolean> {
    return (await this.conn.receive({ timeoutMs: 2000 })) === null;
  }
}

interface Harness {
  server: ZdsServer;
  listener: MemoryPacketListener;
  sink: MemorySink;
  events: { [K in keyof ZdsServerEvents]?: ZdsServerEvents[K][] };
}

function start(
  opts: { timers?: Timers; ackTimeoutMs?: number; acceptsPerSecond?: number } = {},
): Harness {
  const listener = new MemoryPacketListener();
  const sink = new MemorySink();
  const server = ZdsServer.listen({
    path: "/test/ztunnel.sock",
    listener,
    openNetns: (p) => openSync(p, "r"),
    log: new LogOutput({ sink, spec: { defaultLevel: "debug", scopes: new Map() } }).logger("zds"),
    helloTimeoutMs: 200,
    ackTimeoutMs: opts.ackTimeoutMs ?? 1000,
    acceptsPerSecond: opts.acceptsPerSecond ?? 1000,
    ...(opts.timers === undefined ? {} : { timers: opts.timers }),
  });
  const events: Harness["events"] = {};
  for (const name of ["connect", "disconnect", "snapshot", "ready"] as const) {
    server.on(name, (...args: unknown[]) => {
      ((events[name] ??= []) as unknown[]).push(args);
    });
  }
  return { server, listener, sink, events };
}

async function connected(h: Harness): Promise<FakeZtunnel> {
  const zt = new FakeZtunnel(h.listener);
  await zt.hello();
  return zt;
}

describe("ZdsServer", () => {
  it("sends the snapshot: add with the netns fd, keep without, then snapshot_sent", async () => {
    const before = fdCount();
    const h = start();
    assert.equal((await h.server.addPod("uid-a", info("a"), nsPath("a"))).ok, false);
    await h.server.addPod("uid-b", info("b"), nsPath("b"));
    h.server.keepPod("uid-c");
    assert.equal(h.server.ready, false);

    const zt = await connected(h);
    const first = await zt.next();
    assert.equal(first.kind, "add");
    assert.ok(first.kind === "add");
    assert.deepEqual(first.info, info("a"));
    assert.equal(
      fstatSync(first.netnsFd).ino,
      statSync(join(dir, "a")).ino,
      "the pod's netns arrives",
    );
    closeSync(first.netnsFd);
    await zt.ack();
    assert.deepEqual(await zt.takeSnapshot(), ["add uid-b", "keep uid-c", "snapshot_sent"]);
    await settle();
    assert.equal(h.server.ready, true);
    assert.equal(h.server.connected, true);
    const [snap] = h.events.snapshot![0]!;
    assert.deepEqual(
      snap.results.map((r) => [r.uid, r.sent, r.outcome.ok]),
      [
        ["uid-a", "add", true],
        ["uid-b", "add", true],
        ["uid-c", "keep", true],
      ],
    );
    assert.deepEqual(h.events.ready, [[true]]);

    await h.server.close();
    assert.ok(await zt.ended());
    zt.conn.close();
    assert.equal(fdCount(), before, "every netns fd closed");
  });

  it("addPod resolves when ztunnel Acks, and surfaces an Ack error", async () => {
    const h = start();
    const zt = await connected(h);
    await zt.takeSnapshot();

    const adding = h.server.addPod("uid-1", info("one"), nsPath("one"));
    const r = await zt.next();
    assert.equal(r.kind, "add");
    if (r.kind === "add") closeSync(r.netnsFd);
    await zt.ack();
    assert.deepEqual(await adding, { ok: true, value: undefined });

    const failing = h.server.addPod("uid-2", info("two"), nsPath("two"));
    const r2 = await zt.next();
    if (r2.kind === "add") closeSync(r2.netnsFd);
    await zt.ack("failed to start proxy: EADDRINUSE");
    assert.deepEqual(await failing, {
      ok: false,
      reason: { kind: "ack-error", message: "failed to start proxy: EADDRINUSE" },
    });
    assert.deepEqual(
      h.server.pods().map((p) => p.uid),
      ["uid-1", "uid-2"],
      "a pod ztunnel refused stays enrolled, for the next snapshot",
    );
    await h.server.close();
    zt.conn.close();
  });

  it("says why when there is no ztunnel or no netns", async () => {
    const h = start();
    const none = await h.server.addPod("uid-1", info("one"), nsPath("one"));
    assert.equal(none.ok, false);
    assert.ok(!none.ok && none.reason.kind === "no-ztunnel");
    assert.match(
      !none.ok ? none.reason.message : "",
      /no ztunnel is connected to \/test\/ztunnel\.sock/,
    );
    const missing = await h.server.addPod("uid-2", info("two"), join(dir, "does-not-exist"));
    assert.ok(!missing.ok && missing.reason.kind === "netns");
    assert.deepEqual(
      h.server.pods().map((p) => p.uid),
      ["uid-1"],
    );
    await h.server.close();
    const closed = await h.server.addPod("uid-3", info("three"), nsPath("three"));
    assert.ok(!closed.ok && closed.reason.kind === "closed");
  });

  it("sends adds to the newest connection only and deletes to all", async () => {
    const h = start();
    const old = await connected(h);
    await old.takeSnapshot();
    const young = await connected(h);
    await young.takeSnapshot();
    await settle();
    assert.equal(h.server.connectionCount, 2);

    const adding = h.server.addPod("uid-new", info("new"), nsPath("new"));
    const r = await young.next();
    assert.equal(r.kind, "add");
    if (r.kind === "add") closeSync(r.netnsFd);
    await young.ack();
    assert.ok((await adding).ok);
    await assert.rejects(
      old.conn.receive({ timeoutMs: 50 }),
      { code: "ETIMEDOUT" },
      "the old ztunnel got nothing",
    );

    const removing = h.server.removePod("uid-new");
    for (const zt of [old, young]) {
      assert.deepEqual(await zt.next(), { kind: "del", uid: "uid-new" });
      await zt.ack();
    }
    assert.deepEqual(await removing, { ok: true, value: undefined });
    assert.deepEqual(h.server.pods(), []);
    await h.server.close();
    old.conn.close();
    young.conn.close();
  });

  it("reports a delete that one ztunnel refused, naming the connection", async () => {
    const h = start();
    const zt = await connected(h);
    await zt.takeSnapshot();
    const removing = h.server.removePod("uid-x");
    await zt.next();
    await zt.ack("no such pod");
    const r = await removing;
    assert.ok(!r.ok && r.reason.kind === "ack-error");
    assert.match(!r.ok ? r.reason.message : "", /connection \d+: no such pod/);
    await h.server.close();
    zt.conn.close();
  });

  it("re-sends the pod set as the snapshot of the next connection", async () => {
    const h = start();
    const zt1 = await connected(h);
    await zt1.takeSnapshot();
    const adding = h.server.addPod("uid-1", info("one"), nsPath("one"));
    const r = await zt1.next();
    if (r.kind === "add") closeSync(r.netnsFd);
    await zt1.ack();
    await adding;
    zt1.conn.close(); // ztunnel restarts
    await settle();
    assert.equal(h.server.connected, false);
    assert.equal(h.server.ready, false);
    const [gone] = h.events.disconnect![0]!;
    assert.equal(gone.reason, "ztunnel closed the connection");

    const zt2 = await connected(h);
    assert.deepEqual(await zt2.takeSnapshot(), ["add uid-1", "snapshot_sent"]);
    await settle();
    assert.equal(h.server.ready, true);
    await h.server.close();
    zt2.conn.close();
  });

  it("replacing a pod's netns keeps one fd: the same namespace is not opened twice", async () => {
    const h = start();
    const path = nsPath("same");
    await h.server.addPod("uid-1", info("one"), path);
    const after1 = fdCount();
    await h.server.addPod("uid-1", info("one"), path);
    assert.equal(fdCount(), after1);
    await h.server.addPod("uid-1", info("one"), nsPath("other"));
    assert.equal(fdCount(), after1, "the old netns closed when the pod moved to a new one");
    await h.server.close();
  });

  it("fails a request that gets no Ack in time, keeps the connection, and drops the late Ack", async () => {
    const h = start({ ackTimeoutMs: 50 });
    const zt = await connected(h);
    await zt.takeSnapshot();
    const slow = h.server.addPod("uid-slow", info("slow"), nsPath("slow"));
    const r = await zt.next();
    if (r.kind === "add") closeSync(r.netnsFd);
    const outcome = await slow;
    assert.ok(!outcome.ok && outcome.reason.kind === "timeout");
    assert.match(
      !outcome.ok ? outcome.reason.message : "",
      /did not acknowledge the add for pod uid-slow within 50 ms/,
    );

    await zt.ack(); // the late Ack for uid-slow
    const next = h.server.removePod("uid-slow");
    assert.deepEqual(await zt.next(), { kind: "del", uid: "uid-slow" });
    await zt.ack("the del's own answer");
    const del = await next;
    assert.ok(
      !del.ok && del.reason.message.includes("the del's own answer"),
      "not confused with the late Ack",
    );
    assert.equal(h.server.connected, true);
    await h.server.close();
    zt.conn.close();
  });

  it("closes the connection when a snapshot message gets no Ack in time", async () => {
    const h = start({ ackTimeoutMs: 50 });
    await h.server.addPod("uid-1", info("one"), nsPath("one"));
    const zt = await connected(h);
    const r = await zt.next();
    if (r.kind === "add") closeSync(r.netnsFd);
    assert.ok(await zt.ended());
    await settle();
    assert.match(h.events.disconnect![0]![0].reason, /no Ack for the snapshot's add for pod uid-1/);
    const [snap] = h.events.snapshot![0]!;
    assert.equal(snap.completed, false);
    assert.equal(h.server.ready, false);
    await h.server.close();
    zt.conn.close();
  });

  it("drops a ztunnel that does not say hello, or says something else", async () => {
    const h = start();
    const silent = new FakeZtunnel(h.listener);
    assert.ok(await silent.ended(), "closed after the hello deadline");
    const rude = new FakeZtunnel(h.listener);
    await rude.conn.send(Uint8Array.from([0xff, 0xff]));
    assert.ok(await rude.ended());
    await settle();
    assert.ok(h.sink.lines.some((l) => /ztunnel sent no hello within 200 ms/.test(l)));
    assert.ok(h.sink.lines.some((l) => /ZDS hello from ztunnel is not valid protobuf/.test(l)));
    assert.equal(h.events.connect, undefined, "neither counted as connected");
    await h.server.close();
    silent.conn.close();
    rude.conn.close();
  });

  it("closes a connection whose ztunnel speaks unasked (istio-cni's liveness rule)", async () => {
    const h = start();
    const zt = await connected(h);
    await zt.takeSnapshot();
    await zt.ack();
    assert.ok(await zt.ended());
    await settle();
    assert.equal(
      h.events.disconnect![0]![0].reason,
      "protocol error: ztunnel sent a message without being asked",
    );
    await h.server.close();
    zt.conn.close();
  });

  it("accepts at most acceptsPerSecond connections a second", async () => {
    const timers = new ManualTimers();
    const h = start({ timers, acceptsPerSecond: 5 });
    const clients = [1, 2, 3].map(() => h.listener.connect());
    await settle();
    assert.equal(h.listener.accepted, 1);
    await timers.advance(199);
    assert.equal(h.listener.accepted, 1);
    await timers.advance(1);
    assert.equal(h.listener.accepted, 2);
    await timers.advance(200);
    assert.equal(h.listener.accepted, 3);
    await h.server.close();
    for (const c of clients) c.close();
  });
});
