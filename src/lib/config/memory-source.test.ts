import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LogOutput, MemorySink } from "../log/index.ts";
import type { ConfigBatch } from "./events.ts";
import { MemoryConfigStore, type Manifest } from "./memory-source.ts";

function setup(objects: Manifest[] = []) {
  const sink = new MemorySink();
  const log = new LogOutput({ sink }).logger("config");
  return { store: new MemoryConfigStore({ log, objects }), sink };
}

const nsObj = (name: string, labels: Record<string, string> = {}): Manifest => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, labels },
});

const summary = (b: ConfigBatch) => b.events.map((e) => `${e.type} ${e.key}`);

describe("MemoryConfigStore", () => {
  it("delivers nothing before sync, then one initial batch, then changes", async () => {
    const { store } = setup([nsObj("a")]);
    const batches: ConfigBatch[] = [];
    store.subscribe((b) => batches.push(b));
    assert.equal(store.hasSynced, false);
    assert.deepEqual(store.list("Namespace"), []);
    await store.start();
    assert.equal(store.hasSynced, true);
    assert.deepEqual(
      batches.map((b) => [b.initial, summary(b)]),
      [[true, ["added Namespace/a"]]],
    );
    store.set(nsObj("b"), nsObj("a", { x: "y" }));
    assert.deepEqual(summary(batches[1]!), ["added Namespace/b", "updated Namespace/a"]);
    assert.equal(batches[1]!.initial, false);
    assert.equal(store.delete("Namespace", "", "b"), true);
    assert.equal(store.delete("Namespace", "", "b"), false);
    assert.deepEqual(summary(batches[2]!), ["deleted Namespace/b"]);
    assert.equal(batches.length, 3);
  });

  it("gives a late subscriber the current state first, after subscribe returns", async () => {
    const { store } = setup([nsObj("a")]);
    await store.start();
    const got: string[][] = [];
    let returned = false;
    const unsubscribe = store.subscribe((b) => {
      assert.ok(returned, "handler ran before subscribe returned");
      got.push(summary(b));
    });
    returned = true;
    store.set(nsObj("b")); // before the initial batch went out: folded into it
    await Promise.resolve();
    assert.deepEqual(got, [["added Namespace/a", "added Namespace/b"]]);
    unsubscribe();
    store.set(nsObj("c"));
    assert.equal(got.length, 1);
  });

  it("filters by kind and survives a throwing handler", async () => {
    const { store, sink } = setup();
    await store.start();
    const pods: string[][] = [];
    store.subscribe(() => {
      throw new Error("boom");
    });
    store.subscribe((b) => pods.push(summary(b)), { kinds: ["Pod"] });
    await Promise.resolve();
    store.set(nsObj("a"), {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p" },
      spec: { containers: [] },
    });
    assert.deepEqual(pods, [[], ["added Pod/default/p"]]);
    assert.ok(sink.lines.some((l) => l.includes("config subscriber failed") && l.includes("boom")));
  });

  it("rejects invalid objects, keeps the last good one, and lists the problem", async () => {
    const { store, sink } = setup([nsObj("a", { v: "1" })]);
    await store.start();
    const bad = {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "a", labels: { v: "no spaces" } },
    };
    const r = store.set(bad, nsObj("b"));
    assert.equal(r.applied.length, 1);
    assert.deepEqual(
      r.problems.map((p) => `${p.key} ${p.path}: ${p.reason}`),
      [
        "Namespace/a metadata.labels.v: invalid label value \"no spaces\": must be empty or consist of letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
      ],
    );
    assert.equal(store.get("Namespace", "", "a")?.metadata.labels["v"], "1");
    assert.equal(store.errors().length, 1);
    assert.ok(sink.lines.some((l) => l.includes("config rejected")));
    store.set(nsObj("a", { v: "2" }));
    assert.equal(store.errors().length, 0);
  });

  it("writes status and pod annotations as updates, kept across edits", async () => {
    const gw: Manifest = {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name: "waypoint", namespace: "ns1" },
      spec: {
        gatewayClassName: "istio-waypoint",
        listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }],
      },
    };
    const pod: Manifest = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", namespace: "ns1" },
      spec: { containers: [] },
    };
    const { store } = setup([gw, pod]);
    await store.start();
    const events: string[] = [];
    store.subscribe((b) => events.push(...summary(b)));
    await Promise.resolve();
    const w = await store.writeStatus({
      type: "status",
      kind: "Gateway",
      namespace: "ns1",
      name: "waypoint",
      status: { addresses: [{ type: "Hostname", value: "waypoint.ns1.svc.cluster.local" }] },
    });
    assert.ok(w.ok);
    assert.equal(
      store.get("Gateway", "ns1", "waypoint")?.status?.addresses?.[0]?.value,
      "waypoint.ns1.svc.cluster.local",
    );
    const p = await store.writeStatus({
      type: "podAnnotations",
      namespace: "ns1",
      name: "p",
      annotations: { "ambient.istio.io/redirection": "enabled" },
    });
    assert.ok(p.ok && p.value.metadata.annotations["ambient.istio.io/redirection"] === "enabled");
    // An edit of the object's spec keeps the written status.
    store.set({
      ...gw,
      spec: {
        gatewayClassName: "istio-waypoint",
        listeners: [
          { name: "mesh", port: 15008, protocol: "HBONE" },
          { name: "x", port: 80, protocol: "HTTP" },
        ],
      },
    });
    const after = store.get("Gateway", "ns1", "waypoint");
    assert.equal(after?.metadata.generation, 2);
    assert.equal(after?.status?.addresses?.length, 1);
    assert.deepEqual(events.slice(2), [
      "updated Gateway/ns1/waypoint",
      "updated Pod/ns1/p",
      "updated Gateway/ns1/waypoint",
    ]);
    const missing = await store.writeStatus({
      type: "podAnnotations",
      namespace: "ns1",
      name: "nope",
      annotations: {},
    });
    assert.deepEqual(missing, {
      ok: false,
      reason: { code: "not-found", message: "Pod/ns1/nope does not exist" },
    });
  });
});
