import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ActiveConnections, type ActiveConnection } from "./active-connections.ts";

describe("ActiveConnections", () => {
  it("drain waits for connections that finish before the deadline", async () => {
    const set = new ActiveConnections();
    const c: ActiveConnection = { abort: () => assert.fail("must not be aborted") };
    set.add(c);
    setTimeout(() => set.delete(c), 20);
    assert.equal(await set.drain(5000, () => new Error("late")), 0);
    assert.equal(set.size, 0);
  });

  it("drain aborts what is left at the deadline and waits for it to close", async () => {
    const set = new ActiveConnections();
    const reasons: string[] = [];
    const c: ActiveConnection = {
      abort: (e) => {
        reasons.push(e.message);
        setTimeout(() => set.delete(c), 5);
      },
    };
    set.add(c);
    assert.equal(await set.drain(20, () => new Error("deadline")), 1);
    assert.deepEqual(reasons, ["deadline"]);
    assert.equal(set.size, 0);
  });
});
