import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "./objects.ts";
import { diffSnapshots, snapshotOf } from "./snapshot.ts";

const pod = (name: string, rv?: string, extra: Record<string, string> = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: {
    name,
    namespace: "ns",
    labels: extra,
    ...(rv === undefined ? {} : { resourceVersion: rv }),
  },
});

describe("snapshots", () => {
  it("groups by kind and key and reports ignored kinds", () => {
    const istioGateway: KubeObject = {
      apiVersion: "networking.istio.io/v1",
      kind: "Gateway",
      metadata: { name: "gw", namespace: "ns" },
    };
    const { snapshot, ignored } = snapshotOf([
      pod("a"),
      istioGateway,
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "ns" } },
    ]);
    assert.deepEqual([...(snapshot.get("Pod")?.keys() ?? [])], ["ns/a"]);
    assert.deepEqual([...(snapshot.get("Namespace")?.keys() ?? [])], ["ns"]);
    assert.deepEqual(ignored, [istioGateway]);
  });
  it("diffs: adds, updates, deletes; unchanged content is not a change", () => {
    const before = snapshotOf([pod("a", "1"), pod("b"), pod("c")]).snapshot;
    const after = snapshotOf([
      pod("a", "1", { x: "ignored because same resourceVersion" }),
      pod("b", undefined, { y: "1" }),
      pod("d"),
    ]).snapshot;
    const changes = diffSnapshots(before, after);
    assert.deepEqual(
      changes.map((c) =>
        c.op === "delete" ? `delete ${c.key}` : `upsert ${c.object.metadata.name}`,
      ),
      ["upsert b", "delete ns/c", "upsert d"],
    );
    assert.deepEqual(
      diffSnapshots(before, snapshotOf([pod("a", "1"), pod("b"), pod("c")]).snapshot),
      [],
    );
  });
});
