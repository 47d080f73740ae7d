import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Timers } from "../../timers.ts";
import { Debouncer } from "./debounce.ts";

/** A manual clock: advance() fires due timers in order. */
function fakeTimers() {
  let now = 0;
  let seq = 0;
  const pending = new Map<number, { at: number; fn: () => void }>();
  const timers: Timers = {
    now: () => now,
    setTimeout: (fn, ms) => {
      seq += 1;
      pending.set(seq, { at: now + ms, fn });
      return seq;
    },
    clearTimeout: (h) => pending.delete(h as number),
  };
  const advance = (ms: number) => {
    const end = now + ms;
    for (;;) {
      const next = [...pending.entries()].sort((a, b) => a[1].at - b[1].at)[0];
      if (next === undefined || next[1].at > end) break;
      pending.delete(next[0]);
      now = next[1].at;
      next[1].fn();
    }
    now = end;
  };
  return { timers, advance, armed: () => pending.size };
}

describe("Debouncer", () => {
  it("flushes once after the quiet time, however many triggers came before", () => {
    const t = fakeTimers();
    const flushed: number[] = [];
    const d = new Debouncer({ quietMs: 100, maxDelayMs: 1000, timers: t.timers }, (s) =>
      flushed.push(s),
    );
    for (let i = 0; i < 10; i++) {
      d.trigger();
      t.advance(10);
    }
    assert.equal(t.armed(), 1, "one timer, not one per trigger");
    assert.deepEqual(flushed, []);
    t.advance(99);
    assert.deepEqual(flushed, [0], "90 ms after the first trigger + 100 ms quiet after the last");
    t.advance(500);
    assert.deepEqual(flushed, [0]);
  });

  it("flushes at the max delay when changes keep coming", () => {
    const t = fakeTimers();
    const flushed: number[] = [];
    const d = new Debouncer({ quietMs: 100, maxDelayMs: 300, timers: t.timers }, (s) =>
      flushed.push(s),
    );
    for (let i = 0; i < 40; i++) {
      d.trigger();
      t.advance(50);
    }
    // Batches start at 0, 300 (first trigger after the flush at 300), 600, ...
    assert.deepEqual(flushed.slice(0, 3), [0, 300, 600]);
  });

  it("flushNow() flushes an open batch immediately; close() drops it", () => {
    const t = fakeTimers();
    const flushed: number[] = [];
    const d = new Debouncer({ quietMs: 100, maxDelayMs: 300, timers: t.timers }, (s) =>
      flushed.push(s),
    );
    d.flushNow();
    d.trigger();
    d.flushNow();
    assert.deepEqual(flushed, [0]);
    assert.equal(t.armed(), 0);
    d.trigger();
    d.close();
    t.advance(1000);
    assert.deepEqual(flushed, [0]);
  });
});
