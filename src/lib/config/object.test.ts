import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ConfigEvent } from "./events.ts";
import { apiPath, resolveKind, splitApiVersion } from "./kinds.ts";
import { deepFreeze, jsonEqual, keyOf, objectKey, parseKey, type ConfigObject } from "./object.ts";

describe("object keys", () => {
  it("namespaced and cluster-scoped keys round-trip", () => {
    assert.equal(objectKey("Pod", "apps", "a"), "Pod/apps/a");
    assert.equal(objectKey("Namespace", "", "apps"), "Namespace/apps");
    assert.deepEqual(parseKey("Pod/apps/a"), { kind: "Pod", namespace: "apps", name: "a" });
    assert.deepEqual(parseKey("GatewayClass/istio-waypoint"), {
      kind: "GatewayClass",
      namespace: "",
      name: "istio-waypoint",
    });
    assert.equal(parseKey("Pod"), undefined);
    assert.equal(parseKey("a/b/c/d"), undefined);
    assert.equal(
      keyOf({ kind: "Service", metadata: { namespace: "x", name: "y" } }),
      "Service/x/y",
    );
  });
});

describe("JSON helpers", () => {
  it("jsonEqual ignores key order and compares deeply", () => {
    assert.ok(jsonEqual({ a: [1, { b: 2 }], c: null }, { c: null, a: [1, { b: 2 }] }));
    assert.ok(!jsonEqual({ a: [1] }, { a: [1, 2] }));
    assert.ok(!jsonEqual({ a: 1 }, { a: 1, b: undefined }));
    assert.ok(!jsonEqual([], {}));
  });
  it("deepFreeze freezes nested values", () => {
    const v = deepFreeze({ a: { b: [{ c: 1 }] } });
    assert.ok(Object.isFrozen(v.a.b[0]));
  });
});

describe("kinds", () => {
  it("resolves apiVersion and kind pairs", () => {
    assert.equal(resolveKind("networking.istio.io/v1alpha3", "VirtualService").ok, true);
    assert.deepEqual(resolveKind("networking.istio.io/v2", "VirtualService"), {
      ok: false,
      reason: "unknown-version",
    });
    assert.deepEqual(resolveKind("v1", "Widget"), { ok: false, reason: "unknown-kind" });
    assert.deepEqual(splitApiVersion("v1"), { group: "", version: "v1" });
  });
  it("builds API paths for core, grouped, namespaced and cluster-scoped kinds", () => {
    assert.equal(apiPath("Pod", "v1"), "/api/v1/pods");
    assert.equal(
      apiPath("Pod", "v1", { namespace: "a", name: "p", subresource: "status" }),
      "/api/v1/namespaces/a/pods/p/status",
    );
    assert.equal(apiPath("Node", "v1", { namespace: "ignored", name: "n" }), "/api/v1/nodes/n");
    assert.equal(
      apiPath("Gateway", "v1", { namespace: "a", name: "w", subresource: "status" }),
      "/apis/gateway.networking.k8s.io/v1/namespaces/a/gateways/w/status",
    );
    assert.equal(
      apiPath("GatewayClass", "v1"),
      "/apis/gateway.networking.k8s.io/v1/gatewayclasses",
    );
  });
  it("narrows spec and status types by kind (checked by the type checker)", () => {
    const events: ConfigEvent[] = [];
    const seen: string[] = [];
    const pod = {
      kind: "Pod",
      apiVersion: "v1",
      metadata: {
        name: "p",
        namespace: "a",
        labels: {},
        annotations: {},
        uid: "u",
        resourceVersion: "1",
        generation: 1,
        creationTimestamp: "",
        ownerReferences: [],
      },
      spec: { containers: [] },
      status: { podIP: "198.18.0.9" },
    } satisfies ConfigObject<"Pod">;
    events.push({ type: "added", kind: "Pod", key: "Pod/a/p", new: pod });
    for (const e of events) {
      if (e.kind === "Pod" && e.new !== undefined) seen.push(e.new.status?.podIP ?? "");
      if (e.kind === "Gateway" && e.type === "updated") seen.push(e.new.spec.gatewayClassName);
    }
    assert.deepEqual(seen, ["198.18.0.9"]);
  });
});
