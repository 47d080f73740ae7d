import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ObjectStore, Registry, SYSTEM, type Json } from "../../lib/kube-api/index.ts";
import { LogOutput } from "../../lib/log/index.ts";
import { intOrPercent } from "./deployment.ts";
import { ControllerManager } from "./manager.ts";
import { controllerOf, labelsOf, nameOf, specOf } from "./objects.ts";
import { podTemplateHash } from "./pod-template-hash.ts";
import { chooseNode } from "./scheduler.ts";

const log = new LogOutput({ spec: { defaultLevel: "off", scopes: new Map() } }).logger("t");

function deployment(replicas: number, version = "v1"): Json {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "shop" },
    spec: {
      replicas,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web", version } },
        spec: { containers: [{ name: "c", image: "i", command: ["node", "x.ts"] }] },
      },
    },
  };
}

const node = (name: string, ready = true): Json => ({
  metadata: { name, labels: { "kubernetes.io/hostname": name } },
  spec: {},
  status: { conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
});

function cluster() {
  const store = new ObjectStore();
  const registry = new Registry(store);
  const r = (g: string, k: string) => store.resources.forKind(g, k)!;
  const res = {
    deploy: r("apps", "Deployment"),
    rs: r("apps", "ReplicaSet"),
    pod: r("", "Pod"),
    node: r("", "Node"),
  };
  const cm = new ControllerManager({ registry, log });
  const settle = () => {
    for (let i = 0; i < 50; i++) if (!cm.syncOnce()) return;
    throw new Error("controllers did not settle");
  };
  /** Marks every running pod ready, as kubelets would. */
  const readyAll = () => {
    for (const p of store.list(res.pod)) {
      if (specOf(p)["nodeName"] && !(p["metadata"] as Json)["deletionTimestamp"]) {
        registry.patch(
          SYSTEM,
          res.pod,
          "shop",
          nameOf(p),
          "merge",
          { status: { phase: "Running", conditions: [{ type: "Ready", status: "True" }] } },
          "status",
        );
      }
    }
  };
  /** Removes terminating pods, as kubelets do once containers stopped. */
  const reap = () => {
    for (const p of store.list(res.pod)) {
      if ((p["metadata"] as Json)["deletionTimestamp"])
        registry.delete(SYSTEM, res.pod, "shop", nameOf(p), { gracePeriodSeconds: 0 });
    }
  };
  const active = () =>
    store.list(res.pod).filter((p) => !(p["metadata"] as Json)["deletionTimestamp"]);
  return { store, registry, res, settle, readyAll, reap, active };
}

describe("controllers", () => {
  it("pod-template-hash is stable for a template and changes with it", () => {
    const t = (deployment(1)["spec"] as Json)["template"] as Json;
    assert.equal(podTemplateHash(t), podTemplateHash(structuredClone(t)));
    assert.match(podTemplateHash(t), /^[bcdfghjklmnpqrstvwxz2456789]{1,10}$/);
    assert.notEqual(
      podTemplateHash(t),
      podTemplateHash((deployment(1, "v2")["spec"] as Json)["template"] as Json),
    );
    assert.equal(intOrPercent("25%", 3, true, "0"), 1);
    assert.equal(intOrPercent("25%", 3, false, "0"), 0);
    assert.equal(intOrPercent(2, 3, false, "0"), 2);
  });

  it("spreads a ReplicaSet's pods over ready nodes", () => {
    const owner = {
      ownerReferences: [
        { apiVersion: "apps/v1", kind: "ReplicaSet", name: "rs", uid: "u1", controller: true },
      ],
    };
    const pod = (name: string, nodeName = "") => ({
      metadata: { name, namespace: "ns", ...owner },
      spec: { nodeName },
      status: { phase: "Running" },
    });
    const nodes = [node("a"), node("b"), node("c", false)];
    assert.equal(chooseNode(pod("p1"), nodes, []), "a");
    assert.equal(chooseNode(pod("p2"), nodes, [pod("p1", "a")]), "b");
    assert.equal(chooseNode(pod("p3"), nodes, [pod("p1", "a"), pod("p2", "b")]), "a");
    assert.equal(
      chooseNode(
        { ...pod("p4"), spec: { nodeSelector: { "kubernetes.io/hostname": "b" } } },
        nodes,
        [pod("p1", "b")],
      ),
      "b",
    );
    assert.equal(chooseNode(pod("p5"), [node("c", false)], []), undefined);
  });

  it("runs a Deployment: ReplicaSet and pods named, labelled and owned; scales; rolls on template change; collects garbage", () => {
    const c = cluster();
    c.store.create(c.res.node, node("node1"));
    c.store.create(c.res.node, node("node2"));
    const d = c.registry.create(SYSTEM, c.res.deploy, "shop", deployment(3));
    assert.ok(d.ok);
    c.settle();
    const [rs, ...more] = c.store.list(c.res.rs);
    assert.equal(more.length, 0);
    const hash = podTemplateHash((deployment(3)["spec"] as Json)["template"] as Json);
    assert.equal(nameOf(rs!), `web-${hash}`);
    assert.equal(controllerOf(rs!)?.kind, "Deployment");
    const pods = c.active();
    assert.equal(pods.length, 3);
    for (const p of pods) {
      assert.match(nameOf(p), new RegExp(`^web-${hash}-[bcdfghjklmnpqrstvwxz2456789]{5}$`));
      assert.deepEqual(labelsOf(p), { app: "web", version: "v1", "pod-template-hash": hash });
      assert.equal(controllerOf(p)?.name, nameOf(rs!));
    }
    const perNode = (n: string) => pods.filter((p) => specOf(p)["nodeName"] === n).length;
    assert.deepEqual([perNode("node1"), perNode("node2")].sort(), [1, 2]);

    // Scale down to 1, then up to 2.
    c.readyAll();
    c.registry.patch(SYSTEM, c.res.deploy, "shop", "web", "merge", { spec: { replicas: 1 } }, "");
    c.settle();
    assert.equal(c.active().length, 1);
    c.reap();
    c.registry.patch(SYSTEM, c.res.deploy, "shop", "web", "merge", { spec: { replicas: 2 } }, "");
    c.settle();
    assert.equal(c.active().length, 2);

    // New template: a second ReplicaSet takes over as its pods become ready.
    c.readyAll();
    c.registry.update(SYSTEM, c.res.deploy, "shop", "web", deployment(2, "v2"), "");
    for (let i = 0; i < 10; i++) {
      c.settle();
      c.readyAll();
      c.reap();
    }
    c.settle();
    const versions = c.active().map((p) => labelsOf(p)["version"]);
    assert.deepEqual(versions, ["v2", "v2"]);
    const status = c.store.get(c.res.deploy, "shop", "web")!["status"] as Json;
    assert.equal(status["updatedReplicas"], 2);
    assert.equal(status["readyReplicas"], 2);

    // Deleting the Deployment removes its ReplicaSets and then their pods.
    c.registry.delete(SYSTEM, c.res.deploy, "shop", "web");
    c.settle();
    c.reap();
    c.settle();
    assert.equal(c.store.list(c.res.rs).length, 0);
    assert.equal(c.store.list(c.res.pod).length, 0);
  });
});
