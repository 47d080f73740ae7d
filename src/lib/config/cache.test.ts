import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  applyChanges,
  cacheGet,
  cacheList,
  cacheSize,
  coalesceEvents,
  deleteObjects,
  emptyCache,
  replaceKind,
  upsertObjects,
} from "./cache.ts";
import type { ConfigObject } from "./object.ts";

function ns(
  name: string,
  rv: string,
  labels: Record<string, string> = {},
): ConfigObject<"Namespace"> {
  return {
    kind: "Namespace",
    apiVersion: "v1",
    metadata: {
      name,
      namespace: "",
      labels,
      annotations: {},
      uid: `uid-${name}`,
      resourceVersion: rv,
      generation: 1,
      creationTimestamp: "2025-01-01T00:00:00Z",
      ownerReferences: [],
    },
    spec: {},
  };
}

function pod(name: string, rv: string): ConfigObject<"Pod"> {
  return {
    kind: "Pod",
    apiVersion: "v1",
    metadata: { ...ns(name, rv).metadata, namespace: "default" },
    spec: { containers: [] },
  };
}

const summary = (events: readonly { type: string; key: string }[]) =>
  events.map((e) => `${e.type} ${e.key}`);

describe("cache functions", () => {
  it("upsert adds, updates on a new resourceVersion, and ignores the same one", () => {
    const a1 = ns("a", "1");
    let r = upsertObjects(emptyCache, [a1, pod("p", "2")]);
    assert.deepEqual(summary(r.events), ["added Namespace/a", "added Pod/default/p"]);
    assert.equal(cacheSize(r.cache), 2);
    const same = upsertObjects(r.cache, [ns("a", "1")]);
    assert.deepEqual(same.events, []);
    assert.equal(same.cache, r.cache, "no change returns the same cache");
    const a3 = ns("a", "3", { x: "y" });
    r = upsertObjects(r.cache, [a3]);
    assert.deepEqual(summary(r.events), ["updated Namespace/a"]);
    const e = r.events[0]!;
    assert.equal(e.type === "updated" && e.old, a1);
    assert.equal(e.new, a3);
    assert.equal(cacheGet(r.cache, "Namespace", "Namespace/a"), a3);
  });

  it("never mutates its input", () => {
    const first = upsertObjects(emptyCache, [ns("a", "1")]).cache;
    const second = upsertObjects(first, [ns("b", "2")]).cache;
    assert.equal(cacheSize(first), 1);
    assert.equal(cacheSize(second), 2);
    assert.equal(cacheSize(emptyCache), 0);
  });

  it("deletes by key with the last seen object, ignoring unknown keys", () => {
    const c = upsertObjects(emptyCache, [ns("a", "1"), pod("p", "2")]).cache;
    const r = deleteObjects(c, ["Pod/default/p", "Pod/default/missing", "garbage"]);
    assert.deepEqual(summary(r.events), ["deleted Pod/default/p"]);
    assert.equal(r.events[0]?.old?.metadata.resourceVersion, "2");
    assert.deepEqual(cacheList(r.cache, "Pod"), []);
  });

  it("replaceKind converges to a fresh list, deleting what is gone", () => {
    const c = upsertObjects(emptyCache, [ns("a", "1"), ns("b", "2"), pod("p", "3")]).cache;
    const r = replaceKind(c, "Namespace", [ns("b", "2"), ns("c", "9"), ns("a", "5")]);
    assert.deepEqual(summary(r.events).sort(), ["added Namespace/c", "updated Namespace/a"]);
    const r2 = replaceKind(r.cache, "Namespace", [ns("c", "9")]);
    assert.deepEqual(summary(r2.events).sort(), ["deleted Namespace/a", "deleted Namespace/b"]);
    assert.deepEqual(cacheList(r2.cache, "Pod").length, 1, "other kinds untouched");
  });

  it("lists in key order, memoised per cache", () => {
    const c = upsertObjects(emptyCache, [ns("c", "1"), ns("a", "2"), ns("b", "3")]).cache;
    assert.deepEqual(
      cacheList(c, "Namespace").map((o) => o.metadata.name),
      ["a", "b", "c"],
    );
    assert.equal(cacheList(c, "Namespace"), cacheList(c, "Namespace"));
    assert.deepEqual(cacheList(c, "Pod"), []);
  });

  it("applyChanges sets then removes in one batch", () => {
    const c = upsertObjects(emptyCache, [ns("a", "1")]).cache;
    const r = applyChanges(c, { set: [ns("b", "2")], remove: ["Namespace/a"] });
    assert.deepEqual(summary(r.events), ["added Namespace/b", "deleted Namespace/a"]);
  });

  it("coalesces events per object", () => {
    const a1 = ns("a", "1");
    const a2 = ns("a", "2");
    const b1 = ns("b", "1");
    const out = coalesceEvents([
      { type: "added", kind: "Namespace", key: "Namespace/a", new: a1 },
      { type: "updated", kind: "Namespace", key: "Namespace/a", old: a1, new: a2 },
      { type: "added", kind: "Namespace", key: "Namespace/b", new: b1 },
      { type: "deleted", kind: "Namespace", key: "Namespace/b", old: b1 },
    ]);
    assert.deepEqual(summary(out), ["added Namespace/a"]);
    assert.equal(out[0]?.new, a2);
    const re = coalesceEvents([
      { type: "deleted", kind: "Namespace", key: "Namespace/a", old: a1 },
      { type: "added", kind: "Namespace", key: "Namespace/a", new: a2 },
    ]);
    assert.deepEqual(summary(re), ["updated Namespace/a"]);
  });
});
