import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { initialSubscription, updateSubscription } from "./subscription.ts";

const req = (sub: string[], unsub: string[] = [], initial: Record<string, string> = {}) => ({
  resourceNamesSubscribe: sub,
  resourceNamesUnsubscribe: unsub,
  initialResourceVersions: initial,
});

describe("subscriptions", () => {
  it("an empty or '*' first request is wildcard; held names are not subscriptions then", () => {
    assert.deepEqual(initialSubscription(req([], [], { a: "1" })), {
      wildcard: true,
      names: new Set(),
    });
    assert.deepEqual(initialSubscription(req(["*", "b"])), {
      wildcard: true,
      names: new Set(["b"]),
    });
  });

  it("ztunnel's on-demand start (sub and unsub '*') subscribes to nothing but what it holds", () => {
    assert.deepEqual(initialSubscription(req(["*"], ["*"])), { wildcard: false, names: new Set() });
    assert.deepEqual(initialSubscription(req(["*", "/198.18.1.5"], ["*"], { "ns/svc": "" })), {
      wildcard: false,
      names: new Set(["/198.18.1.5", "ns/svc"]),
    });
  });

  it("later requests add and remove names and toggle wildcard with '*'", () => {
    const sub = initialSubscription(req(["a"]));
    assert.deepEqual(updateSubscription(sub, req([])), {
      added: [],
      removed: [],
      wildcardChanged: false,
    });
    assert.deepEqual(updateSubscription(sub, req(["a", "b"])), {
      added: ["b"],
      removed: [],
      wildcardChanged: false,
    });
    assert.deepEqual(updateSubscription(sub, req(["*"], ["a", "zz"])), {
      added: [],
      removed: ["a"],
      wildcardChanged: true,
    });
    assert.deepEqual(updateSubscription(sub, req(["c"], ["c", "*"])), {
      added: [],
      removed: ["c"],
      wildcardChanged: true,
    });
    assert.deepEqual(sub, { wildcard: false, names: new Set(["b"]) });
  });
});
