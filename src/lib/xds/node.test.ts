import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildProxyNode, parseProxyInfo, proxyMetadataFromEnv, proxyNodeId } from "./node.ts";

describe("buildProxyNode", () => {
  it("builds ztunnel's node id and base metadata, then ISTIO_META and ISTIO_METAJSON on top", () => {
    const node = buildProxyNode({
      instanceIp: "198.18.0.7",
      podName: "ztunnel-x1",
      podNamespace: "istio-system",
      nodeName: "node-a",
      metadata: { CLUSTER_ID: "c1", NAME: "override" },
      jsonMetadata: { LABELS: { app: "ztunnel" }, CLUSTER_ID: "c2" },
    });
    assert.equal(
      node.id,
      "ztunnel~198.18.0.7~ztunnel-x1.istio-system~istio-system.svc.cluster.local",
    );
    assert.deepEqual(node.metadata, {
      NAME: "override",
      NAMESPACE: "istio-system",
      INSTANCE_IPS: "198.18.0.7",
      NODE_NAME: "node-a",
      CLUSTER_ID: "c2",
      LABELS: { app: "ztunnel" },
    });
  });

  it("takes another proxy type and DNS domain", () => {
    assert.equal(
      proxyNodeId({
        type: "router",
        instanceIp: "198.18.0.9",
        podName: "wp-1",
        podNamespace: "ns1",
        nodeName: "n",
        dnsDomain: "ns1.svc.example.org",
      }),
      "router~198.18.0.9~wp-1.ns1~ns1.svc.example.org",
    );
  });
});

describe("proxyMetadataFromEnv", () => {
  it("collects ISTIO_META_* as strings and ISTIO_METAJSON_* as JSON", () => {
    const r = proxyMetadataFromEnv({
      PATH: "/bin",
      ISTIO_META_DNS_CAPTURE: "true",
      ISTIO_METAJSON_LABELS: '{"a":"b"}',
      ISTIO_META_: "ignored",
    });
    assert.deepEqual(r, {
      ok: true,
      value: { metadata: { DNS_CAPTURE: "true" }, jsonMetadata: { LABELS: { a: "b" } } },
    });
  });

  it("reports every bad JSON value by variable name", () => {
    const r = proxyMetadataFromEnv({ ISTIO_METAJSON_A: "{", ISTIO_METAJSON_B: "nope" });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.reason.length, 2);
    assert.match(r.reason[0]!, /^ISTIO_METAJSON_A: not valid JSON/);
    assert.match(r.reason[1]!, /^ISTIO_METAJSON_B: not valid JSON/);
  });
});

describe("parseProxyInfo", () => {
  it("reads what buildProxyNode writes", () => {
    const info = parseProxyInfo(
      buildProxyNode({
        instanceIp: "198.18.0.7",
        podName: "ztunnel-x1",
        podNamespace: "istio-system",
        nodeName: "node-a",
        metadata: { CLUSTER_ID: "c1", NETWORK: "net1", SERVICE_ACCOUNT: "ztunnel" },
        jsonMetadata: { LABELS: { app: "ztunnel", n: 1 } },
      }),
    );
    assert.equal(info.type, "ztunnel");
    assert.deepEqual(info.ipAddresses, ["198.18.0.7"]);
    assert.equal(info.podName, "ztunnel-x1");
    assert.equal(info.namespace, "istio-system");
    assert.equal(info.nodeName, "node-a");
    assert.equal(info.clusterId, "c1");
    assert.equal(info.network, "net1");
    assert.equal(info.serviceAccount, "ztunnel");
    assert.deepEqual(info.labels, { app: "ztunnel" });
    assert.equal(info.dnsDomain, "istio-system.svc.cluster.local");
  });

  it("falls back to the id without metadata and splits INSTANCE_IPS", () => {
    const a = parseProxyInfo({ id: "sidecar~198.18.1.1~pod-a.ns-a~ns-a.svc.cluster.local" });
    assert.deepEqual(
      [a.type, a.podName, a.namespace, a.ipAddresses],
      ["sidecar", "pod-a", "ns-a", ["198.18.1.1"]],
    );
    const b = parseProxyInfo({
      id: "ztunnel~198.18.1.1~p.n~n.svc.cluster.local",
      metadata: { INSTANCE_IPS: "198.18.1.1, fd00::1" },
    });
    assert.deepEqual(b.ipAddresses, ["198.18.1.1", "fd00::1"]);
  });

  it("never fails on an id that is not Istio-shaped", () => {
    const info = parseProxyInfo({ id: "just-a-name" });
    assert.deepEqual(
      [info.id, info.type, info.podName, info.ipAddresses],
      ["just-a-name", "", "", []],
    );
  });
});
