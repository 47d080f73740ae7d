/**
 * ZDS against misbehaving peers over real SEQPACKET sockets, and fd hygiene under load:
 * - a hand-driven agent sends ztunnel's WorkloadManager protocol violations (second
 *   snapshot_sent, keep after the snapshot, an fd on del, two fds on add, an oversized message):
 *   each is answered with a clear Ack error, the connection is dropped and re-made, no fd leaks;
 * - hand-driven ztunnels send the agent's ZdsServer a bad hello, an fd, an oversized Ack, an
 *   unasked message: each connection is dropped with a logged reason, the server carries on;
 * - 200 add/del cycles through both real ends into a real pod namespace leak no fd.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  CURRENT_NETNS_PATH,
  SeqpacketServer,
  SeqpacketSocket,
  closeFd,
  openNetns,
} from "../../src/lib/net/index.ts";
import {
  decodeAck,
  decodeHello,
  decodeRequest,
  encodeAck,
  encodeHello,
  encodeRequest,
  type ZdsRequest,
} from "../../src/lib/zds/index.ts";
import { ZdsServer } from "../../src/node-agent/zds/index.ts";
import { InpodStateManager, WorkloadManager } from "../../src/ztunnel/inpod/index.ts";
import { TestPod, TestProxies, fdCount, memoryLogger, waitFor } from "./zds-fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "amb-zds-proto-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const newPath = (): string => join(dir, `zds-${n++}.sock`);

function bytes(request: ZdsRequest): Uint8Array {
  const r = encodeRequest(request);
  assert.ok(r.ok);
  return r.value;
}

describe("ztunnel's WorkloadManager against a misbehaving agent", { concurrency: false }, () => {
  let server: SeqpacketServer;
  let state: InpodStateManager;
  let manager: WorkloadManager;
  let conn: SeqpacketSocket | undefined;
  const proxies = new TestProxies();
  const info = { name: "p", namespace: "ns", serviceAccount: "sa" };
  let pod: TestPod;

  /** Takes ztunnel's next connection and its hello. */
  async function accept(): Promise<SeqpacketSocket> {
    const c = await server.accept({ timeoutMs: 5000 });
    const hello = await c.receive({ timeoutMs: 5000, maxBytes: 1024 });
    assert.ok(hello !== null);
    assert.deepEqual(decodeHello(hello), { ok: true, value: { version: 1 } });
    conn = c;
    return c;
  }

  /** Sends a packet and returns ztunnel's Ack text. */
  async function send(data: Uint8Array, fds: number[] = []): Promise<string> {
    await conn!.send(data, fds, { timeoutMs: 5000 });
    const p = await conn!.receive({ timeoutMs: 5000, maxBytes: 1024 });
    assert.ok(p !== null, "ztunnel closed without answering");
    const ack = decodeAck(p);
    assert.ok(ack.ok, ack.ok ? "" : ack.reason);
    return ack.value.error;
  }

  async function sendWithNetns(data: Uint8Array, count = 1): Promise<string> {
    const fds = Array.from({ length: count }, () => openNetns(pod.netnsPath));
    try {
      return await send(data, fds);
    } finally {
      for (const fd of fds) closeFd(fd);
    }
  }

  before(async () => {
    assert.equal(process.getuid?.(), 0, "these tests need root");
    pod = await TestPod.create();
    server = SeqpacketServer.listen(newPath());
    state = new InpodStateManager({ startProxy: proxies.start, log: memoryLogger("inpod").log });
    manager = WorkloadManager.start({ state, path: server.path, log: memoryLogger("inpod").log });
    await accept();
    assert.equal(await sendWithNetns(bytes({ kind: "add", uid: pod.uid, info })), "");
    assert.equal(await send(bytes({ kind: "snapshot-sent" })), "");
    await waitFor("ready", () => manager.ready);
  });

  after(async () => {
    await manager?.close();
    await state?.drain();
    conn?.close();
    server?.close();
    await pod?.destroy();
  });

  const cases: [string, () => Promise<string>, RegExp][] = [
    [
      "a second snapshot_sent",
      () => send(bytes({ kind: "snapshot-sent" })),
      /^protocol error: a second snapshot_sent/,
    ],
    [
      "keep after the snapshot",
      () => send(bytes({ kind: "keep", uid: "x" })),
      /^protocol error: keep for pod x after the snapshot/,
    ],
    [
      "an fd on del",
      () => sendWithNetns(bytes({ kind: "del", uid: "x" })),
      /^failure to read message: ZDS del for pod x carried 1 fd\(s\); only add may carry one$/,
    ],
    [
      "two fds on add",
      () => sendWithNetns(bytes({ kind: "add", uid: "x", info }), 2),
      /^failure to read message: ZDS request carried more file descriptors than the receiver accepts$/,
    ],
    [
      "a message over 1024 bytes",
      () => send(Buffer.alloc(2000, 0x0a)),
      /^failure to read message: ZDS request was truncated \(2000 bytes, over the 1024-byte ZDS limit\)$/,
    ],
    [
      "bytes that are not protobuf",
      () => send(Uint8Array.from([0x0a, 0x7f])),
      /^failure to read message: ZDS request is not valid protobuf/,
    ],
  ];

  for (const [name, violate, expected] of cases) {
    it(`${name}: a clear Ack error, then a new connection; the proxy and the fds are as before`, async () => {
      const before = fdCount();
      const old = conn!;
      assert.match(await violate(), expected);
      assert.equal(await old.receive({ timeoutMs: 5000 }), null, "ztunnel dropped the connection");
      old.close();
      await accept();
      assert.equal(
        await sendWithNetns(bytes({ kind: "add", uid: pod.uid, info })),
        "",
        "same pod again: kept",
      );
      assert.equal(await send(bytes({ kind: "snapshot-sent" })), "");
      await waitFor("ready again", () => manager.ready);
      assert.deepEqual(state.activeUids(), [pod.uid]);
      assert.equal(proxies.started, 1, "the proxy was never restarted");
      assert.equal(fdCount(), before, "no fd leaked on either end");
    });
  }
});

describe("the agent's ZdsServer against misbehaving ztunnels", { concurrency: false }, () => {
  it("drops each bad connection with a reason and keeps serving good ones", async () => {
    const { log, sink } = memoryLogger("zds");
    const agent = ZdsServer.listen({
      path: newPath(),
      log,
      helloTimeoutMs: 300,
      acceptsPerSecond: 100,
    });
    const netns = openNetns(CURRENT_NETNS_PATH);
    const clients: SeqpacketSocket[] = [];
    const dial = (): SeqpacketSocket => {
      const c = SeqpacketSocket.connect(agent.path);
      clients.push(c);
      return c;
    };
    const ended = async (c: SeqpacketSocket): Promise<boolean> =>
      (await c.receive({ timeoutMs: 5000 })) === null;
    try {
      await agent.addPod(
        "uid-1",
        { name: "a", namespace: "b", serviceAccount: "c" },
        CURRENT_NETNS_PATH,
      );
      const before = fdCount();

      const garbage = dial();
      await garbage.send(Uint8Array.from([0xff]));
      assert.ok(await ended(garbage));

      const withFd = dial();
      await withFd.send(encodeHello(), [netns]);
      assert.ok(await ended(withFd));

      const silent = dial();
      assert.ok(await ended(silent));

      const oversized = dial();
      await oversized.send(encodeHello());
      const add = await oversized.receive({ timeoutMs: 5000, maxFds: 1 });
      for (const fd of add?.fds ?? []) closeFd(fd);
      await oversized.send(Buffer.alloc(2000, 0x0a));
      assert.ok(await ended(oversized));

      const chatty = dial();
      await chatty.send(encodeHello());
      for (;;) {
        const p = await chatty.receive({ timeoutMs: 5000, maxFds: 1 });
        assert.ok(p !== null);
        for (const fd of p.fds) closeFd(fd);
        await chatty.send(encodeAck());
        const r = decodeRequest({ ...p, fds: [] });
        if (r.ok && r.value.kind === "snapshot-sent") break;
      }
      await chatty.send(encodeAck()); // unasked
      assert.ok(await ended(chatty));

      const good = dial();
      await good.send(encodeHello());
      for (;;) {
        const p = await good.receive({ timeoutMs: 5000, maxFds: 1 });
        assert.ok(p !== null);
        for (const fd of p.fds) closeFd(fd);
        await good.send(encodeAck());
        const r = decodeRequest({ ...p, fds: [] });
        if (r.ok && r.value.kind === "snapshot-sent") break;
      }
      await waitFor("agent ready", () => agent.ready);
      assert.equal(agent.connectionCount, 1);

      const text = sink.lines.join("");
      assert.match(text, /ZDS hello from ztunnel is not valid protobuf/);
      assert.match(
        text,
        /ZDS hello from ztunnel carried 1 file descriptor\(s\); it must carry none/,
      );
      assert.match(text, /ztunnel sent no hello within 300 ms/);
      assert.match(
        text,
        /protocol error: ZDS response from ztunnel was truncated \(2000 bytes, over the 1024-byte ZDS limit\)/,
      );
      assert.match(text, /protocol error: ztunnel sent a message without being asked/);
      for (const c of clients) c.close();
      await waitFor("all disconnects seen", () => agent.connectionCount === 0);
      assert.equal(fdCount(), before, "nothing of the bad connections left in the agent");
    } finally {
      for (const c of clients) c.close();
      await agent.close();
      closeFd(netns);
    }
  });
});

describe("fd hygiene", { concurrency: false }, () => {
  it("200 add/del cycles through both ends into a real pod leak no fd", async () => {
    const pod = await TestPod.create();
    const path = newPath();
    const agent = ZdsServer.listen({ path, log: memoryLogger("zds").log });
    const proxies = new TestProxies();
    const state = new InpodStateManager({
      startProxy: proxies.start,
      log: memoryLogger("inpod").log,
    });
    const manager = WorkloadManager.start({ state, path, log: memoryLogger("inpod").log });
    try {
      await waitFor("ready", () => manager.ready && agent.ready);
      const cycle = async (i: number): Promise<void> => {
        const uid = `uid-cycle-${i}`;
        const added = await agent.addPod(
          uid,
          { name: `p${i}`, namespace: "ns", serviceAccount: "sa" },
          pod.netnsPath,
        );
        assert.ok(added.ok, added.ok ? "" : added.reason.message);
        const removed = await agent.removePod(uid);
        assert.ok(removed.ok);
      };
      await cycle(-1); // warm up: pollers, lazily made handles
      await state.stopped();
      const before = fdCount();
      for (let i = 0; i < 200; i++) await cycle(i);
      await state.stopped();
      assert.equal(proxies.started, 201);
      assert.equal(proxies.stopped, 201);
      assert.equal(fdCount(), before);
      assert.deepEqual(await pod.listening(), []);
    } finally {
      await manager.close();
      await state.drain();
      await agent.close();
      await pod.destroy();
    }
  });
});
