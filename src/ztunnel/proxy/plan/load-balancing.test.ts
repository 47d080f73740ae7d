/**
 * Endpoint choice: routing-preference scopes (STRICT / FAILOVER, NETWORK first preferred but
 * not required), capacity weights and weighted waypoints, with a seeded RNG.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_ILLEGAL_PORTS, seededRng } from "./common.ts";
import type { Rng } from "./common.ts";
import { planOutbound } from "./outbound.ts";
import { localityRank } from "./upstream.ts";
import { loadInto, stateFrom } from "./fixtures.test-helper.ts";
import type { ProxyState, Workload } from "../../state/index.ts";

const source = `
workloads:
- {uid: Kubernetes//Pod/ns/source, name: source, namespace: ns, node: node-a, protocol: HBONE,
   workloadIps: [198.18.0.1], locality: {region: r1, zone: z1, subzone: s1}}
`;

function pick(state: ProxyState, rng: Rng, to = "198.18.100.1:80"): string {
  const [ip, port] = to.split(":") as [string, string];
  const p = planOutbound({
    source: state.workloadByUid("Kubernetes//Pod/ns/source"),
    destination: { ip, port: Number(port) },
    state,
    config: { network: "", illegalPorts: DEFAULT_ILLEGAL_PORTS },
    rng,
  });
  if (p.kind === "connect") return (p.waypoint ?? p.upstream).workload.name;
  return p.kind === "refused" ? `refused:${p.code}` : p.kind;
}

function svc(lb: string): string {
  return `services:
- {name: svc, namespace: ns, hostname: svc.ns.svc.cluster.local, vips: [/198.18.100.1], ports: {80: 80}, loadBalancer: ${lb}}`;
}

function endpoint(name: string, ip: string, extra = ""): string {
  return `- {uid: Kubernetes//Pod/ns/${name}, name: ${name}, namespace: ns, protocol: HBONE, workloadIps: [${ip}],
   services: {ns/svc.ns.svc.cluster.local: {}}${extra}}`;
}

/** Counts choices over `n` plans. */
function histogram(state: ProxyState, n: number, seed: number): Map<string, number> {
  const rng = seededRng(seed);
  const h = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const k = pick(state, rng);
    h.set(k, (h.get(k) ?? 0) + 1);
  }
  return h;
}

const localityEndpoints = `workloads:
${endpoint("same-zone", "198.18.1.1", ", locality: {region: r1, zone: z1}, status: Healthy")}
${endpoint("same-region", "198.18.1.2", ", locality: {region: r1, zone: z2}")}
${endpoint("far", "198.18.1.3", ", locality: {region: r9, zone: z9}")}`;

describe("locality load balancing", () => {
  const failover = svc("{mode: FAILOVER, routingPreferences: [NETWORK, REGION, ZONE]}");

  it("FAILOVER picks the closest healthy endpoints", () => {
    const state = stateFrom(source, failover, localityEndpoints);
    assert.deepEqual([...histogram(state, 200, 1).keys()], ["same-zone"]);
  });

  it("FAILOVER fails over to the same region, then anywhere", () => {
    const state = stateFrom(source, failover, localityEndpoints);
    loadInto(
      state,
      `workloads:\n${endpoint("same-zone", "198.18.1.1", ", locality: {region: r1, zone: z1}, status: Unhealthy")}`,
    );
    assert.deepEqual([...histogram(state, 200, 2).keys()], ["same-region"]);
    loadInto(
      state,
      `workloads:\n${endpoint("same-region", "198.18.1.2", ", locality: {region: r1, zone: z2}, status: Unhealthy")}`,
    );
    assert.deepEqual([...histogram(state, 200, 3).keys()], ["far"]);
  });

  it("STRICT requires every scope; no match is no healthy upstream", () => {
    const strict = svc("{mode: STRICT, routingPreferences: [NODE]}");
    const state = stateFrom(
      source,
      strict,
      `workloads:\n${endpoint("elsewhere", "198.18.1.5", ", node: node-b")}`,
    );
    assert.equal(pick(state, seededRng(1)), "refused:no-healthy-upstream");
    loadInto(state, `workloads:\n${endpoint("here", "198.18.1.6", ", node: node-a")}`);
    assert.deepEqual([...histogram(state, 100, 4).keys()], ["here"]);
  });

  it("STANDARD mode ignores locality", () => {
    const state = stateFrom(source, svc("{routingPreferences: [ZONE]}"), localityEndpoints);
    assert.deepEqual([...histogram(state, 600, 5).keys()].sort(), [
      "far",
      "same-region",
      "same-zone",
    ]);
  });

  it("NETWORK first is preferred, not required: other networks are ranked by the remaining scopes", () => {
    const yaml = `workloads:
${endpoint("remote-same-region", "198.19.1.1", ", network: west, locality: {region: r1, zone: z7}, networkGateway: {destination: west/198.19.0.1}")}
${endpoint("remote-far", "198.19.1.2", ", network: west, locality: {region: r9}, networkGateway: {destination: west/198.19.0.1}")}
- {uid: Kubernetes//Pod/istio-system/ew, name: ew, namespace: istio-system, network: west, protocol: HBONE, workloadIps: [198.19.0.1]}`;
    const state = stateFrom(
      source,
      svc("{mode: FAILOVER, routingPreferences: [NETWORK, REGION]}"),
      yaml,
    );
    const rng = seededRng(6);
    for (let i = 0; i < 50; i++) {
      const p = planOutbound({
        source: state.workloadByUid("Kubernetes//Pod/ns/source"),
        destination: { ip: "198.18.100.1", port: 80 },
        state,
        config: { network: "", illegalPorts: DEFAULT_ILLEGAL_PORTS },
        rng,
      });
      assert.equal(p.kind === "connect" && p.protocol, "DOUBLE_HBONE");
      assert.equal(p.kind === "connect" && p.upstream.workload.name, "remote-same-region");
    }
    // A same-network endpoint, even a far one, outranks every remote one.
    loadInto(
      state,
      `workloads:\n${endpoint("local-far", "198.18.1.9", ", locality: {region: r9}")}`,
    );
    assert.deepEqual([...histogram(state, 100, 7).keys()], ["local-far"]);
  });

  it("rank arithmetic", () => {
    const wl = (network: string, region: string, zone: string) =>
      ({
        network,
        locality: { region, zone, subzone: "" },
        node: "",
        clusterId: "",
      }) as unknown as Workload;
    const src = wl("n1", "r1", "z1");
    const prefs = ["NETWORK", "REGION", "ZONE"] as const;
    assert.deepEqual(localityRank(prefs, src, wl("n1", "r1", "z1")), { rank: 5, all: true });
    assert.deepEqual(localityRank(prefs, src, wl("n1", "r2", "z1")), { rank: 3, all: false });
    assert.deepEqual(localityRank(prefs, src, wl("n2", "r1", "z1")), { rank: 2, all: false });
    assert.deepEqual(localityRank(["REGION", "ZONE"], src, wl("n2", "r2", "z1")), {
      rank: 0,
      all: false,
    });
    assert.deepEqual(localityRank(["REGION", "ZONE"], src, wl("n2", "r1", "z1")), {
      rank: 2,
      all: true,
    });
  });
});

describe("capacity weights", () => {
  it("choices follow capacity (1:2:7) within statistical tolerance; capacity 0 is never chosen", () => {
    const state = stateFrom(
      source,
      svc("{}"),
      `workloads:
${endpoint("c1", "198.18.2.1", ", capacity: 1")}
${endpoint("c2", "198.18.2.2", ", capacity: 2")}
${endpoint("c7", "198.18.2.3", ", capacity: 7")}
${endpoint("c0", "198.18.2.4", ", capacity: 0")}`,
    );
    const n = 20000;
    const h = histogram(state, n, 42);
    assert.equal(h.get("c0"), undefined);
    for (const [name, share] of [
      ["c1", 0.1],
      ["c2", 0.2],
      ["c7", 0.7],
    ] as const) {
      const got = (h.get(name) ?? 0) / n;
      // 5 standard deviations of a binomial proportion: about 0.011 for p=0.7, n=20000.
      const tol = 5 * Math.sqrt((share * (1 - share)) / n);
      assert.ok(Math.abs(got - share) <= tol, `${name}: ${got} vs ${share} ± ${tol.toFixed(4)}`);
    }
  });

  it("only zero-capacity endpoints: no healthy upstream", () => {
    const state = stateFrom(
      source,
      svc("{}"),
      `workloads:\n${endpoint("c0", "198.18.2.4", ", capacity: 0")}`,
    );
    assert.equal(pick(state, seededRng(1)), "refused:no-healthy-upstream");
  });

  it("default capacity 1 spreads evenly", () => {
    const state = stateFrom(
      source,
      svc("{}"),
      `workloads:\n${endpoint("a", "198.18.3.1")}\n${endpoint("b", "198.18.3.2")}`,
    );
    const n = 10000;
    const a = (histogram(state, n, 9).get("a") ?? 0) / n;
    assert.ok(Math.abs(a - 0.5) <= 5 * Math.sqrt(0.25 / n), `a share ${a}`);
  });
});

describe("weighted waypoints", () => {
  it("samples the service's waypoints by weight (1:3)", () => {
    const state = stateFrom(
      source,
      `services:
- {name: svc, namespace: ns, hostname: svc.ns.svc.cluster.local, vips: [/198.18.100.1], ports: {80: 80},
   weightedWaypoints: [{destination: /198.18.0.21, weight: 1}, {destination: /198.18.0.23, weight: 3}]}
workloads:
- {uid: Kubernetes//Pod/ns/wp-a, name: wp-a, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.21]}
- {uid: Kubernetes//Pod/ns/wp-b, name: wp-b, namespace: ns, protocol: HBONE, workloadIps: [198.18.0.23]}`,
    );
    const n = 8000;
    const h = histogram(state, n, 11);
    const a = (h.get("wp-a") ?? 0) / n;
    assert.ok(Math.abs(a - 0.25) <= 5 * Math.sqrt((0.25 * 0.75) / n), `wp-a share ${a}`);
    assert.equal((h.get("wp-a") ?? 0) + (h.get("wp-b") ?? 0), n);
  });
});
