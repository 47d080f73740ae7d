import assert from "node:assert/strict";
import {
  closeSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { MemoryPacketConn, MemoryPacketListener } from "./memory-transport.ts";

const dir = mkdtempSync(join(tmpdir(), "amb-zds-mem-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, "f");
writeFileSync(file, "x");

const fdCount = (): number => readdirSync("/proc/self/fd").length;

describe("in-memory packet transport", () => {
  it("keeps boundaries and passes fds as new fds to the same file", async () => {
    const [a, b] = MemoryPacketConn.pair();
    const fd = openSync(file, "r");
    await a.send(Buffer.from("one"), [fd]);
    await a.send(Buffer.from("two"));
    const m1 = await b.receive();
    assert.equal(Buffer.from(m1!.data).toString(), "one");
    assert.equal(m1!.fds.length, 1);
    assert.notEqual(m1!.fds[0], fd);
    assert.equal(fstatSync(m1!.fds[0]!).ino, fstatSync(fd).ino);
    const m2 = await b.receive();
    assert.equal(Buffer.from(m2!.data).toString(), "two");
    closeSync(fd);
    closeSync(m1!.fds[0]!);
    a.close();
    assert.equal(await b.receive(), null, "end-of-stream once the peer closed");
    b.close();
  });

  it("truncates like the kernel and closes fds beyond maxFds", async () => {
    const before = fdCount();
    const [a, b] = MemoryPacketConn.pair();
    const fd = openSync(file, "r");
    await a.send(new Uint8Array(2000), [fd, fd]);
    const m = await b.receive({ maxBytes: 1024, maxFds: 1 });
    assert.equal(m!.truncated, true);
    assert.equal(m!.size, 2000);
    assert.equal(m!.data.length, 1024);
    assert.equal(m!.fdsTruncated, true);
    assert.equal(m!.fds.length, 1);
    closeSync(m!.fds[0]!);
    closeSync(fd);
    a.close();
    b.close();
    assert.equal(fdCount(), before);
  });

  it("times out a receive, and rejects a send to a closed peer", async () => {
    const [a, b] = MemoryPacketConn.pair();
    await assert.rejects(b.receive({ timeoutMs: 10 }), { code: "ETIMEDOUT" });
    b.close();
    await assert.rejects(a.send(Buffer.from("x")), { code: "EPIPE" });
    a.close();
  });

  it("closing drops queued fds", async () => {
    const before = fdCount();
    const [a, b] = MemoryPacketConn.pair();
    const fd = openSync(file, "r");
    await a.send(Buffer.from("x"), [fd]);
    closeSync(fd);
    b.close();
    a.close();
    assert.equal(fdCount(), before);
  });

  it("listener hands each connect to accept", async () => {
    const l = new MemoryPacketListener();
    const accepting = l.accept();
    const client = l.connect();
    const server = await accepting;
    await client.send(Buffer.from("hi"));
    assert.equal(Buffer.from((await server.receive())!.data).toString(), "hi");
    l.close();
    assert.throws(() => l.connect(), { code: "ECONNREFUSED" });
    await assert.rejects(l.accept(), { code: "ERR_SOCKET_CLOSED" });
    client.close();
    server.close();
  });
});
