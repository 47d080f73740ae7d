import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PoolState, poolKeyId, type PooledConnection } from "./pool-state.ts";

const src = "spiffe://cluster.local/ns/a/sa/client";
const dst = ["spiffe://cluster.local/ns/b/sa/server", "spiffe://cluster.local/ns/b/sa/alt"];
const key = poolKeyId({ source: src, expected: dst, destination: "198.18.0.2:15008" });

function pool(max = 100): PoolState<string, number> {
  return new PoolState<string, number>({ maxStreamsPerConnection: max, maxParallelConnects: 4 });
}

describe("poolKeyId", () => {
  it("treats expected identities as a set and separates every key part", () => {
    const a = poolKeyId({
      source: src,
      expected: [dst[0]!, dst[1]!],
      destination: "198.18.0.2:15008",
    });
    const b = poolKeyId({
      source: src,
      expected: [dst[1]!, dst[0]!, dst[1]!],
      destination: "198.18.0.2:15008",
    });
    assert.equal(a, b);
    const variants = [
      { source: src + "x", expected: dst, destination: "198.18.0.2:15008" },
      { source: src, expected: [dst[0]!], destination: "198.18.0.2:15008" },
      { source: src, expected: dst, destination: "198.18.0.3:15008" },
      { source: src, expected: dst, destination: "198.18.0.2:15008", sourceIp: "198.18.0.9" },
    ];
    const ids = new Set([a, ...variants.map(poolKeyId)]);
    assert.equal(ids.size, 5);
  });
});

describe("PoolState", () => {
  it("makes concurrent first requests for a key wait for one handshake", () => {
    const p = pool();
    const first = p.acquire(key, 0, 0);
    assert.deepEqual(first, { kind: "wait", connects: 1 });
    for (let i = 1; i < 50; i++)
      assert.deepEqual(p.acquire(key, i, 0), { kind: "wait", connects: 0 });
    assert.deepEqual(p.pending(key), { waiters: 50, connecting: 1 });
    const r = p.connected(key, "conn-1", 1);
    assert.equal(r.grants.length, 50);
    assert.deepEqual(
      r.grants.map(([w]) => w),
      Array.from({ length: 50 }, (_, i) => i),
    );
    assert.equal(r.connects, 0);
    assert.equal(r.entry.streams, 50);
    // A later request reuses the connection at once.
    const later = p.acquire(key, 99, 2);
    assert.equal(later.kind, "ready");
    assert.equal(later.kind === "ready" && later.conn.conn, "conn-1");
  });

  it("opens more connections only for what one cannot carry, in parallel once the key works", () => {
    const p = pool();
    assert.deepEqual(p.acquire(key, 0, 0), { kind: "wait", connects: 1 });
    for (let i = 1; i < 250; i++) p.acquire(key, i, 0);
    const c1 = p.connected(key, "c1", 1);
    assert.equal(c1.grants.length, 100);
    assert.equal(c1.connects, 2); // 150 waiters left, 100 per connection
    const c2 = p.connected(key, "c2", 2);
    assert.equal(c2.grants.length, 100);
    assert.equal(c2.connects, 0);
    const c3 = p.connected(key, "c3", 3);
    assert.equal(c3.grants.length, 50);
    assert.deepEqual(p.pending(key), { waiters: 0, connecting: 0 });
    assert.equal(p.connections().length, 3);
    // Waiters were served in arrival order.
    const order = [...c1.grants, ...c2.grants, ...c3.grants].map(([w]) => w);
    assert.deepEqual(
      order,
      Array.from({ length: 250 }, (_, i) => i),
    );
  });

  it("does not hand out a connection at its cap until a stream ends", () => {
    const p = pool(2);
    p.acquire(key, 0, 0);
    p.acquire(key, 1, 0);
    const { entry } = p.connected(key, "c1", 0);
    assert.equal(entry.streams, 2);
    const third = p.acquire(key, 2, 1);
    assert.deepEqual(third, { kind: "wait", connects: 1 });
    // A stream ends before the new handshake completes: the waiter takes the freed slot.
    const rel = p.release(entry, 2);
    assert.equal(rel.grants.length, 1);
    assert.equal(rel.grants[0]![0], 2);
    assert.equal(rel.close, false);
    const c2 = p.connected(key, "c2", 3);
    assert.equal(c2.grants.length, 0);
    assert.equal(p.connections().length, 2);
  });

  it("lowers the cap to the peer's advertised maximum", () => {
    const p = pool(100);
    p.acquire(key, 0, 0);
    const { entry } = p.connected(key, "c1", 0);
    const s = p.setPeerMaxStreams(entry, 3, 0);
    assert.equal(entry.cap, 3);
    assert.equal(s.grants.length, 0);
    assert.equal(p.acquire(key, 1, 0).kind, "ready");
    assert.equal(p.acquire(key, 2, 0).kind, "ready");
    assert.deepEqual(p.acquire(key, 3, 0), { kind: "wait", connects: 1 });
    // The next connection starts with the learned cap.
    const c2 = p.connected(key, "c2", 0);
    assert.equal(c2.entry.cap, 3);
    // A peer advertising more than our maximum is capped at ours.
    p.setPeerMaxStreams(c2.entry, 1000, 0);
    assert.equal(c2.entry.cap, 100);
  });

  it("fails the waiters of a failed first handshake, then tries again on the next request", () => {
    const p = pool();
    p.acquire(key, 0, 0);
    p.acquire(key, 1, 0);
    assert.deepEqual(p.connectFailed(key).rejected, [0, 1]);
    assert.deepEqual(p.pending(key), { waiters: 0, connecting: 0 });
    assert.deepEqual(p.acquire(key, 2, 0), { kind: "wait", connects: 1 });
  });

  it("keeps the waiters that handshakes still in flight can serve", () => {
    const p = pool(10);
    p.acquire(key, 0, 0);
    for (let i = 1; i < 30; i++) p.acquire(key, i, 0);
    const c1 = p.connected(key, "c1", 0);
    assert.equal(c1.connects, 2);
    const failed = p.connectFailed(key);
    assert.deepEqual(failed.rejected, [20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
    assert.equal(p.connected(key, "c2", 0).grants.length, 10);
  });

  it("lets a cancelled waiter leave the queue", () => {
    const p = pool();
    p.acquire(key, 0, 0);
    p.acquire(key, 1, 0);
    assert.equal(p.cancel(key, 0), true);
    assert.equal(p.cancel(key, 0), false);
    assert.deepEqual(
      p.connected(key, "c", 0).grants.map(([w]) => w),
      [1],
    );
  });

  it("retires a connection after GOAWAY and closes it when its last stream ends", () => {
    const p = pool();
    p.acquire(key, 0, 0);
    const { entry } = p.connected(key, "c1", 0);
    assert.deepEqual(p.retire(entry), { close: false, connects: 0 });
    assert.equal(p.connections().length, 0);
    // New requests do not go to the retired connection.
    assert.deepEqual(p.acquire(key, 1, 0), { kind: "wait", connects: 1 });
    assert.equal(p.release(entry, 1).close, true);
  });

  it("evicts connections idle for the timeout, and only those", () => {
    const p = pool();
    p.acquire(key, 0, 0);
    const { entry: busy } = p.connected(key, "busy", 0);
    const key2 = poolKeyId({ source: src, expected: dst, destination: "198.18.0.5:15008" });
    p.acquire(key2, 1, 0);
    const { entry: idle } = p.connected(key2, "idle", 0);
    p.release(idle, 1_000);
    assert.deepEqual(p.evictIdle(1_000 + 299_999, 300_000), []);
    const evicted: PooledConnection<string>[] = p.evictIdle(1_000 + 300_000, 300_000);
    assert.deepEqual(
      evicted.map((e) => e.conn),
      ["idle"],
    );
    assert.equal(idle.usable, false);
    assert.equal(busy.usable, true);
    assert.deepEqual(
      p.connections().map((e) => e.conn),
      ["busy"],
    );
  });

  it("hands every waiter back on shutdown", () => {
    const p = pool();
    p.acquire(key, 0, 0);
    p.acquire(key, 1, 0);
    assert.deepEqual(p.takeAllWaiters(), [0, 1]);
    // The handshake in flight is still counted until it reports back.
    assert.deepEqual(p.pending(key), { waiters: 0, connecting: 1 });
    assert.deepEqual(p.connectFailed(key).rejected, []);
    assert.deepEqual(p.pending(key), { waiters: 0, connecting: 0 });
  });
});
