import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ReconcileQueue } from "./reconcile-queue.ts";

function gate() {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}

describe("ReconcileQueue", () => {
  it("runs one key at a time; requests while queued coalesce, while running queue one more", async () => {
    const runs: string[] = [];
    const gates: (() => void)[] = [];
    let n = 0;
    const q = new ReconcileQueue<number>({
      limit: 4,
      run: async (key) => {
        const i = ++n;
        runs.push(`${key}#${i}`);
        const g = gate();
        gates.push(g.open);
        await g.p;
        return i;
      },
    });
    q.resume();
    const a1 = q.schedule("a");
    await Promise.resolve();
    // a#1 runs; these three share the one run queued after it.
    const a2 = q.schedule("a");
    const a3 = q.schedule("a");
    assert.equal(a2, a3);
    assert.deepEqual(runs, ["a#1"]);
    gates.shift()!();
    assert.equal(await a1, 1);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(runs, ["a#1", "a#2"]);
    gates.shift()!();
    assert.equal(await a2, 2);
    await q.idle();
    assert.equal(q.size, 0);
  });

  it("bounds the keys running at once and runs them in order", async () => {
    let running = 0;
    let peak = 0;
    const order: string[] = [];
    const q = new ReconcileQueue<void>({
      limit: 3,
      run: async (key) => {
        running++;
        peak = Math.max(peak, running);
        order.push(key);
        await new Promise((r) => setTimeout(r, 5));
        running--;
      },
    });
    q.resume();
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    await Promise.all(keys.map((k) => q.schedule(k)));
    assert.equal(peak, 3);
    assert.equal(q.maxActive, 3);
    assert.deepEqual(order, keys);
  });

  it("holds runs until resumed; a failing run rejects only its callers", async () => {
    const q = new ReconcileQueue<string>({
      limit: 2,
      run: (key) => (key === "bad" ? Promise.reject(new Error("boom")) : Promise.resolve(key)),
    });
    const good = q.schedule("good");
    const bad = q.schedule("bad");
    let settled = false;
    void good.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(settled, false, "paused");
    q.resume();
    assert.equal(await good, "good");
    await assert.rejects(bad, /boom/);
    await q.idle();
  });
});
