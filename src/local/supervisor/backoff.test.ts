import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { crashCount, restartDelayMs } from "./backoff.ts";

describe("restart backoff", () => {
  it("restarts at once after a first crash, then 1 s doubling to 30 s", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8].map(restartDelayMs),
      [0, 1000, 2000, 4000, 8000, 16000, 30000, 30000],
    );
  });

  it("counts consecutive quick crashes; a minute of running resets the count", () => {
    let n = 0;
    n = crashCount(n, 500);
    n = crashCount(n, 2000);
    n = crashCount(n, 100);
    assert.equal(n, 3);
    assert.equal(crashCount(n, 60_000), 1);
  });
});
