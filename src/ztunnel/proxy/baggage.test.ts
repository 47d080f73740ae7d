import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseBaggage } from "../../lib/hbone/index.ts";
import { applyLocalConfig, parseLocalConfig, ProxyState, type Workload } from "../state/index.ts";
import { derivedFromBaggage, workloadBaggage } from "./baggage.ts";

function workload(yaml: string): Workload {
  const state = new ProxyState();
  const cfg = parseLocalConfig(`workloads:\n${yaml}`);
  if (!cfg.ok) throw new Error(cfg.reason.join("; "));
  applyLocalConfig(state, cfg.value);
  return [...state.workloads()][0] as Workload;
}

describe("baggage", () => {
  it("describes a workload in ztunnel's order, leaving empty values out", () => {
    const w = workload(
      `- {uid: k//Pod/ns/p, name: p, namespace: shop, workloadName: cart, workloadType: deployment, canonicalName: cart-svc, canonicalRevision: v3, locality: {region: eu, zone: eu-a}}`,
    );
    assert.equal(
      workloadBaggage(w, "Kubernetes"),
      "k8s.cluster.name=Kubernetes,k8s.namespace.name=shop,k8s.deployment.name=cart,service.name=cart-svc,service.version=v3,cloud.region=eu,cloud.availability_zone=eu-a",
    );
    const bare = workload(`- {uid: k//Pod/ns/q, name: q, namespace: ns, workloadType: job}`);
    assert.equal(workloadBaggage(bare, ""), "k8s.namespace.name=ns");
  });

  it("reads a peer's baggage back into telemetry fields", () => {
    const d = derivedFromBaggage(
      parseBaggage(
        "k8s.cluster.name=east,k8s.namespace.name=ns,k8s.cronjob.name=nightly,service.name=n,service.version=v1,cloud.region=r,cloud.availability_zone=z,other=x",
      ),
    );
    assert.deepEqual(d, {
      clusterId: "east",
      namespace: "ns",
      workloadName: "nightly",
      app: "n",
      revision: "v1",
      region: "r",
      zone: "z",
    });
  });
});
