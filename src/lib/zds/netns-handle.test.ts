import assert from "node:assert/strict";
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { AmbientError } from "../errors.ts";
import { NetnsHandle } from "./netns-handle.ts";

// A namespace's identity is its (dev, ino), so plain files stand in for namespaces here.
const dir = mkdtempSync(join(tmpdir(), "amb-zds-handle-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const fileA = join(dir, "a");
const fileB = join(dir, "b");
writeFileSync(fileA, "a");
writeFileSync(fileB, "b");

function tracked(path: string): { handle: NetnsHandle; closes: number[] } {
  const closes: number[] = [];
  const handle = NetnsHandle.adopt(openSync(path, "r"), (fd) => {
    closes.push(fd);
    closeSync(fd);
  });
  return { handle, closes };
}

describe("NetnsHandle", () => {
  it("closes the fd exactly once, with the last release", () => {
    const { handle, closes } = tracked(fileA);
    handle.retain();
    handle.release();
    assert.deepEqual(closes, []);
    assert.equal(handle.closed, false);
    handle.release();
    assert.deepEqual(closes, [handle.fd]);
    assert.equal(handle.closed, true);
    assert.throws(
      () => handle.release(),
      (e: unknown) => e instanceof AmbientError && e.code === "ERR_NETNS_CLOSED",
    );
    assert.throws(() => handle.retain(), /already closed/);
    assert.deepEqual(closes, [handle.fd], "never a second close");
  });

  it("tells the same namespace through different fds apart from another one", () => {
    const a1 = tracked(fileA).handle;
    const a2 = tracked(fileA).handle;
    const b = tracked(fileB).handle;
    assert.notEqual(a1.fd, a2.fd);
    assert.ok(a1.sameNamespace(a2));
    assert.ok(!a1.sameNamespace(b));
    assert.ok(a1.sameNamespace(a2.id));
    for (const h of [a1, a2, b]) h.release();
  });

  it("closes the fd itself when adopting fails, and throws", () => {
    const fd = openSync(fileA, "r");
    closeSync(fd);
    assert.throws(() => NetnsHandle.adopt(fd), /namespace identity/);
  });

  it("opens a path with the given opener", () => {
    const h = NetnsHandle.open(fileB, (p) => openSync(p, "r"));
    assert.equal(fstatSync(h.fd).ino, fstatSync(openSync(fileB, "r")).ino);
    h.release();
  });
});
