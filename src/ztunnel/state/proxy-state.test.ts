import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { AddressSchema } from "../../lib/gen/istio/workload/workload_pb.ts";
import { applyLocalConfig, parseLocalConfig } from "./local-config.ts";
import { ProxyState } from "./proxy-state.ts";
import type { StateChanges } from "./proxy-state.ts";

function load(yaml: string, state = new ProxyState({ localNode: "node-a" })): ProxyState {
  const cfg = parseLocalConfig(yaml);
  if (!cfg.ok) assert.fail(cfg.reason.join("\n"));
  applyLocalConfig(state, cfg.value);
  return state;
}

describe("ProxyState: workloads", () => {
  const yaml = `
workloads:
- {uid: Kubernetes//Pod/ns/a, name: a, namespace: ns, serviceAccount: sa-a, node: node-a, protocol: HBONE, workloadIps: [198.18.0.1, "fd00::1"]}
- {uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, node: node-b, workloadIps: [198.18.0.2]}
- {uid: Kubernetes//Pod/ns/host, name: host, namespace: ns, node: node-a, networkMode: HOST_NETWORK, workloadIps: [198.18.0.100]}
- {uid: Kubernetes//Pod/ns/other-net, name: c, namespace: ns, network: net2, workloadIps: [198.18.0.1]}
- {uid: Kubernetes//Pod/ns/dns, name: dns, namespace: ns, hostname: db.example.com}
`;
  it("indexes by uid and by <network>/<ip>", () => {
    const s = load(yaml);
    assert.equal(s.workloadByUid("Kubernetes//Pod/ns/b")?.name, "b");
    assert.equal(s.workloadByAddress("", "198.18.0.1")?.name, "a");
    assert.equal(s.workloadByAddress("", "fd00::1")?.name, "a");
    assert.equal(s.workloadByAddress("net2", "198.18.0.1")?.name, "c");
    assert.equal(s.workloadByAddress("", "198.18.0.9"), undefined);
  });

  it("never finds host-network workloads by IP", () => {
    const s = load(yaml);
    assert.equal(s.workloadByAddress("", "198.18.0.100"), undefined);
    assert.equal(s.workloadByUid("Kubernetes//Pod/ns/host")?.name, "host");
  });

  it("finds workloads by hostname", () => {
    const s = load(yaml);
    assert.equal(
      s.workloadByHostname({ namespace: "ns", hostname: "db.example.com" })?.name,
      "dns",
    );
    assert.equal(s.findHostname({ namespace: "ns", hostname: "db.example.com" })?.kind, "workload");
  });

  it("knows node-local workloads and matches ZDS info", () => {
    const s = load(yaml);
    assert.deepEqual([...s.localWorkloads()].map((w) => w.name).sort(), ["a", "host"]);
    assert.equal(
      s.findLocalWorkload({ name: "a", namespace: "ns", serviceAccount: "sa-a" })?.uid,
      "Kubernetes//Pod/ns/a",
    );
    assert.equal(
      s.findLocalWorkload({ name: "b", namespace: "ns", serviceAccount: "default" }),
      undefined,
      "b is on node-b",
    );
    assert.equal(
      s.findLocalWorkload({ name: "a", namespace: "ns", serviceAccount: "default" }),
      undefined,
      "wrong SA",
    );
  });

  it("prefers a pod, then HBONE, when several workloads claim one IP", () => {
    const s = load(`
workloads:
- {uid: cluster/networking.istio.io/WorkloadEntry/ns/we, name: we, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.5]}
- {uid: Kubernetes//Pod/ns/tcp-pod, name: tcp-pod, namespace: ns, workloadIps: [198.18.0.5]}
- {uid: Kubernetes//Pod/ns/hbone-pod, name: hbone-pod, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.5]}
`);
    assert.equal(s.workloadByAddress("", "198.18.0.5")?.name, "hbone-pod");
    s.removeAddress("Kubernetes//Pod/ns/hbone-pod");
    assert.equal(s.workloadByAddress("", "198.18.0.5")?.name, "tcp-pod");
    s.removeAddress("Kubernetes//Pod/ns/tcp-pod");
    assert.equal(s.workloadByAddress("", "198.18.0.5")?.name, "we");
  });

  it("re-indexes a workload whose IP changed", () => {
    const s = load(yaml);
    load(
      `workloads: [{uid: Kubernetes//Pod/ns/b, name: b, namespace: ns, workloadIps: [198.18.0.22]}]`,
      s,
    );
    assert.equal(s.workloadByAddress("", "198.18.0.2"), undefined);
    assert.equal(s.workloadByAddress("", "198.18.0.22")?.name, "b");
  });
});

describe("ProxyState: services, endpoints and staging", () => {
  it("stages endpoints of workloads that arrive before their service", () => {
    const s = load(`
workloads:
- {uid: u1, name: p1, namespace: ns, workloadIps: [198.18.0.1], services: {ns/svc.ns.svc.cluster.local: {80: 8080}}}
`);
    assert.deepEqual([...s.stagedServices().keys()], ["ns/svc.ns.svc.cluster.local"]);
    load(
      `services: [{name: svc, namespace: ns, hostname: svc.ns.svc.cluster.local, vips: [/198.18.10.1], ports: {80: 8080}}]`,
      s,
    );
    assert.deepEqual([...s.stagedServices().keys()], []);
    const eps = s.endpoints("ns/svc.ns.svc.cluster.local");
    assert.deepEqual([...eps.keys()], ["u1"]);
    assert.deepEqual([...eps.get("u1")!.ports], [[80, 8080]]);
  });

  it("keeps endpoints when a service is replaced, removed and re-added", () => {
    const s = load(`
services: [{name: svc, namespace: ns, hostname: svc.ns.svc.cluster.local, vips: [/198.18.10.1], ports: {80: 8080}}]
workloads:
- {uid: u1, name: p1, namespace: ns, workloadIps: [198.18.0.1], services: {ns/svc.ns.svc.cluster.local: {}}}
`);
    load(
      `services: [{name: svc, namespace: ns, hostname: svc.ns.svc.cluster.local, vips: [/198.18.10.2], ports: {80: 9090}}]`,
      s,
    );
    assert.deepEqual([...s.endpoints("ns/svc.ns.svc.cluster.local").keys()], ["u1"]);
    assert.equal(s.serviceByVip("", "198.18.10.1"), undefined, "the old VIP is gone");
    assert.equal(s.serviceByVip("", "198.18.10.2")?.name, "svc");
    assert.equal(s.removeAddress("ns/svc.ns.svc.cluster.local"), "service");
    assert.equal(s.serviceByVip("", "198.18.10.2"), undefined);
    assert.deepEqual([...s.stagedServices().keys()], ["ns/svc.ns.svc.cluster.local"]);
    load(
      `services: [{name: svc, namespace: ns, hostname: svc.ns.svc.cluster.local, vips: [/198.18.10.2], ports: {80: 9090}}]`,
      s,
    );
    assert.deepEqual([...s.endpoints("ns/svc.ns.svc.cluster.local").keys()], ["u1"]);
  });

  it("drops a workload's endpoints when it is removed or leaves the service", () => {
    const s = load(`
services: [{name: svc, namespace: ns, hostname: svc.ns.svc.cluster.local, ports: {80: 8080}}]
workloads:
- {uid: u1, name: p1, namespace: ns, workloadIps: [198.18.0.1], services: {ns/svc.ns.svc.cluster.local: {}}}
- {uid: u2, name: p2, namespace: ns, workloadIps: [198.18.0.2], services: {ns/svc.ns.svc.cluster.local: {}}}
`);
    load(`workloads: [{uid: u2, name: p2, namespace: ns, workloadIps: [198.18.0.2]}]`, s);
    assert.deepEqual([...s.endpoints("ns/svc.ns.svc.cluster.local").keys()], ["u1"]);
    s.removeAddress("u1");
    assert.equal(s.endpoints("ns/svc.ns.svc.cluster.local").size, 0);
  });

  it("removal by xDS name: uid first, then namespace/hostname, never a uid-looking name as a service", () => {
    const s = load(`
services: [{name: svc, namespace: ns, hostname: svc.ns.svc.cluster.local}]
workloads: [{uid: ns/svc.ns.svc.cluster.local, name: odd, namespace: ns}]
`);
    // A workload whose uid collides with a service key is removed first.
    assert.equal(s.removeAddress("ns/svc.ns.svc.cluster.local"), "workload");
    assert.equal(s.serviceByKey("ns/svc.ns.svc.cluster.local")?.name, "svc");
    assert.equal(s.removeAddress("Kubernetes//Pod/ns/svc.ns.svc.cluster.local"), undefined);
    assert.equal(s.removeAddress("no-slash"), undefined);
    assert.equal(s.removeAddress("ns/svc.ns.svc.cluster.local"), "service");
    assert.equal(s.removeAddress("ns/svc.ns.svc.cluster.local"), undefined);
  });

  it("finds services by hostname across namespaces and lists a workload's services", () => {
    const s = load(`
services:
- {name: a, namespace: ns1, hostname: shared.example.com}
- {name: b, namespace: ns2, hostname: shared.example.com}
workloads: [{uid: u, name: p, namespace: ns1, services: {ns1/shared.example.com: {}, ns9/unknown.example.com: {}}}]
`);
    assert.deepEqual(
      s
        .servicesByHostname("shared.example.com")
        .map((x) => x.namespace)
        .sort(),
      ["ns1", "ns2"],
    );
    assert.deepEqual(
      s.servicesOf(s.workloadByUid("u")!).map((x) => x.name),
      ["a"],
    );
  });
});

describe("ProxyState: is this service-addressed? (VIP lookups)", () => {
  it("returns the workload owning the IP before a service VIP", () => {
    const s = load(`
services: [{name: svc, namespace: ns, hostname: svc.example.com, vips: [/198.18.0.1]}]
workloads: [{uid: u, name: p, namespace: ns, workloadIps: [198.18.0.1]}]
`);
    assert.equal(s.findAddress("", "198.18.0.1")?.kind, "workload");
    s.removeAddress("u");
    assert.equal(s.findAddress("", "198.18.0.1")?.kind, "service");
  });

  const collisions = `
services:
- {name: a, namespace: ns-a, hostname: a.example.com, vips: [/198.18.20.1]}
- {name: b, namespace: ns-b, hostname: b.example.com, vips: [/198.18.20.1], canonical: true}
- {name: private, namespace: ns-p, hostname: p.example.com, vips: [/198.18.20.2], visibility: NAMESPACE}
- {name: public, namespace: ns-q, hostname: q.example.com, vips: [/198.18.20.2]}
`;
  it("VIP collision: the client's namespace wins, then canonical", () => {
    const s = load(collisions);
    assert.equal(s.serviceByVip("", "198.18.20.1", "ns-a")?.name, "a");
    assert.equal(s.serviceByVip("", "198.18.20.1", "ns-b")?.name, "b");
    assert.equal(s.serviceByVip("", "198.18.20.1", "elsewhere")?.name, "b", "canonical");
  });

  it("VIP collision: a namespace-private service is invisible to other namespaces", () => {
    const s = load(collisions);
    assert.equal(s.serviceByVip("", "198.18.20.2", "ns-p")?.name, "private");
    assert.equal(s.serviceByVip("", "198.18.20.2", "elsewhere")?.name, "public");
    const only = load(
      `services: [{name: private, namespace: ns-p, hostname: p.example.com, vips: [/198.18.20.2], visibility: NAMESPACE}]`,
    );
    assert.equal(only.serviceByVip("", "198.18.20.2", "elsewhere"), undefined);
    assert.equal(only.findAddress("", "198.18.20.2", "elsewhere"), undefined);
  });

  it("CIDR VIPs: exact first, then same namespace, longest prefix, canonical", () => {
    const s = load(`
services:
- {name: wide, namespace: ns-x, hostname: wide.example.com, vips: [/198.18.0.0/15]}
- {name: narrow, namespace: ns-y, hostname: narrow.example.com, vips: [/198.18.64.0/18]}
- {name: narrow-canon, namespace: ns-z, hostname: nc.example.com, vips: [/198.18.64.0/18], canonical: true}
- {name: exact, namespace: ns-e, hostname: exact.example.com, vips: [/198.18.64.9]}
- {name: v6, namespace: ns-x, hostname: v6.example.com, vips: ["/fd00::/16"]}
`);
    assert.equal(s.serviceByVip("", "198.18.64.9", "ns-x")?.name, "exact");
    assert.equal(
      s.serviceByVip("", "198.18.64.10", "ns-x")?.name,
      "wide",
      "same namespace beats longer prefix",
    );
    assert.equal(
      s.serviceByVip("", "198.18.64.10", "other")?.name,
      "narrow-canon",
      "longest prefix, then canonical",
    );
    assert.equal(s.serviceByVip("", "198.18.1.1", "other")?.name, "wide");
    assert.equal(s.serviceByVip("", "198.20.0.1", "other"), undefined);
    assert.equal(s.serviceByVip("", "fd00:1::1", "other")?.name, "v6");
    assert.equal(
      s.serviceByVip("net2", "198.18.64.10", "other"),
      undefined,
      "VIPs are per network",
    );
    s.removeAddress("ns-z/nc.example.com");
    assert.equal(s.serviceByVip("", "198.18.64.10", "other")?.name, "narrow");
    s.removeAddress("ns-y/narrow.example.com");
    assert.equal(s.serviceByVip("", "198.18.64.10", "other")?.name, "wide");
  });
});

describe("ProxyState: policies", () => {
  it("indexes by key, namespace and global scope", () => {
    const s = load(`
policies:
- {name: ns-wide, namespace: ns, scope: NAMESPACE, action: DENY, rules: [[]]}
- {name: mesh, namespace: istio-system, scope: GLOBAL, action: DENY, rules: [[]]}
- {name: sel, namespace: ns, scope: WORKLOAD_SELECTOR, action: ALLOW}
`);
    assert.deepEqual([...s.namespacePolicyKeys("ns")], ["ns/ns-wide"]);
    assert.deepEqual([...s.globalPolicyKeys()], ["istio-system/mesh"]);
    assert.equal(s.policy("ns/sel")?.action, "ALLOW");
    // Changing scope re-indexes.
    load(`policies: [{name: ns-wide, namespace: ns, scope: WORKLOAD_SELECTOR, action: DENY}]`, s);
    assert.deepEqual([...s.namespacePolicyKeys("ns")], []);
    assert.ok(s.removeAuthorization("istio-system/mesh"));
    assert.deepEqual([...s.globalPolicyKeys()], []);
  });
});

describe("ProxyState: change feed", () => {
  it("reports net additions, updates and removals per commit, and local identities", () => {
    const s = new ProxyState({ localNode: "node-a" });
    const seen: StateChanges[] = [];
    const unsubscribe = s.subscribe((c) => seen.push(c));
    load(
      `
workloads:
- {uid: u1, name: p1, namespace: ns, serviceAccount: sa1, node: node-a, protocol: HBONE}
- {uid: u2, name: p2, namespace: ns, serviceAccount: sa1, node: node-a, protocol: HBONE}
- {uid: u3, name: p3, namespace: ns, serviceAccount: tcp-only, node: node-a}
- {uid: u4, name: p4, namespace: ns, serviceAccount: remote, node: node-b, protocol: HBONE}
services: [{name: svc, namespace: ns, hostname: svc.example.com}]
policies: [{name: p, namespace: ns, scope: NAMESPACE, action: ALLOW}]
`,
      s,
    );
    const first = seen[0]!;
    assert.deepEqual([...first.workloads.added].sort(), ["u1", "u2", "u3", "u4"]);
    assert.deepEqual(first.services.added, ["ns/svc.example.com"]);
    assert.deepEqual(first.policies.added, ["ns/p"]);
    assert.deepEqual(
      first.localIdentities.added.map((i) => i.serviceAccount),
      ["sa1"],
      "only node-local HBONE/native-tunnel workloads need certificates",
    );

    // One of two workloads with sa1 leaves: the certificate is still needed.
    s.removeAddress("u1");
    let c = s.commit();
    assert.deepEqual(c.workloads.removed, ["u1"]);
    assert.deepEqual(c.localIdentities.removed, []);
    s.removeAddress("u2");
    c = s.commit();
    assert.deepEqual(
      c.localIdentities.removed.map((i) => i.serviceAccount),
      ["sa1"],
    );

    // Updates, and a membership change touching the service.
    load(
      `workloads: [{uid: u3, name: p3, namespace: ns, serviceAccount: tcp-only, node: node-a, services: {ns/svc.example.com: {}}}]`,
      s,
    );
    c = seen.at(-1)!;
    assert.deepEqual(c.workloads.updated, ["u3"]);
    assert.deepEqual(c.services.updated, ["ns/svc.example.com"]);

    // Added and removed within one batch: nothing to report.
    s.applyAddress(
      create(AddressSchema, { type: { case: "workload", value: { uid: "tmp", namespace: "ns" } } }),
    );
    s.removeAddress("tmp");
    s.removeAuthorization("ns/p");
    c = s.commit();
    assert.deepEqual(c.workloads, { added: [], updated: [], removed: [] });
    assert.deepEqual(c.policies.removed, ["ns/p"]);
    unsubscribe();
    const before = seen.length;
    s.commit();
    assert.equal(seen.length, before);
  });

  it("leaves the state untouched when a resource is rejected", () => {
    const s = new ProxyState();
    const r = s.applyAddress(
      create(AddressSchema, {
        type: { case: "workload", value: { uid: "u", addresses: [new Uint8Array(3)] } },
      }),
    );
    assert.deepEqual(r, {
      ok: false,
      reason: "addresses[0]: address has 3 bytes (expected 4 or 16)",
    });
    assert.equal(s.workloadByUid("u"), undefined);
    assert.deepEqual(s.commit().workloads, { added: [], updated: [], removed: [] });
  });
});
