import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ConfigBatch, ConfigObject } from "../../lib/config/index.ts";
import { NodePods } from "./node-pods.ts";

function pod(
  name: string,
  node: string | undefined,
  extra: { phase?: string; deleting?: boolean; sa?: string; uid?: string } = {},
): ConfigObject<"Pod"> {
  return {
    kind: "Pod",
    apiVersion: "v1",
    metadata: {
      name,
      namespace: "app",
      labels: {},
      annotations: {},
      uid: extra.uid ?? `uid-${name}`,
      resourceVersion: "1",
      generation: 0,
      creationTimestamp: "2026-01-01T00:00:00Z",
      ownerReferences: [],
      ...(extra.deleting === true ? { deletionTimestamp: "2026-01-02T00:00:00Z" } : {}),
    },
    spec: {
      containers: [{ name: "c" }],
      ...(node !== undefined ? { nodeName: node } : {}),
      ...(extra.sa !== undefined ? { serviceAccountName: extra.sa } : {}),
    },
    ...(extra.phase !== undefined ? { status: { phase: extra.phase } } : {}),
  } as ConfigObject<"Pod">;
}

const added = (...pods: ConfigObject<"Pod">[]): ConfigBatch => ({
  initial: true,
  events: pods.map((p) => ({
    type: "added",
    kind: "Pod",
    key: `Pod/app/${p.metadata.name}`,
    new: p,
  })),
});

describe("NodePods", () => {
  it("counts live pods per node and service account; default account is `default`", () => {
    const n = new NodePods();
    n.apply(
      added(
        pod("a", "node-a", { sa: "web" }),
        pod("b", "node-a"),
        pod("c", undefined, { sa: "db" }),
      ),
    );
    assert.equal(n.hasAccountOnNode("node-a", "app", "web"), true);
    assert.equal(n.hasAccountOnNode("node-a", "app", "default"), true);
    assert.equal(n.hasAccountOnNode("node-b", "app", "web"), false);
    assert.equal(n.hasAccountOnNode("", "app", "db"), false, "an unscheduled pod is on no node");
    assert.deepEqual(n.pod("app", "a"), { uid: "uid-a", node: "node-a" });
  });

  it("a pod being deleted, finished or moved no longer counts; the last one leaving clears it", () => {
    const n = new NodePods();
    const a = pod("a", "node-a", { sa: "web" });
    const b = pod("b", "node-a", { sa: "web" });
    n.apply(added(a, b));
    const update = (old: ConfigObject<"Pod">, next: ConfigObject<"Pod">): ConfigBatch => ({
      initial: false,
      events: [
        { type: "updated", kind: "Pod", key: `Pod/app/${next.metadata.name}`, old, new: next },
      ],
    });
    n.apply(update(a, pod("a", "node-a", { sa: "web", deleting: true })));
    assert.equal(n.hasAccountOnNode("node-a", "app", "web"), true, "b still runs");
    n.apply(update(b, pod("b", "node-a", { sa: "web", phase: "Succeeded" })));
    assert.equal(n.hasAccountOnNode("node-a", "app", "web"), false);
    n.apply(update(b, pod("b", "node-b", { sa: "web", phase: "Running" })));
    assert.equal(n.hasAccountOnNode("node-b", "app", "web"), true);
    n.apply({
      initial: false,
      events: [{ type: "deleted", kind: "Pod", key: "Pod/app/b", old: b }],
    });
    assert.equal(n.hasAccountOnNode("node-b", "app", "web"), false);
    assert.equal(n.pod("app", "b"), undefined);
  });
});
