/**
 * SEQPACKET unix sockets from the native addon, as the node agent (server) and ztunnel (client)
 * use them for ZDS: message boundaries, fds passed with SCM_RIGHTS, truncation reported, waiting
 * without blocking the event loop, peer close, errors by errno name, no fd leaks.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, afterEach, beforeEach, describe, it } from "node:test";
import { Worker } from "node:worker_threads";
import { native } from "../../src/lib/net/native.ts";
import {
  CURRENT_NETNS_PATH,
  closeFd,
  netnsId,
  openNetns,
  sameNetns,
  SeqpacketServer,
  SeqpacketSocket,
} from "../../src/lib/net/index.ts";

const dir = mkdtempSync(join(tmpdir(), "amb-nat-seq-"));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function countFds(): number {
  return readdirSync("/proc/self/fd").length;
}

let seq = 0;
function socketPath(): string {
  return join(dir, `zds-${seq++}.sock`);
}

/** A connected pair: `agent` is the accepted (server) end, `ztunnel` the connecting end. */
interface Pair {
  server: SeqpacketServer;
  agent: SeqpacketSocket;
  ztunnel: SeqpacketSocket;
}

async function connectedPair(): Promise<Pair> {
  const server = SeqpacketServer.listen(socketPath());
  const accepting = server.accept({ timeoutMs: 5000 });
  const ztunnel = SeqpacketSocket.connect(server.path);
  return { server, agent: await accepting, ztunnel };
}

function closePair(p: Pair): void {
  p.agent.close();
  p.ztunnel.close();
  p.server.close();
}

describe("SEQPACKET sockets", { concurrency: false }, () => {
  let pair: Pair;
  beforeEach(async () => {
    pair = await connectedPair();
  });
  afterEach(() => {
    closePair(pair);
  });

  it("keeps message boundaries in both directions", async () => {
    const sizes = [1, 1000, 5, 65536];
    for (const [i, n] of sizes.entries()) {
      assert.ok(pair.agent.trySend(Buffer.alloc(n, 97 + i)));
    }
    for (const [i, n] of sizes.entries()) {
      const m = await pair.ztunnel.receive({ timeoutMs: 5000 });
      assert.ok(m !== null);
      assert.equal(m.size, n);
      assert.ok(m.data.equals(Buffer.alloc(n, 97 + i)));
      assert.equal(m.truncated, false);
      assert.deepEqual(m.fds, []);
    }
    await pair.ztunnel.send(Buffer.from("ack"));
    const back = await pair.agent.receive({ timeoutMs: 5000 });
    assert.equal(back?.data.toString(), "ack");
  });

  it("tells who connected (SO_PEERCRED)", () => {
    assert.deepEqual(pair.agent.peerCredentials(), {
      pid: process.pid,
      uid: process.getuid!(),
      gid: process.getgid!(),
    });
  });

  it("passes a netns fd that refers to the same namespace", async () => {
    const ns = openNetns(CURRENT_NETNS_PATH);
    try {
      assert.ok(pair.agent.trySend(Buffer.from("netns"), [ns]));
    } finally {
      closeFd(ns); // the receiver has its own reference now
    }
    const m = await pair.ztunnel.receive({ timeoutMs: 5000 });
    assert.ok(m !== null);
    assert.equal(m.fds.length, 1);
    const got = m.fds[0]!;
    assert.ok(sameNetns(got, CURRENT_NETNS_PATH));
    assert.equal(netnsId(got).ino, statSync(CURRENT_NETNS_PATH, { bigint: true }).ino);
    // Received fds are close-on-exec: FD_CLOEXEC shows in /proc/self/fdinfo as flags with 02000000.
    const flags = /flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${got}`, "utf8"))?.[1];
    assert.ok(flags !== undefined && (parseInt(flags, 8) & 0o2000000) !== 0, `flags ${flags}`);
    closeFd(got);
  });

  it("passes a pipe whose data arrives through the received fd", async () => {
    const fifo = join(dir, `fifo-${seq++}`);
    execFileSync("mkfifo", [fifo]);
    const readEnd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writeEnd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    try {
      // An empty message is allowed when it carries fds.
      assert.ok(pair.agent.trySend(new Uint8Array(0), [readEnd]));
    } finally {
      closeSync(readEnd);
    }
    const m = await pair.ztunnel.receive({ timeoutMs: 5000 });
    assert.ok(m !== null);
    assert.equal(m.size, 0);
    const received = m.fds[0]!;
    writeSync(writeEnd, "through the pipe");
    const buf = Buffer.alloc(64);
    const n = readSync(received, buf, 0, buf.length, null);
    assert.equal(buf.subarray(0, n).toString(), "through the pipe");
    closeSync(writeEnd);
    assert.equal(readSync(received, buf, 0, buf.length, null), 0, "EOF once the writer is gone");
    closeFd(received);
  });

  it("reports an oversized message as truncated and keeps the next one whole", async () => {
    const big = Buffer.alloc(2000, 0x5a);
    assert.ok(pair.agent.trySend(big));
    assert.ok(pair.agent.trySend(Buffer.from("next")));
    const m = await pair.ztunnel.receive({ maxBytes: 100, timeoutMs: 5000 });
    assert.ok(m !== null);
    assert.equal(m.truncated, true);
    assert.equal(m.size, 2000);
    assert.ok(m.data.equals(big.subarray(0, 100)));
    const next = await pair.ztunnel.receive({ maxBytes: 100, timeoutMs: 5000 });
    assert.equal(next?.data.toString(), "next");
    assert.equal(next?.truncated, false);
  });

  for (const maxFds of [0, 1, 2, 3]) {
    it(`with maxFds ${maxFds}, reports 3 fds as ${maxFds < 3 ? "truncated" : "whole"} and leaks none`, async () => {
      const before = countFds();
      const fds = [0, 1, 2].map(() => openNetns(CURRENT_NETNS_PATH));
      assert.ok(pair.agent.trySend(Buffer.from("three fds"), fds));
      for (const fd of fds) closeFd(fd);
      const m = await pair.ztunnel.receive({ maxFds, timeoutMs: 5000 });
      assert.ok(m !== null);
      assert.equal(m.data.toString(), "three fds");
      assert.equal(m.fdsTruncated, maxFds < 3);
      assert.equal(m.fds.length, maxFds);
      for (const fd of m.fds) assert.ok(sameNetns(fd, CURRENT_NETNS_PATH));
      for (const fd of m.fds) closeFd(fd);
      // The fds that did not fit were closed (by the kernel, or by the addon).
      assert.equal(countFds(), before);
    });
  }

  it("waits for a message without blocking the event loop", async () => {
    let ticks = 0;
    const interval = setInterval(() => ticks++, 1);
    try {
      const receiving = pair.ztunnel.receive({ timeoutMs: 10_000 });
      // Five timer turns happen while receive() waits; a blocking wait would allow none.
      for (let i = 0; i < 5; i++) await sleep(5);
      const ticksWhileWaiting = ticks;
      assert.ok(pair.agent.trySend(Buffer.from("late")));
      const m = await receiving;
      assert.equal(m?.data.toString(), "late");
      assert.ok(ticksWhileWaiting >= 1, `interval ran ${ticksWhileWaiting} times during the wait`);
    } finally {
      clearInterval(interval);
    }
  });

  it("sees the peer close, after delivering what it sent before closing", async () => {
    const waiting = pair.agent.receive({ timeoutMs: 5000 });
    assert.ok(pair.ztunnel.trySend(Buffer.from("bye")));
    pair.ztunnel.close();
    assert.equal((await waiting)?.data.toString(), "bye");
    assert.equal(await pair.agent.receive({ timeoutMs: 5000 }), null);
    assert.equal(pair.agent.tryReceive(), "eof");
    assert.throws(() => pair.agent.trySend(Buffer.from("anyone?")), { code: "EPIPE" });
  });

  it("wakes a pending receive with null when the peer closes", async () => {
    const waiting = pair.agent.receive({ timeoutMs: 5000 });
    await sleep(5);
    pair.ztunnel.close();
    assert.equal(await waiting, null);
  });

  it("times out, aborts and refuses after close, with codes", async () => {
    assert.equal(pair.ztunnel.tryReceive(), null);
    await assert.rejects(pair.ztunnel.receive({ timeoutMs: 20 }), { code: "ETIMEDOUT" });
    const ac = new AbortController();
    const aborted = pair.ztunnel.receive({ signal: ac.signal });
    ac.abort();
    await assert.rejects(aborted, { name: "AbortError" });
    // Still usable after both.
    assert.ok(pair.agent.trySend(Buffer.from("still here")));
    assert.equal((await pair.ztunnel.receive({ timeoutMs: 5000 }))?.data.toString(), "still here");

    const pending = pair.ztunnel.receive();
    pair.ztunnel.close();
    await assert.rejects(pending, { code: "ERR_SOCKET_CLOSED" });
    assert.throws(() => pair.ztunnel.trySend(Buffer.from("x")), { code: "ERR_SOCKET_CLOSED" });
  });

  it("refuses an empty message without fds (it would read as end-of-stream)", () => {
    assert.throws(() => pair.agent.trySend(new Uint8Array(0)), { code: "ERR_INVALID_ARG" });
  });

  it("waits for writability when the peer's queue is full", async () => {
    const chunk = Buffer.alloc(4096, 1);
    let sent = 0;
    while (pair.agent.trySend(chunk)) {
      sent++;
      assert.ok(sent < 100_000, "the queue never filled");
    }
    const sending = pair.agent.send(Buffer.from("last"), [], { timeoutMs: 10_000 });
    let drained = 0;
    for (let i = 0; i < sent; i++) {
      const m = await pair.ztunnel.receive({ timeoutMs: 5000 });
      assert.equal(m?.size, 4096);
      drained++;
    }
    await sending;
    assert.equal((await pair.ztunnel.receive({ timeoutMs: 5000 }))?.data.toString(), "last");
    assert.equal(drained, sent);
  });
});

describe("SEQPACKET listening and connecting", () => {
  it("reports ENOENT and ECONNREFUSED by name", () => {
    assert.throws(() => SeqpacketSocket.connect(join(dir, "nobody-here.sock")), {
      code: "ENOENT",
      message: /connecting to SEQPACKET socket .*nobody-here\.sock: connect:/,
    });
    // A socket file nobody listens on: what a crashed node agent leaves behind.
    const stale = socketPath();
    closeFd(native().seqpacketListen(stale, 1));
    assert.throws(() => SeqpacketSocket.connect(stale), { code: "ECONNREFUSED" });
  });

  it("replaces a stale socket file, but not a live server or a regular file", async () => {
    const stale = socketPath();
    closeFd(native().seqpacketListen(stale, 1));
    const server = SeqpacketServer.listen(stale);
    try {
      assert.throws(() => SeqpacketServer.listen(stale), { code: "EADDRINUSE" });
      const accepting = server.accept({ timeoutMs: 5000 });
      const client = SeqpacketSocket.connect(stale);
      (await accepting).close();
      client.close();
    } finally {
      server.close();
    }
    assert.throws(() => statSync(stale), { code: "ENOENT" }, "close removes the socket file");

    const plain = join(dir, `plain-${seq++}`);
    writeFileSync(plain, "keep me");
    assert.throws(() => SeqpacketServer.listen(plain), { code: "EEXIST" });
    assert.equal(readFileSync(plain, "utf8"), "keep me");
  });

  it("sets the socket file mode", () => {
    const server = SeqpacketServer.listen(socketPath(), { mode: 0o600 });
    try {
      assert.equal(statSync(server.path).mode & 0o777, 0o600);
    } finally {
      server.close();
    }
  });

  it("accept(): null from tryAccept when idle, ERR_SOCKET_CLOSED when closed while waiting", async () => {
    const server = SeqpacketServer.listen(socketPath());
    assert.equal(server.tryAccept(), null);
    const waiting = server.accept();
    server.close();
    await assert.rejects(waiting, { code: "ERR_SOCKET_CLOSED" });
  });

  it("leaks no fds over 1,000 connect/send-with-fd/receive/close cycles", async () => {
    const before = countFds();
    const server = SeqpacketServer.listen(socketPath());
    for (let i = 0; i < 1000; i++) {
      const client = SeqpacketSocket.connect(server.path);
      const conn = await server.accept({ timeoutMs: 5000 });
      const ns = openNetns(CURRENT_NETNS_PATH);
      assert.ok(conn.trySend(Buffer.from(`msg ${i}`), [ns]));
      closeFd(ns);
      const m = await client.receive({ timeoutMs: 5000 });
      assert.equal(m?.data.toString(), `msg ${i}`);
      for (const fd of m?.fds ?? []) closeFd(fd);
      if (i % 2 === 0) {
        // Exercise the watcher too: a wait that ends with the peer's close.
        const eof = client.receive({ timeoutMs: 5000 });
        conn.close();
        assert.equal(await eof, null);
      } else {
        conn.close();
      }
      client.close();
    }
    server.close();
    assert.equal(countFds(), before);
  });
});

describe("SEQPACKET in worker threads", () => {
  it("a worker exiting with receives and accepts pending shuts down cleanly", async () => {
    // Each worker leaves waits pending; the addon must close its pollers before Node unloads it
    // (otherwise libuv calls a close callback in unmapped code and the whole process crashes).
    const code = `
      const { parentPort, workerData } = require("node:worker_threads");
      import(workerData.api).then(async ({ SeqpacketServer, SeqpacketSocket }) => {
        const server = SeqpacketServer.listen(workerData.path);
        const accepting = server.accept();
        const client = SeqpacketSocket.connect(server.path);
        const conn = await accepting;
        conn.receive().catch(() => {});
        client.receive().catch(() => {});
        server.accept().catch(() => {});
        parentPort.postMessage("waiting");
      });
    `;
    const api = new URL("../../src/lib/net/index.ts", import.meta.url).href;
    for (let i = 0; i < 10; i++) {
      const worker = new Worker(code, { eval: true, workerData: { api, path: socketPath() } });
      const first = await new Promise<unknown>((resolve, reject) => {
        worker.once("message", resolve);
        worker.once("error", reject);
      });
      assert.equal(first, "waiting");
      assert.equal(await worker.terminate(), 1);
    }
  });
});
