import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  AddressSchema,
  ServiceSchema,
  WorkloadSchema,
  type TunnelProtocol,
  type WorkloadStatus,
} from "../../lib/gen/istio/workload/workload_pb.ts";
import { decodeMessage, encodeMessage } from "../../lib/proto/index.ts";
import { addressFromXds, serviceFromXds, workloadFromXds } from "./convert.ts";

type WorkloadInit = MessageInitShape<typeof WorkloadSchema>;
type ServiceInit = MessageInitShape<typeof ServiceSchema>;

const v4 = (...b: number[]) => new Uint8Array(b);

/** Through the wire, so field numbers are exercised as well. */
function workload(init: WorkloadInit) {
  const d = decodeMessage(
    WorkloadSchema,
    encodeMessage(WorkloadSchema, create(WorkloadSchema, init)),
  );
  assert.ok(d.ok);
  return d.value;
}
function service(init: ServiceInit) {
  const d = decodeMessage(ServiceSchema, encodeMessage(ServiceSchema, create(ServiceSchema, init)));
  assert.ok(d.ok);
  return d.value;
}

describe("workloadFromXds", () => {
  it("applies defaults and canonical forms", () => {
    const r = workloadFromXds(
      workload({
        uid: "Kubernetes//Pod/ns/a",
        name: "a",
        namespace: "ns",
        addresses: [
          v4(198, 18, 0, 1),
          new Uint8Array([0xfd, 0, ...new Array<number>(13).fill(0), 1]),
        ],
        workloadType: 2,
        services: {
          "ns/svc.ns.svc.cluster.local": { ports: [{ servicePort: 80, targetPort: 8080 }] },
        },
      }),
    );
    assert.ok(r.ok, r.ok ? "" : r.reason);
    const w = r.value.workload;
    assert.deepEqual(w.workloadIps, ["198.18.0.1", "fd00::1"]);
    assert.equal(w.trustDomain, "cluster.local");
    assert.equal(w.serviceAccount, "default");
    assert.equal(w.clusterId, "Kubernetes");
    assert.equal(w.capacity, 1);
    assert.equal(w.protocol, "TCP");
    assert.equal(w.status, "HEALTHY");
    assert.equal(w.workloadType, "pod");
    assert.deepEqual(w.identity, {
      trustDomain: "cluster.local",
      namespace: "ns",
      serviceAccount: "default",
    });
    assert.deepEqual(w.services, [{ namespace: "ns", hostname: "svc.ns.svc.cluster.local" }]);
    assert.deepEqual([...r.value.services.get("ns/svc.ns.svc.cluster.local")!], [[80, 8080]]);
  });

  it("keeps explicit values, including a capacity of 0", () => {
    const r = workloadFromXds(
      workload({
        uid: "u",
        namespace: "ns",
        trustDomain: "td.example",
        serviceAccount: "sa",
        clusterId: "c2",
        capacity: 0,
        tunnelProtocol: 1,
        applicationTunnel: { protocol: 1, port: 15088 },
        waypoint: {
          destination: {
            case: "hostname",
            value: { namespace: "ns", hostname: "wp.ns.svc.cluster.local" },
          },
          hboneMtlsPort: 15008,
        },
      }),
    );
    assert.ok(r.ok, r.ok ? "" : r.reason);
    assert.equal(r.value.workload.capacity, 0);
    assert.equal(r.value.workload.protocol, "HBONE");
    assert.deepEqual(r.value.workload.applicationTunnel, { protocol: "PROXY", port: 15088 });
    assert.deepEqual(r.value.workload.waypoint, {
      destination: {
        kind: "hostname",
        hostname: { namespace: "ns", hostname: "wp.ns.svc.cluster.local" },
      },
      hboneMtlsPort: 15008,
    });
    assert.deepEqual(r.value.workload.identity, {
      trustDomain: "td.example",
      namespace: "ns",
      serviceAccount: "sa",
    });
  });

  const rejects: [string, WorkloadInit, string][] = [
    [
      "address of 5 bytes",
      { uid: "u", addresses: [v4(1, 2, 3, 4), new Uint8Array(5)] },
      "addresses[1]: address has 5 bytes (expected 4 or 16)",
    ],
    [
      "empty address",
      { uid: "u", addresses: [new Uint8Array(0)] },
      "addresses[0]: address has 0 bytes (expected 4 or 16)",
    ],
    [
      "LEGACY_ISTIO_MTLS",
      { uid: "u", tunnelProtocol: 2 as TunnelProtocol },
      "tunnel_protocol: LEGACY_ISTIO_MTLS is not supported by ztunnel (use HBONE or NONE)",
    ],
    [
      "unknown tunnel protocol",
      { uid: "u", tunnelProtocol: 9 as TunnelProtocol },
      "tunnel_protocol: unknown value 9",
    ],
    ["unknown status", { uid: "u", status: 4 as WorkloadStatus }, "status: unknown value 4"],
    ["empty uid", { uid: "" }, "uid: must not be empty"],
    [
      "waypoint without destination",
      { uid: "u", waypoint: { hboneMtlsPort: 15008 } },
      "waypoint: gateway address has no destination (need hostname or address)",
    ],
    [
      "network gateway with a bad address",
      {
        uid: "u",
        networkGateway: {
          destination: { case: "address", value: { network: "n", address: v4(1, 2) } },
        },
      },
      "network_gateway.address.address: address has 2 bytes (expected 4 or 16)",
    ],
    [
      "gateway with an empty hostname",
      {
        uid: "u",
        waypoint: { destination: { case: "hostname", value: { namespace: "ns", hostname: "" } } },
      },
      "waypoint.hostname: hostname must not be empty",
    ],
    [
      "services key without /",
      { uid: "u", services: { "svc.example.com": { ports: [] } } },
      'services["svc.example.com"]: key must be "<namespace>/<hostname>"',
    ],
    [
      "malformed service hostname",
      { uid: "u", services: { "ns/bad host": { ports: [] } } },
      'services["ns/bad host"]: hostname "bad host" is not a valid DNS name',
    ],
    [
      "port beyond 65535",
      {
        uid: "u",
        services: { "ns/s.example.com": { ports: [{ servicePort: 80, targetPort: 70000 }] } },
      },
      'services["ns/s.example.com"].ports[0].target_port: port 70000 is out of range (1-65535)',
    ],
    [
      "malformed workload hostname",
      { uid: "u", hostname: "a..b" },
      'hostname: hostname "a..b" is not a valid DNS name',
    ],
  ];
  for (const [name, init, reason] of rejects) {
    it(`rejects: ${name}`, () => {
      assert.deepEqual(workloadFromXds(workload(init)), { ok: false, reason });
    });
  }
});

describe("serviceFromXds", () => {
  it("converts VIPs (host and CIDR), ports, SANs, load balancing and newer fields", () => {
    const r = serviceFromXds(
      service({
        name: "svc",
        namespace: "ns",
        hostname: "svc.ns.svc.cluster.local",
        addresses: [
          { network: "", address: v4(198, 18, 10, 1) },
          { network: "net2", address: v4(198, 18, 10, 2), length: 32 },
          { network: "", address: v4(198, 19, 7, 9), length: 16 },
        ],
        ports: [{ servicePort: 80, targetPort: 8080 }, { servicePort: 81 }],
        subjectAltNames: ["spiffe://cluster.local/ns/ns/sa/svc", "not-a-spiffe-id"],
        loadBalancing: { routingPreference: [6, 1, 2], mode: 2, healthPolicy: 1 },
        ipFamilies: 1,
        canonical: true,
        visibility: 1,
        weightedWaypoints: [
          {
            destination: {
              destination: { case: "hostname", value: { namespace: "ns", hostname: "wp1" } },
              hboneMtlsPort: 15008,
            },
            weight: 3,
          },
        ],
      }),
    );
    assert.ok(r.ok, r.ok ? "" : r.reason);
    const s = r.value;
    assert.deepEqual(s.vips, [
      { network: "", address: "198.18.10.1", family: 4, prefixLength: 32 },
      { network: "net2", address: "198.18.10.2", family: 4, prefixLength: 32 },
      { network: "", address: "198.19.0.0", family: 4, prefixLength: 16 },
    ]);
    assert.deepEqual(
      [...s.ports],
      [
        [80, 8080],
        [81, 0],
      ],
    );
    assert.deepEqual(s.sanIdentities, [
      { trustDomain: "cluster.local", namespace: "ns", serviceAccount: "svc" },
    ]);
    assert.deepEqual(s.loadBalancing, {
      routingPreference: ["NETWORK", "REGION", "ZONE"],
      mode: "FAILOVER",
      healthPolicy: "ALLOW_ALL",
    });
    assert.equal(s.ipFamilies, "IPV4_ONLY");
    assert.equal(s.canonical, true);
    assert.equal(s.visibility, "NAMESPACE");
    assert.equal(s.weightedWaypoints[0]?.weight, 3);
  });

  it("treats an unknown visibility as PUBLIC", () => {
    const r = serviceFromXds(service({ hostname: "h.example.com", visibility: 7 as 0 }));
    assert.ok(r.ok);
    assert.equal(r.value.visibility, "PUBLIC");
  });

  const rejects: [string, ServiceInit, string][] = [
    ["empty hostname", { hostname: "" }, "hostname: hostname must not be empty"],
    ["hostname with /", { hostname: "a/b" }, 'hostname: hostname "a/b" contains "/"'],
    [
      "VIP of 3 bytes",
      { hostname: "h", addresses: [{ address: v4(1, 2, 3) }] },
      "addresses[0]: address has 3 bytes (expected 4 or 16)",
    ],
    [
      "CIDR too long",
      { hostname: "h", addresses: [{ address: v4(1, 2, 3, 4), length: 33 }] },
      "addresses[0]: prefix length 33 is invalid for a 32-bit address (0-32)",
    ],
    [
      "unspecified routing scope",
      { hostname: "h", loadBalancing: { routingPreference: [0] } },
      "load_balancing.routing_preference[0]: UNSPECIFIED_SCOPE is not a scope",
    ],
    [
      "unknown LB mode",
      { hostname: "h", loadBalancing: { mode: 9 as 0 } },
      "load_balancing.mode: unknown value 9",
    ],
    ["unknown ip families", { hostname: "h", ipFamilies: 8 as 0 }, "ip_families: unknown value 8"],
    [
      "service port 0",
      { hostname: "h", ports: [{ servicePort: 0, targetPort: 80 }] },
      "ports[0].service_port: port 0 is not a valid service port",
    ],
    [
      "weighted waypoint without destination",
      { hostname: "h", weightedWaypoints: [{ weight: 1 }] },
      "weighted_waypoints[0]: has no destination",
    ],
  ];
  for (const [name, init, reason] of rejects) {
    it(`rejects: ${name}`, () => {
      assert.deepEqual(serviceFromXds(service(init)), { ok: false, reason });
    });
  }
});

describe("addressFromXds", () => {
  it("rejects an Address with no type", () => {
    assert.deepEqual(addressFromXds(create(AddressSchema, {})), {
      ok: false,
      reason: "type: Address has neither workload nor service set",
    });
  });
});
