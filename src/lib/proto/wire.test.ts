/**
 * Field numbers are the interface with Istio: these tests pin them by comparing what the
 * generated encoder writes with bytes worked out by hand from the protobuf wire format
 * (tag = field_number << 3 | wire_type; varints little-endian base 128; wire type 0 = varint,
 * 2 = length-delimited), and by decoding those same bytes back.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, equals } from "@bufbuild/protobuf";
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import {
  DeltaDiscoveryRequestSchema,
  DeltaDiscoveryResponseSchema,
  DiscoveryRequestSchema,
  ResourceSchema,
} from "../gen/envoy/service/discovery/v3/discovery_pb.ts";
import { NodeSchema } from "../gen/envoy/config/core/v3/base_pb.ts";
import { StatusSchema } from "../gen/google/rpc/status_pb.ts";
import {
  Action,
  AuthorizationSchema,
  MatchSchema,
  Scope,
  StringMatchSchema,
} from "../gen/istio/security/authorization_pb.ts";
import {
  IstioCertificateRequestSchema,
  IstioCertificateResponseSchema,
} from "../gen/istio/v1/auth/ca_pb.ts";
import {
  AddressSchema,
  AppProtocol,
  ApplicationTunnel_Protocol,
  IPFamilies,
  LoadBalancing_Mode,
  LoadBalancing_Scope,
  NetworkAddressSchema,
  NetworkMode,
  ServiceSchema,
  TunnelProtocol,
  Visibility,
  WorkloadSchema,
} from "../gen/istio/workload/workload_pb.ts";
import {
  Version,
  WorkloadRequestSchema,
  WorkloadResponseSchema,
  ZdsHelloSchema,
} from "../gen/istio/workload/zds/zds_pb.ts";
import { decodeMessage, encodeMessage, typeUrl } from "./index.ts";

/** "a2 01|01 61" -> bytes; spaces and `|` are only for reading. */
function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/[\s|]/g, ""), "hex"));
}

function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

/** Text as hex, for string payloads inside expected bytes. */
function str(s: string): string {
  return Buffer.from(s, "utf8").toString("hex");
}

/** Encoding `init` gives exactly `expected`, and decoding `expected` gives the same message. */
function assertWire<Desc extends DescMessage>(
  schema: Desc,
  init: MessageInitShape<Desc>,
  expected: string,
): void {
  const message = create(schema, init);
  assert.equal(toHex(encodeMessage(schema, message)), toHex(hex(expected)), schema.typeName);
  const decoded = decodeMessage(schema, hex(expected));
  assert.ok(decoded.ok, decoded.ok ? "" : decoded.reason);
  assert.ok(equals(schema, decoded.value, message), `${schema.typeName} decodes back`);
}

describe("istio.workload wire format", () => {
  it("Workload.uid is field 20 (tag a2 01)", () => {
    assertWire(WorkloadSchema, { uid: "a" }, `a2 01 | 01 | ${str("a")}`);
  });

  it("Workload core fields carry Istio's numbers", () => {
    assertWire(
      WorkloadSchema,
      {
        name: "p", // 1
        namespace: "n", // 2
        addresses: [hex("c6 12 00 01")], // 3: 198.18.0.1
        network: "w", // 4
        tunnelProtocol: TunnelProtocol.HBONE, // 5
        trustDomain: "t", // 6
        serviceAccount: "s", // 7
        node: "k", // 9
        uid: "u", // 20
        hostname: "h", // 21
      },
      [
        `0a 01 ${str("p")}`,
        `12 01 ${str("n")}`,
        "1a 04 c6 12 00 01",
        `22 01 ${str("w")}`,
        "28 01",
        `32 01 ${str("t")}`,
        `3a 01 ${str("s")}`,
        `4a 01 ${str("k")}`,
        `a2 01 01 ${str("u")}`,
        `aa 01 01 ${str("h")}`,
      ].join(""),
    );
  });

  it("Workload.services is map field 22 of PortList, Port.target_port 2, app_protocol 3", () => {
    // Port {1: 80, 2: 8080 (90 3f), 3: HTTP2}: 08 50 10 90 3f 18 02 = 7 bytes.
    // PortList {1: Port} = 0a 07 <port> = 9 bytes.
    // entry {1: "ns/svc" (6), 2: PortList} = 0a 06 <key> 12 09 <list> = 19 bytes.
    assertWire(
      WorkloadSchema,
      {
        services: {
          "ns/svc": {
            ports: [{ servicePort: 80, targetPort: 8080, appProtocol: AppProtocol.HTTP2 }],
          },
        },
      },
      `b2 01 13 | 0a 06 ${str("ns/svc")} | 12 09 0a 07 08 50 10 90 3f 18 02`,
    );
  });

  it("Workload waypoint 8, network_gateway 19, application_tunnel 23, locality 24, network_mode 25, capacity 27", () => {
    assertWire(
      WorkloadSchema,
      {
        // GatewayAddress {2: NetworkAddress {2: 198.18.0.9}, 3: 15008 (a0 75)}
        waypoint: {
          destination: { case: "address", value: { address: hex("c6 12 00 09") } },
          hboneMtlsPort: 15008,
        },
        networkGateway: { hboneMtlsPort: 15008 },
        applicationTunnel: { protocol: ApplicationTunnel_Protocol.PROXY, port: 15088 },
        locality: { region: "r", zone: "z", subzone: "s" },
        networkMode: NetworkMode.HOST_NETWORK,
        capacity: 3,
      },
      [
        "42 0b | 12 06 12 04 c6 12 00 09 | 18 a0 75",
        "9a 01 03 | 18 a0 75",
        "ba 01 05 | 08 01 10 f0 75",
        `c2 01 09 | 0a 01 ${str("r")} 12 01 ${str("z")} 1a 01 ${str("s")}`,
        "c8 01 01",
        "da 01 02 | 08 03",
      ].join(""),
    );
  });

  it("Address is a oneof of workload 1 and service 2", () => {
    assertWire(
      AddressSchema,
      { type: { case: "workload", value: { uid: "a" } } },
      `0a 04 a2 01 01 ${str("a")}`,
    );
    assertWire(
      AddressSchema,
      { type: { case: "service", value: { hostname: "h" } } },
      `12 03 1a 01 ${str("h")}`,
    );
  });

  it("Service.waypoint is field 7 with a namespaced hostname", () => {
    // NamespacedHostname {1: "ns", 2: "wp"} = 8 bytes; GatewayAddress {1: that, 3: 15008} = 13.
    assertWire(
      ServiceSchema,
      {
        waypoint: {
          destination: { case: "hostname", value: { namespace: "ns", hostname: "wp" } },
          hboneMtlsPort: 15008,
        },
      },
      `3a 0d | 0a 08 0a 02 ${str("ns")} 12 02 ${str("wp")} | 18 a0 75`,
    );
  });

  it("Service fields 1-14 carry Istio's numbers", () => {
    assertWire(
      ServiceSchema,
      {
        name: "a", // 1
        namespace: "b", // 2
        hostname: "c", // 3
        addresses: [{ network: "", address: hex("c6 13 00 01") }], // 4
        ports: [{ servicePort: 80 }], // 5
        subjectAltNames: ["d"], // 6
        loadBalancing: {
          // 8
          routingPreference: [LoadBalancing_Scope.NETWORK, LoadBalancing_Scope.REGION],
          mode: LoadBalancing_Mode.FAILOVER,
        },
        ipFamilies: IPFamilies.DUAL, // 9
        extensions: [{ name: "e" }], // 10
        canonical: true, // 11
        ingressUseWaypoint: true, // 12
        weightedWaypoints: [{ destination: { hboneMtlsPort: 15008 }, weight: 90 }], // 13
        visibility: Visibility.NAMESPACE, // 14
      },
      [
        `0a 01 ${str("a")}`,
        `12 01 ${str("b")}`,
        `1a 01 ${str("c")}`,
        "22 06 | 12 04 c6 13 00 01",
        "2a 02 | 08 50",
        `32 01 ${str("d")}`,
        // LoadBalancing {1: packed [6, 1], 2: 2}
        "42 06 | 0a 02 06 01 | 10 02",
        "48 03",
        `52 03 | 0a 01 ${str("e")}`,
        "58 01",
        "60 01",
        // WeightedWaypoint {1: GatewayAddress {3: 15008}, 2: 90}
        "6a 07 | 0a 03 18 a0 75 | 10 5a",
        "70 01",
      ].join(""),
    );
  });

  it("NetworkAddress.length 3 has explicit presence: a /0 range is sent as 0", () => {
    assertWire(
      NetworkAddressSchema,
      { address: hex("00 00 00 00"), length: 0 },
      "12 04 00 00 00 00 | 18 00",
    );
    assertWire(NetworkAddressSchema, { address: hex("c6 12 00 00") }, "12 04 c6 12 00 00");
    const absent = decodeMessage(NetworkAddressSchema, hex("12 04 c6 12 00 00"));
    assert.ok(absent.ok);
    assert.equal(absent.value.length, undefined);
  });
});

describe("istio.security wire format", () => {
  it("Authorization.rules is field 5, Rule.clauses 1, Clause.matches 2, Match.destination_ports 9 packed", () => {
    // Match {9: packed [80, 443 (bb 03)]} = 4a 03 50 bb 03 (5 bytes)
    // Clause {2: Match} = 12 05 .. (7); Rule {1: Clause} = 0a 07 .. (9)
    assertWire(
      AuthorizationSchema,
      {
        name: "p",
        namespace: "ns",
        scope: Scope.WORKLOAD_SELECTOR,
        action: Action.DENY,
        rules: [{ clauses: [{ matches: [{ destinationPorts: [80, 443] }] }] }],
        dryRun: true,
      },
      [
        `0a 01 ${str("p")}`,
        `12 02 ${str("ns")}`,
        "18 02",
        "20 01",
        "2a 09 | 0a 07 | 12 05 | 4a 03 50 bb 03",
        "30 01",
      ].join(""),
    );
  });

  it("Match field numbers 1-12 and StringMatch presence 4", () => {
    const exact = { matchType: { case: "exact" as const, value: "x" } };
    const presence = { matchType: { case: "presence" as const, value: {} } };
    assertWire(
      MatchSchema,
      {
        namespaces: [exact], // 1
        notNamespaces: [{ matchType: { case: "prefix", value: "x" } }], // 2
        principals: [{ matchType: { case: "suffix", value: "x" } }], // 3
        notPrincipals: [presence], // 4
        sourceIps: [{ address: hex("c6 12 00 00"), length: 15 }], // 5
        notSourceIps: [{ length: 8 }], // 6
        destinationIps: [{ length: 24 }], // 7
        notDestinationIps: [{ length: 32 }], // 8
        notDestinationPorts: [22], // 10
        serviceAccounts: [{ namespace: "ns", serviceAccount: "sa" }], // 11
        notServiceAccounts: [{ serviceAccount: "b" }], // 12
      },
      [
        `0a 03 0a 01 ${str("x")}`,
        `12 03 12 01 ${str("x")}`,
        `1a 03 1a 01 ${str("x")}`,
        "22 02 22 00",
        "2a 08 | 0a 04 c6 12 00 00 | 10 0f",
        "32 02 10 08",
        "3a 02 10 18",
        "42 02 10 20",
        "52 01 16",
        `5a 08 | 0a 02 ${str("ns")} 12 02 ${str("sa")}`,
        `62 03 | 12 01 ${str("b")}`,
      ].join(""),
    );
    assertWire(StringMatchSchema, presence, "22 00");
  });
});

describe("istio.workload.zds wire format", () => {
  it("WorkloadRequest payload: add 1, del 2, snapshot_sent 3, keep 5", () => {
    // AddWorkload {1: "u", 2: WorkloadInfo {1: "n", 2: "ns", 3: "sa"}}
    assertWire(
      WorkloadRequestSchema,
      {
        payload: {
          case: "add",
          value: { uid: "u", workloadInfo: { name: "n", namespace: "ns", serviceAccount: "sa" } },
        },
      },
      `0a 10 | 0a 01 ${str("u")} | 12 0b 0a 01 ${str("n")} 12 02 ${str("ns")} 1a 02 ${str("sa")}`,
    );
    // DelWorkload.uid is field 2, not 1.
    assertWire(
      WorkloadRequestSchema,
      { payload: { case: "del", value: { uid: "u" } } },
      `12 03 | 12 01 ${str("u")}`,
    );
    assertWire(WorkloadRequestSchema, { payload: { case: "snapshotSent", value: {} } }, "1a 00");
    assertWire(
      WorkloadRequestSchema,
      { payload: { case: "keep", value: { uid: "u" } } },
      `2a 03 | 0a 01 ${str("u")}`,
    );
  });

  it("ZdsHello.version 1 and WorkloadResponse.ack 1", () => {
    assertWire(ZdsHelloSchema, { version: Version.V1 }, "08 01");
    assertWire(
      WorkloadResponseSchema,
      { payload: { case: "ack", value: { error: "e" } } },
      `0a 03 | 0a 01 ${str("e")}`,
    );
    // A success Ack is an empty message inside the oneof: still present on the wire.
    assertWire(WorkloadResponseSchema, { payload: { case: "ack", value: {} } }, "0a 00");
  });
});

describe("istio.v1.auth wire format", () => {
  it("IstioCertificateRequest: csr 1, validity_duration 3 (int64), metadata 4 (Struct)", () => {
    // 86400 = 0x15180 -> varint 80 a3 05.
    // Struct {1: entry {1: "k", 2: Value {3: "v"}}}: Value = 1a 01 76 (3), entry = 8, struct = 10.
    assertWire(
      IstioCertificateRequestSchema,
      { csr: "C", validityDuration: 86400n, metadata: { k: "v" } },
      `0a 01 ${str("C")} | 18 80 a3 05 | 22 0a 0a 08 0a 01 ${str("k")} 12 03 1a 01 ${str("v")}`,
    );
  });

  it("IstioCertificateResponse: cert_chain 1, root_cert 2", () => {
    assertWire(
      IstioCertificateResponseSchema,
      { certChain: ["L", "I"], rootCert: { caCert: ["R"] } },
      `0a 01 ${str("L")} 0a 01 ${str("I")} | 12 03 0a 01 ${str("R")}`,
    );
  });
});

describe("envoy.service.discovery.v3 wire format", () => {
  it("DeltaDiscoveryRequest fields 1-7", () => {
    assertWire(
      DeltaDiscoveryRequestSchema,
      {
        node: { id: "n" },
        typeUrl: "t",
        resourceNamesSubscribe: ["a"],
        resourceNamesUnsubscribe: ["b"],
        initialResourceVersions: { x: "1" },
        responseNonce: "r",
        errorDetail: { code: 3, message: "m" },
      },
      [
        `0a 03 0a 01 ${str("n")}`,
        `12 01 ${str("t")}`,
        `1a 01 ${str("a")}`,
        `22 01 ${str("b")}`,
        `2a 06 | 0a 01 ${str("x")} 12 01 ${str("1")}`,
        `32 01 ${str("r")}`,
        `3a 05 | 08 03 12 01 ${str("m")}`,
      ].join(""),
    );
  });

  it("DeltaDiscoveryResponse: resources 2, type_url 4, nonce 5, removed_resources 6", () => {
    assertWire(
      DeltaDiscoveryResponseSchema,
      {
        systemVersionInfo: "v",
        resources: [{ name: "r" }],
        typeUrl: "t",
        nonce: "n",
        removedResources: ["x"],
        controlPlane: { identifier: "c" },
      },
      [
        `0a 01 ${str("v")}`,
        `12 03 1a 01 ${str("r")}`,
        `22 01 ${str("t")}`,
        `2a 01 ${str("n")}`,
        `32 01 ${str("x")}`,
        `3a 03 0a 01 ${str("c")}`,
      ].join(""),
    );
  });

  it("Resource: version 1, resource 2 (Any), name 3, aliases 4, ttl 6", () => {
    const url = typeUrl(AddressSchema);
    assert.equal(url, "type.googleapis.com/istio.workload.Address");
    // Any {1: type_url (42 bytes = 0x2a), 2: value (empty Address -> omitted)}
    assertWire(
      ResourceSchema,
      {
        version: "1",
        resource: { typeUrl: url },
        name: "ns/h",
        aliases: ["/198.18.0.1"],
        ttl: { seconds: 30n },
      },
      [
        `0a 01 ${str("1")}`,
        `12 2c 0a 2a ${str(url)}`,
        `1a 04 ${str("ns/h")}`,
        `22 0b ${str("/198.18.0.1")}`,
        "32 02 08 1e",
      ].join(""),
    );
  });

  it("DiscoveryRequest (state of the world): node 2, error_detail 6", () => {
    assertWire(
      DiscoveryRequestSchema,
      {
        versionInfo: "1",
        node: { id: "n" },
        resourceNames: ["a"],
        typeUrl: "t",
        responseNonce: "r",
      },
      `0a 01 ${str("1")} 12 03 0a 01 ${str("n")} 1a 01 ${str("a")} 22 01 ${str("t")} 2a 01 ${str("r")}`,
    );
  });

  it("Node: id 1, cluster 2, metadata 3, locality 4, user_agent_name 6, user_agent_version 7", () => {
    assertWire(
      NodeSchema,
      {
        id: "i",
        cluster: "c",
        metadata: { NAME: "p" },
        locality: { region: "r", subZone: "s" },
        userAgentName: "u",
        userAgentVersionType: { case: "userAgentVersion", value: "v" },
        clientFeatures: ["f"],
      },
      [
        `0a 01 ${str("i")}`,
        `12 01 ${str("c")}`,
        `1a 0d 0a 0b 0a 04 ${str("NAME")} 12 03 1a 01 ${str("p")}`,
        `22 06 0a 01 ${str("r")} 1a 01 ${str("s")}`,
        `32 01 ${str("u")}`,
        `3a 01 ${str("v")}`,
        `52 01 ${str("f")}`,
      ].join(""),
    );
  });

  it("google.rpc.Status: code 1, message 2", () => {
    assertWire(StatusSchema, { code: 13, message: "m" }, `08 0d 12 01 ${str("m")}`);
  });
});

describe("decoding untrusted bytes", () => {
  it("a truncated buffer is a failure naming the type, not an exception", () => {
    // Workload.uid says 5 bytes follow; only 1 does.
    const r = decodeMessage(WorkloadSchema, hex("a2 01 05 61"));
    assert.equal(r.ok, false);
    assert.match(
      r.ok ? "" : r.reason,
      /^cannot decode istio\.workload\.Workload \(4 bytes\): premature EOF/,
    );
  });

  it("garbage is a failure naming the type", () => {
    const r = decodeMessage(
      DeltaDiscoveryResponseSchema,
      hex("ff ff ff ff ff ff ff ff ff ff ff 01"),
    );
    assert.equal(r.ok, false);
    assert.match(
      r.ok ? "" : r.reason,
      /^cannot decode envoy\.service\.discovery\.v3\.DeltaDiscoveryResponse \(12 bytes\): /,
    );
  });

  it("a nested message cut short is a failure", () => {
    // Address.workload claims 9 bytes, holds 4.
    const r = decodeMessage(AddressSchema, hex("0a 09 a2 01 01 61"));
    assert.equal(r.ok, false);
    assert.match(r.ok ? "" : r.reason, /istio\.workload\.Address/);
  });

  it("a known field with the wrong wire type is a failure", () => {
    // WorkloadRequest.add (field 1) sent as a varint.
    const r = decodeMessage(WorkloadRequestSchema, hex("08 01"));
    assert.equal(r.ok, false);
    assert.match(r.ok ? "" : r.reason, /istio\.workload\.zds\.WorkloadRequest/);
  });

  it("unknown fields from a newer peer are kept and re-encoded unchanged", () => {
    // Workload {20: "a", 99: varint 7} — field 99 is not in our schema.
    const bytes = hex(`a2 01 01 ${str("a")} | 98 06 07`);
    const r = decodeMessage(WorkloadSchema, bytes);
    assert.ok(r.ok);
    assert.equal(r.value.uid, "a");
    assert.equal(toHex(encodeMessage(WorkloadSchema, r.value)), toHex(bytes));
  });
});
