import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatRejections, parseRejections } from "./nack.ts";

describe("NACK messages", () => {
  it("formats ztunnel's way", () => {
    assert.equal(
      formatRejections([
        { name: "a", reason: "bad ip" },
        { name: "ns/b", reason: "unknown protocol" },
      ]),
      "a: bad ip; ns/b: unknown protocol",
    );
  });

  it("round-trips names containing ': ' and reasons containing '; '", () => {
    const rejections = [
      { name: "Kubernetes//Pod/ns/p: odd", reason: "invalid address length 3; expected 4 or 16" },
      { name: "ns/svc", reason: "empty hostname" },
    ];
    const names = new Set(["Kubernetes//Pod/ns/p: odd", "ns/svc", "ns/other"]);
    assert.deepEqual(parseRejections(formatRejections(rejections), names), rejections);
  });

  it("ignores text naming nothing it sent, and repeats", () => {
    assert.deepEqual(parseRejections("x: y; a: first; a: again", new Set(["a"])), [
      { name: "a", reason: "first" },
    ]);
    assert.deepEqual(parseRejections("handler crashed", new Set(["a"])), []);
  });
});
