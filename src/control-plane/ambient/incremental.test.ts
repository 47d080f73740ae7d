/**
 * What the xDS server gets after a change: exactly the resources that changed, and nothing is
 * rebuilt that did not read the changed object.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../model/index.ts";
import { snapshotOf } from "../model/index.ts";
import { AmbientIndex } from "./index.ts";
import type { AmbientDelta } from "./index.ts";

const ns = (name: string, labels: Record<string, string> = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, labels },
});

const pod = (
  namespace: string,
  name: string,
  ip: string,
  labels: Record<string, string> = {},
): KubeObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace, labels },
  status: { phase: "Running", podIP: ip, conditions: [{ type: "Ready", status: "True" }] },
});

const svc = (
  namespace: string,
  name: string,
  ip: string,
  selector: Record<string, string>,
  labels: Record<string, string> = {},
): KubeObject => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name, namespace, labels },
  spec: { selector, clusterIP: ip, ports: [{ port: 80 }] },
});

const policy = (namespace: string, name: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion: "security.istio.io/v1",
  kind: "AuthorizationPolicy",
  metadata: { name, namespace },
  spec,
});

const gateway = (namespace: string, name: string, ready: boolean): KubeObject => ({
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "Gateway",
  metadata: { name, namespace, labels: { "istio.io/waypoint-for": "all" } },
  spec: {
    gatewayClassName: "istio-waypoint",
    listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }],
  },
  status: ready
    ? { addresses: [{ type: "Hostname", value: `${name}.${namespace}.svc.cluster.local` }] }
    : {},
});

const upsert = (...objects: KubeObject[]) =>
  objects.map((object) => ({ op: "upsert" as const, object }));

function names(delta: AmbientDelta): {
  addresses: string[];
  removed: string[];
  authorizations: string[];
  authRemoved: string[];
} {
  return {
    addresses: delta.addresses.updated.map((r) => r.name),
    removed: delta.addresses.removed,
    authorizations: delta.authorizations.updated.map((r) => r.name),
    authRemoved: delta.authorizations.removed,
  };
}

function base(): { index: AmbientIndex; initial: AmbientDelta } {
  const index = new AmbientIndex();
  const initial = index.apply(
    upsert(
      ns("a"),
      ns("b"),
      svc("a", "web", "198.18.40.1", { app: "web" }),
      svc("b", "db", "198.18.40.2", { app: "db" }),
      pod("a", "web-1", "198.18.41.1", { app: "web" }),
      pod("a", "web-2", "198.18.41.2", { app: "web" }),
      pod("a", "other", "198.18.41.3", { app: "other" }),
      pod("b", "db-1", "198.18.41.4", { app: "db" }),
    ),
  );
  return { index, initial };
}

describe("AmbientIndex incremental updates", () => {
  it("the first apply publishes everything once", () => {
    const { initial } = base();
    assert.deepEqual(names(initial).addresses, [
      "Kubernetes//Pod/a/other",
      "Kubernetes//Pod/a/web-1",
      "Kubernetes//Pod/a/web-2",
      "Kubernetes//Pod/b/db-1",
      "a/web.a.svc.cluster.local",
      "b/db.b.svc.cluster.local",
    ]);
    assert.deepEqual(initial.addresses.removed, []);
  });

  it("re-applying the same objects changes nothing and rebuilds nothing", () => {
    const { index } = base();
    const delta = index.apply(upsert(pod("a", "web-1", "198.18.41.1", { app: "web" }), ns("a")));
    assert.deepEqual(names(delta), {
      addresses: [],
      removed: [],
      authorizations: [],
      authRemoved: [],
    });
    assert.deepEqual(delta.builds, {});
  });

  it("a pod's IP change pushes only that workload and rebuilds only that pod", () => {
    const { index } = base();
    const delta = index.apply(upsert(pod("a", "web-1", "198.18.41.9", { app: "web" })));
    assert.deepEqual(names(delta).addresses, ["Kubernetes//Pod/a/web-1"]);
    assert.deepEqual(delta.addresses.updated[0]?.aliases, ["/198.18.41.9"]);
    assert.deepEqual(delta.builds, { PodWorkloads: 1 });
  });

  it("a pod label nothing reads is rebuilt but not pushed", () => {
    const { index } = base();
    const delta = index.apply(upsert(pod("a", "web-1", "198.18.41.1", { app: "web", team: "x" })));
    assert.deepEqual(names(delta).addresses, []);
    assert.deepEqual(delta.builds, { PodWorkloads: 1 });
  });

  it("a Service selector change pushes the service and the pods it (un)selects, not others", () => {
    const { index } = base();
    const delta = index.apply(upsert(svc("a", "web", "198.18.40.1", { app: "other" })));
    // The Service message itself does not carry the selector, so only the pods change.
    assert.deepEqual(names(delta).addresses, [
      "Kubernetes//Pod/a/other",
      "Kubernetes//Pod/a/web-1",
      "Kubernetes//Pod/a/web-2",
    ]);
    assert.equal(delta.builds["PodWorkloads"], 3, "pods of namespace b are not rebuilt");
  });

  it("a namespace waypoint label pushes that namespace's services and workloads only", () => {
    const { index } = base();
    index.apply(upsert(gateway("a", "wp", true)));
    const delta = index.apply(upsert(ns("a", { "istio.io/use-waypoint": "wp" })));
    assert.deepEqual(names(delta).addresses, [
      "Kubernetes//Pod/a/other",
      "Kubernetes//Pod/a/web-1",
      "Kubernetes//Pod/a/web-2",
      "a/web.a.svc.cluster.local",
    ]);
    const web = delta.addresses.updated.find((r) => r.name === "a/web.a.svc.cluster.local");
    assert.equal(web?.message.type.case, "service");
    if (web?.message.type.case === "service")
      assert.equal(web.message.type.value.waypoint?.hboneMtlsPort, 15008);
  });

  it("a waypoint becoming ready pushes what binds to it", () => {
    const { index } = base();
    index.apply(
      upsert(
        gateway("b", "wp", false),
        svc("b", "db", "198.18.40.2", { app: "db" }, { "istio.io/use-waypoint": "wp" }),
      ),
    );
    const delta = index.apply(upsert(gateway("b", "wp", true)));
    assert.deepEqual(names(delta).addresses, ["b/db.b.svc.cluster.local"]);
  });

  it("a selector policy: added → its Authorization and the selected workloads' lists", () => {
    const { index } = base();
    const p = policy("a", "allow-web", { selector: { matchLabels: { app: "web" } }, rules: [{}] });
    const added = index.apply(upsert(p));
    assert.deepEqual(names(added).authorizations, ["a/allow-web"]);
    assert.deepEqual(names(added).addresses, [
      "Kubernetes//Pod/a/web-1",
      "Kubernetes//Pod/a/web-2",
    ]);
    // Changing only the rules keeps every workload's policy list: only the policy is pushed.
    const edited = index.apply(
      upsert(
        policy("a", "allow-web", {
          selector: { matchLabels: { app: "web" } },
          rules: [{ to: [{ operation: { ports: ["80"] } }] }],
        }),
      ),
    );
    assert.deepEqual(names(edited), {
      addresses: [],
      removed: [],
      authorizations: ["a/allow-web"],
      authRemoved: [],
    });
    const removed = index.apply([
      { op: "delete", kind: "AuthorizationPolicy", key: "a/allow-web" },
    ]);
    assert.deepEqual(names(removed).authRemoved, ["a/allow-web"]);
    assert.deepEqual(names(removed).addresses, [
      "Kubernetes//Pod/a/web-1",
      "Kubernetes//Pod/a/web-2",
    ]);
  });

  it("a namespace policy touches no workload; dry-run removes it from ztunnel", () => {
    const { index } = base();
    const added = index.apply(
      upsert(
        policy("b", "deny-22", {
          action: "DENY",
          rules: [{ to: [{ operation: { ports: ["22"] } }] }],
        }),
      ),
    );
    assert.deepEqual(names(added), {
      addresses: [],
      removed: [],
      authorizations: ["b/deny-22"],
      authRemoved: [],
    });
    const dry = policy("b", "deny-22", {
      action: "DENY",
      rules: [{ to: [{ operation: { ports: ["22"] } }] }],
    });
    dry.metadata.annotations = { "istio.io/dry-run": "true" };
    assert.deepEqual(names(index.apply(upsert(dry))).authRemoved, ["b/deny-22"]);
  });

  it("a PeerAuthentication adds the static strict policy and updates its namespace's workloads", () => {
    const { index } = base();
    const pa: KubeObject = {
      apiVersion: "security.istio.io/v1",
      kind: "PeerAuthentication",
      metadata: { name: "default", namespace: "b" },
      spec: { mtls: { mode: "STRICT" } },
    };
    const delta = index.apply(upsert(pa));
    assert.deepEqual(names(delta).authorizations, ["istio-system/istio_converted_static_strict"]);
    assert.deepEqual(names(delta).addresses, ["Kubernetes//Pod/b/db-1"]);
  });

  it("deleting a pod removes its workload; replace() syncs to a snapshot", () => {
    const { index } = base();
    const deleted = index.apply([{ op: "delete", kind: "Pod", key: "a/other" }]);
    assert.deepEqual(names(deleted).removed, ["Kubernetes//Pod/a/other"]);
    const { snapshot } = snapshotOf([
      ns("a"),
      svc("a", "web", "198.18.40.1", { app: "web" }),
      pod("a", "web-1", "198.18.41.1", { app: "web" }),
    ]);
    const synced = index.replace(snapshot);
    assert.deepEqual(names(synced).removed, [
      "Kubernetes//Pod/a/web-2",
      "Kubernetes//Pod/b/db-1",
      "b/db.b.svc.cluster.local",
    ]);
    assert.deepEqual(
      index.addresses().map((r) => r.name),
      ["Kubernetes//Pod/a/web-1", "a/web.a.svc.cluster.local"],
    );
  });

  it("a node change that keeps its locality rebuilds no workload", () => {
    const { index } = base();
    const node = (labels: Record<string, string>): KubeObject => ({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "n1", labels },
    });
    const p = pod("a", "web-1", "198.18.41.1", { app: "web" });
    p.spec = { nodeName: "n1" };
    index.apply(upsert(node({ "topology.kubernetes.io/zone": "z1" }), p));
    const delta = index.apply(
      upsert(node({ "topology.kubernetes.io/zone": "z1", "node.kubernetes.io/heartbeat": "2" })),
    );
    assert.deepEqual(delta.builds, { NodeLocality: 1 });
    const moved = index.apply(upsert(node({ "topology.kubernetes.io/zone": "z2" })));
    assert.deepEqual(names(moved).addresses, ["Kubernetes//Pod/a/web-1"]);
  });

  it("versions are content hashes: the same content has the same version", () => {
    const one = new AmbientIndex();
    const two = new AmbientIndex();
    const objects = [
      ns("a"),
      svc("a", "web", "198.18.40.1", { app: "web" }),
      pod("a", "web-1", "198.18.41.1", { app: "web" }),
    ];
    one.apply(upsert(...objects));
    two.apply(upsert(...[...objects].reverse()));
    assert.deepEqual(
      one.addresses().map((r) => r.version),
      two.addresses().map((r) => r.version),
    );
  });

  it("looks addresses up by uid, hostname key or alias, following changes", () => {
    const { index } = base();
    assert.deepEqual(
      index.lookupAddresses("/198.18.41.1").map((r) => r.name),
      ["Kubernetes//Pod/a/web-1"],
    );
    assert.deepEqual(
      index.lookupAddresses("/198.18.40.1").map((r) => r.name),
      ["a/web.a.svc.cluster.local"],
    );
    assert.deepEqual(
      index.lookupAddresses("Kubernetes//Pod/a/web-1").map((r) => r.name),
      ["Kubernetes//Pod/a/web-1"],
    );
    index.apply(upsert(pod("a", "web-1", "198.18.41.9", { app: "web" })));
    assert.deepEqual(index.lookupAddresses("/198.18.41.1"), []);
    assert.equal(index.lookupAddresses("/198.18.41.9").length, 1);
    index.apply([{ op: "delete", kind: "Pod", key: "a/web-1" }]);
    assert.deepEqual(index.lookupAddresses("/198.18.41.9"), []);
  });
});
