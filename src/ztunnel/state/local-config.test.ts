import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { applyLocalConfig, parseLocalConfig } from "./local-config.ts";
import { ProxyState } from "./proxy-state.ts";

describe("local config", () => {
  it("loads workloads, services and policies in ztunnel's shape", () => {
    const cfg = parseLocalConfig(`
workloads:
- uid: Kubernetes//Pod/ns/a
  name: a
  namespace: ns
  workloadIps: [198.18.0.1]
  protocol: HBONE
  status: Unhealthy
  locality: {region: r1, zone: z1}
  capacity: 3
  applicationTunnel: {protocol: PROXY, port: 15088}
  waypoint: {destination: ns/wp.ns.svc.cluster.local}
  networkGateway: {destination: net2/198.18.9.9, hboneMtlsPort: 15009}
  services: {ns/svc.ns.svc.cluster.local: {80: 8080}}
services:
- name: svc
  namespace: ns
  hostname: svc.ns.svc.cluster.local
  vips: [/198.18.10.1, net2/198.18.128.0/17]
  ports: {80: 8080}
  loadBalancer: {routingPreferences: [Network, Region], mode: Failover, healthPolicy: AllowAll}
policies:
- name: strict
  namespace: istio-system
  scope: WorkloadSelector
  action: Deny
  rules: [[[{notPrincipals: [{presence: {}}]}]]]
`);
    assert.ok(cfg.ok, cfg.ok ? "" : cfg.reason.join("\n"));
    assert.deepEqual(
      cfg.value.addresses.map((a) => a.name),
      ["Kubernetes//Pod/ns/a", "ns/svc.ns.svc.cluster.local"],
    );
    const s = new ProxyState();
    applyLocalConfig(s, cfg.value);
    const w = s.workloadByUid("Kubernetes//Pod/ns/a")!;
    assert.equal(w.protocol, "HBONE");
    assert.equal(w.status, "UNHEALTHY");
    assert.equal(w.capacity, 3);
    assert.deepEqual(w.locality, { region: "r1", zone: "z1", subzone: "" });
    assert.deepEqual(w.applicationTunnel, { protocol: "PROXY", port: 15088 });
    assert.deepEqual(w.waypoint?.destination, {
      kind: "hostname",
      hostname: { namespace: "ns", hostname: "wp.ns.svc.cluster.local" },
    });
    assert.equal(w.waypoint?.hboneMtlsPort, 15008);
    assert.deepEqual(w.networkGateway, {
      destination: { kind: "address", address: { network: "net2", address: "198.18.9.9" } },
      hboneMtlsPort: 15009,
    });
    const svc = s.serviceByVip("net2", "198.18.200.1");
    assert.equal(svc?.name, "svc");
    assert.deepEqual(svc?.loadBalancing, {
      routingPreference: ["NETWORK", "REGION"],
      mode: "FAILOVER",
      healthPolicy: "ALLOW_ALL",
    });
    assert.deepEqual(s.policy("istio-system/strict")?.rules[0]?.[0]?.[0]?.notPrincipals, [
      { kind: "presence" },
    ]);
  });

  it("reports every problem at once, with paths, and applies nothing", () => {
    const cfg = parseLocalConfig(`
workloads:
- {uid: ok, name: fine, namespace: ns}
- {uid: bad-ip, workloadIps: [999.1.1.1]}
- {uid: legacy, protocol: LEGACY_ISTIO_MTLS}
- {uid: bad-enum, protocol: QUIC}
services:
- {name: s, hostname: ""}
policies:
- {name: p, namespace: ns, rules: [[[{principals: [{regex: ".*"}]}]]]}
extra: 1
`);
    assert.equal(cfg.ok, false);
    assert.deepEqual(!cfg.ok && cfg.reason, [
      "extra: unknown key (expected workloads, services, policies)",
      'workloads[1].workloadIps[0]: "999.1.1.1" is not an IP address',
      "workloads[2]: tunnel_protocol: LEGACY_ISTIO_MTLS is not supported by ztunnel (use HBONE or NONE)",
      "workloads[3].protocol: expected one of TCP, HBONE, LEGACY_ISTIO_MTLS",
      "services[0]: hostname: hostname must not be empty",
      "policies[0].rules[0][0][0].principals[0]: expected one of {exact: s}, {prefix: s}, {suffix: s}, {presence: {}}",
    ]);
  });

  it("accepts an empty document", () => {
    const cfg = parseLocalConfig("");
    assert.ok(cfg.ok);
    assert.equal(cfg.value.addresses.length, 0);
  });
});
