import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseIdentity, type Identity } from "../../lib/identity/index.ts";
import { applyLocalConfig, parseLocalConfig, ProxyState, type Workload } from "../state/index.ts";
import { trafficLabels, withResponseFlag } from "./traffic-labels.ts";

function id(s: string): Identity {
  const r = parseIdentity(s);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

const state = new ProxyState();
const cfg = parseLocalConfig(`
workloads:
- uid: c1//Pod/ns/client
  name: client-7d9f
  namespace: ns
  serviceAccount: client
  workloadIps: [198.18.0.1]
  protocol: HBONE
  canonicalName: client
  canonicalRevision: v2
  workloadName: client
  clusterId: c1
  locality: {region: r1, zone: z1}
- uid: c1//Pod/ns/server
  name: server-1
  namespace: ns
  serviceAccount: server
  workloadIps: [198.18.0.2]
  protocol: HBONE
  workloadName: server
  clusterId: c1
`);
if (!cfg.ok) throw new Error(cfg.reason.join("; "));
applyLocalConfig(state, cfg.value);
const client = state.workloadByUid("c1//Pod/ns/client") as Workload;
const server = state.workloadByUid("c1//Pod/ns/server") as Workload;
const svc = { hostname: "server.ns.svc.cluster.local", name: "server", namespace: "ns" };

describe("trafficLabels", () => {
  it("labels an outbound HBONE connection like ztunnel: our identity as source principal", () => {
    const l = trafficLabels({
      reporter: "source",
      source: client,
      derivedSource: { identity: client.identity },
      destination: server,
      destinationService: svc,
      securityPolicy: "mutual_tls",
    });
    assert.deepEqual(
      { ...l },
      {
        reporter: "source",
        source_workload: "client",
        source_canonical_service: "client",
        source_canonical_revision: "v2",
        source_workload_namespace: "ns",
        source_principal: "spiffe://cluster.local/ns/ns/sa/client",
        source_app: "client",
        source_version: "v2",
        source_cluster: "c1",
        destination_service: "server.ns.svc.cluster.local",
        destination_service_namespace: "ns",
        destination_service_name: "server",
        destination_workload: "server",
        destination_canonical_service: "unknown",
        destination_canonical_revision: "unknown",
        destination_workload_namespace: "ns",
        destination_principal: "spiffe://cluster.local/ns/ns/sa/server",
        destination_app: "unknown",
        destination_version: "unknown",
        destination_cluster: "c1",
        request_protocol: "tcp",
        response_flags: "-",
        connection_security_policy: "mutual_tls",
        source_region: "r1",
        source_zone: "z1",
        destination_region: "unknown",
        destination_zone: "unknown",
      },
    );
  });

  it("never takes source_principal from a workload found by IP", () => {
    const l = trafficLabels({
      reporter: "destination",
      source: client,
      derivedSource: {},
      destination: server,
      destinationService: undefined,
      securityPolicy: "unknown",
    });
    assert.equal(l.source_principal, "unknown");
    assert.equal(l.source_workload, "client");
    assert.equal(l.destination_service, "unknown");
  });

  it("describes an unknown source by its baggage, with the mTLS identity", () => {
    const l = trafficLabels({
      reporter: "destination",
      source: undefined,
      derivedSource: {
        identity: id("spiffe://td/ns/remote/sa/app"),
        workloadName: "app",
        app: "app-svc",
        revision: "v9",
        namespace: "remote",
        clusterId: "east",
        region: "eu",
        zone: "eu-1",
      },
      destination: server,
      destinationService: svc,
      securityPolicy: "mutual_tls",
    });
    assert.equal(l.source_principal, "spiffe://td/ns/remote/sa/app");
    assert.equal(l.source_workload, "app");
    assert.equal(
      l.source_app,
      "app",
      "ztunnel reports the workload name as app for derived sources",
    );
    assert.equal(l.source_canonical_service, "app-svc");
    assert.equal(l.source_version, "v9");
    assert.equal(l.source_cluster, "east");
    assert.equal(l.source_region, "eu");
    assert.equal(l.source_zone, "eu-1");
  });

  it("leaves the locality labels out when neither end is known", () => {
    const l = trafficLabels({
      reporter: "source",
      source: undefined,
      derivedSource: undefined,
      destination: undefined,
      destinationService: undefined,
      securityPolicy: "unknown",
    });
    assert.equal("source_region" in l, false);
    assert.equal("destination_zone" in l, false);
    assert.equal(l.destination_workload, "unknown");
  });

  it("withResponseFlag copies only when the flag differs", () => {
    const l = trafficLabels({
      reporter: "source",
      source: client,
      derivedSource: undefined,
      destination: undefined,
      destinationService: undefined,
      securityPolicy: "unknown",
    });
    assert.equal(withResponseFlag(l, "-"), l);
    const d = withResponseFlag(l, "DENY");
    assert.equal(d.response_flags, "DENY");
    assert.equal(l.response_flags, "-");
  });
});
