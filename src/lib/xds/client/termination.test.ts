import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { classifyTermination, resetsBackoff } from "./termination.ts";

describe("classifyTermination", () => {
  it("maps statuses to ztunnel's reasons", () => {
    assert.equal(classifyTermination(status.OK, true), "Complete");
    assert.equal(classifyTermination(status.UNAVAILABLE, false), "ConnectionError");
    assert.equal(classifyTermination(status.UNAVAILABLE, true), "Reconnect");
    assert.equal(classifyTermination(status.CANCELLED, true), "Reconnect");
    assert.equal(classifyTermination(status.DEADLINE_EXCEEDED, false), "Reconnect");
    assert.equal(classifyTermination(status.UNAUTHENTICATED, false), "Error");
    assert.equal(classifyTermination(status.INTERNAL, true), "Error");
  });

  it("restarts the backoff only after an orderly or transient end", () => {
    assert.deepEqual(
      (["ConnectionError", "Error", "Reconnect", "Complete"] as const).map(resetsBackoff),
      [false, false, true, true],
    );
  });
});
