import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Backoff } from "./backoff.ts";

describe("Backoff", () => {
  it("doubles from 10 ms to a 15 s ceiling and resets", () => {
    const b = new Backoff({ jitter: 0 });
    const seq = Array.from({ length: 14 }, () => b.next());
    assert.deepEqual(
      seq,
      [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 15000, 15000, 15000],
    );
    b.reset();
    assert.equal(b.next(), 10);
  });

  it("spreads each delay by at most ±jitter", () => {
    const low = new Backoff({ initialMs: 1000, jitter: 0.2, random: () => 0 });
    const high = new Backoff({ initialMs: 1000, jitter: 0.2, random: () => 0.999999 });
    assert.equal(low.next(), 800);
    assert.equal(high.next(), 1200);
    assert.equal(low.next(), 1600);
    assert.equal(high.base, 2000);
  });
});
