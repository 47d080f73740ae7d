/**
 * The gRPC glue end to end on loopback: a grpc-js server built with createGrpcServer/addService
 * serving IstioCertificateService/CreateCertificate and an echoing Delta ADS stream, called
 * through createGrpcClient. Also sends raw malformed protobuf to both methods and checks each
 * gets an error status naming the message type while the server keeps serving.
 */
import assert from "node:assert/strict";
import { EventEmitter, once } from "node:events";
import { after, before, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack, anyUnpack } from "@bufbuild/protobuf/wkt";
import { Client, Metadata, Server, ServerCredentials, credentials, status } from "@grpc/grpc-js";
import type { ServiceError, StatusObject } from "@grpc/grpc-js";
import {
  AggregatedDiscoveryService,
  DeltaDiscoveryRequestSchema,
} from "../../src/lib/gen/envoy/service/discovery/v3/discovery_pb.ts";
import type {
  DeltaDiscoveryRequest,
  DeltaDiscoveryResponse,
} from "../../src/lib/gen/envoy/service/discovery/v3/discovery_pb.ts";
import { IstioCertificateService } from "../../src/lib/gen/istio/v1/auth/ca_pb.ts";
import { AddressSchema } from "../../src/lib/gen/istio/workload/workload_pb.ts";
import {
  GrpcStatusError,
  addService,
  createGrpcClient,
  createGrpcServer,
  grpcServiceDefinition,
  methodPath,
  unaryCall,
  unaryHandler,
} from "../../src/lib/grpc/index.ts";
import type { GrpcClientOf } from "../../src/lib/grpc/index.ts";

const ADDRESS_URL = "type.googleapis.com/istio.workload.Address";
const caPath = methodPath(IstioCertificateService.method.createCertificate);
const deltaPath = methodPath(AggregatedDiscoveryService.method.deltaAggregatedResources);

function bind(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, port) => {
      if (err !== null) reject(err);
      else resolve(port);
    });
  });
}

/** Resolves with the final status of a call (grpc-js emits 'status' on every ended call). */
function statusOf(call: {
  once(event: "status", l: (s: StatusObject) => void): unknown;
}): Promise<StatusObject> {
  return new Promise((resolve) => call.once("status", resolve));
}

const identity = (b: Buffer): Buffer => b;

describe("gRPC glue over loopback", () => {
  const server = createGrpcServer();
  // Node ids of server-side ADS streams that saw 'cancelled' (grpc-js emits it whenever a
  // call ends, so a normally finished stream shows up here too).
  const cancelled = new EventEmitter();
  const cancelledStreams: string[] = [];
  /** Node id of every request an ADS handler was given. */
  const received: string[] = [];
  const cancelledFor = (nodeId: string): Promise<void> =>
    cancelledStreams.includes(nodeId)
      ? Promise.resolve()
      : new Promise((resolve) => {
          const check = (id: string) => {
            if (id !== nodeId) return;
            cancelled.off("stream", check);
            resolve();
          };
          cancelled.on("stream", check);
        });
  let port = 0;
  let ca: GrpcClientOf<typeof IstioCertificateService> | undefined;
  let ads: GrpcClientOf<typeof AggregatedDiscoveryService> | undefined;
  let raw: Client | undefined;

  before(async () => {
    addService(server, IstioCertificateService, {
      createCertificate: unaryHandler((call) => {
        const req = call.request;
        if (req.csr === "deny") {
          throw new GrpcStatusError(status.UNAUTHENTICATED, "caller may not impersonate ns1/sa1");
        }
        const impersonate = req.metadata?.["ImpersonatedIdentity"];
        return {
          certChain: [
            `leaf:${req.csr}`,
            `ttl:${req.validityDuration}`,
            `as:${typeof impersonate === "string" ? impersonate : "-"}`,
            `auth:${String(call.metadata.get("authorization")[0] ?? "-")}`,
          ],
          rootCert: { caCert: ["root-a", "root-b"] },
        };
      }),
    });
    addService(server, AggregatedDiscoveryService, {
      // Echo: one response per request, listing the subscribed names as Address resources.
      deltaAggregatedResources(call) {
        let n = 0;
        let nodeId = "?";
        call.on("data", (r: DeltaDiscoveryRequest) => {
          if (r.node !== undefined) nodeId = r.node.id;
          received.push(nodeId);
          n += 1;
          call.write({
            systemVersionInfo: nodeId,
            typeUrl: r.typeUrl,
            nonce: `nonce-${n}`,
            removedResources: r.resourceNamesUnsubscribe,
            resources: r.resourceNamesSubscribe.map((name) => ({
              name,
              version: `v${n}`,
              aliases: [`/${name}`],
              resource: anyPack(
                AddressSchema,
                create(AddressSchema, { type: { case: "service", value: { hostname: name } } }),
              ),
            })),
          });
        });
        call.on("end", () => call.end());
        call.on("cancelled", () => {
          cancelledStreams.push(nodeId);
          cancelled.emit("stream", nodeId);
        });
      },
    });
    port = await bind(server);
    const target = `127.0.0.1:${port}`;
    ca = createGrpcClient(IstioCertificateService, target, credentials.createInsecure());
    ads = createGrpcClient(AggregatedDiscoveryService, target, credentials.createInsecure());
    raw = new Client(target, credentials.createInsecure());
  });

  after(() => {
    ca?.close();
    ads?.close();
    raw?.close();
    server.forceShutdown();
  });

  it("CreateCertificate round-trips csr, int64 validity, Struct metadata and call metadata", async () => {
    const md = new Metadata();
    md.set("authorization", "Bearer token-1");
    const res = await unaryCall(
      ca!,
      "createCertificate",
      {
        csr: "-----BEGIN CERTIFICATE REQUEST-----",
        validityDuration: 86400n,
        metadata: { ImpersonatedIdentity: "spiffe://cluster.local/ns/ns1/sa/sa1" },
      },
      { metadata: md, deadline: Date.now() + 10_000 },
    );
    assert.deepEqual(res.certChain, [
      "leaf:-----BEGIN CERTIFICATE REQUEST-----",
      "ttl:86400",
      "as:spiffe://cluster.local/ns/ns1/sa/sa1",
      "auth:Bearer token-1",
    ]);
    assert.deepEqual(res.rootCert?.caCert, ["root-a", "root-b"]);
    assert.equal(res.$typeName, "istio.v1.auth.IstioCertificateResponse");
  });

  it("a handler's GrpcStatusError reaches the client as that status", async () => {
    await assert.rejects(
      unaryCall(ca!, "createCertificate", { csr: "deny" }),
      (err: ServiceError) => {
        assert.equal(err.code, status.UNAUTHENTICATED);
        assert.equal(err.details, "caller may not impersonate ns1/sa1");
        return true;
      },
    );
  });

  it("DeltaAggregatedResources streams both ways with Any-packed resources", async () => {
    const stream = ads!.deltaAggregatedResources();
    const done = statusOf(stream);
    const responses: DeltaDiscoveryResponse[] = [];
    const two = new Promise<void>((resolve) => {
      stream.on("data", (res: DeltaDiscoveryResponse) => {
        responses.push(res);
        if (responses.length === 2) resolve();
      });
    });
    stream.write({
      node: {
        id: "ztunnel~198.18.0.5~ztunnel-abc.istio-system~istio-system.svc.cluster.local",
        metadata: { NODE_NAME: "n1" },
      },
      typeUrl: ADDRESS_URL,
      resourceNamesSubscribe: ["ns1/echo.ns1.svc.cluster.local"],
      initialResourceVersions: { "ns1/old": "3" },
    });
    stream.write({
      typeUrl: ADDRESS_URL,
      responseNonce: "nonce-1",
      resourceNamesUnsubscribe: ["ns1/old"],
    });
    await two;
    stream.end();
    assert.equal((await done).code, status.OK);

    const [first, second] = responses;
    assert.equal(
      first!.systemVersionInfo,
      "ztunnel~198.18.0.5~ztunnel-abc.istio-system~istio-system.svc.cluster.local",
    );
    assert.equal(first!.typeUrl, ADDRESS_URL);
    assert.equal(first!.nonce, "nonce-1");
    assert.equal(first!.resources.length, 1);
    const resource = first!.resources[0]!;
    assert.equal(resource.name, "ns1/echo.ns1.svc.cluster.local");
    assert.deepEqual(resource.aliases, ["/ns1/echo.ns1.svc.cluster.local"]);
    const packed = resource.resource;
    assert.ok(packed !== undefined);
    assert.equal(packed.typeUrl, ADDRESS_URL);
    const address = anyUnpack(packed, AddressSchema);
    assert.equal(address?.type.case, "service");
    assert.equal(
      address?.type.case === "service" ? address.type.value.hostname : "",
      "ns1/echo.ns1.svc.cluster.local",
    );
    assert.equal(second!.nonce, "nonce-2");
    assert.deepEqual(second!.removedResources, ["ns1/old"]);
    assert.deepEqual(second!.resources, []);
  });

  it("a malformed unary request gets INTERNAL naming the request type; the server keeps serving", async () => {
    // Field 1 (csr) claims 9 bytes; none follow.
    const err = await new Promise<ServiceError | null>((resolve) => {
      raw!.makeUnaryRequest(caPath, identity, identity, Buffer.from("0a09", "hex"), (e) =>
        resolve(e),
      );
    });
    assert.ok(err !== null, "the call must fail");
    assert.equal(err.code, status.INTERNAL);
    assert.equal(
      err.details,
      `cannot decode istio.v1.auth.IstioCertificateRequest (2 bytes): premature EOF (in ${caPath})`,
    );
    const ok = await unaryCall(ca!, "createCertificate", { csr: "after" });
    assert.equal(ok.certChain[0], "leaf:after");
  });

  it("a malformed message mid-stream ends the ADS stream with INTERNAL and cancels the handler's stream", async () => {
    const stream = raw!.makeBidiStreamRequest(deltaPath, identity, identity);
    const done = statusOf(stream);
    stream.on("error", () => undefined); // the status is checked below
    const firstReply = once(stream, "data");
    stream.write(
      Buffer.from(
        toBinary(
          DeltaDiscoveryRequestSchema,
          create(DeltaDiscoveryRequestSchema, { node: { id: "raw-client" }, typeUrl: ADDRESS_URL }),
        ),
      ),
    );
    await firstReply; // a valid message is echoed first
    stream.write(Buffer.from("ffffffffffffffffffffff01", "hex"));
    const final = await done;
    assert.equal(final.code, status.INTERNAL);
    assert.equal(
      final.details,
      `cannot decode envoy.service.discovery.v3.DeltaDiscoveryRequest (12 bytes): invalid varint (in ${deltaPath})`,
    );
    // The handler learns its stream is over instead of waiting forever for the next request.
    await cancelledFor("raw-client");
    // Only the valid request ever reached the handler.
    assert.deepEqual(
      received.filter((id) => id === "raw-client"),
      ["raw-client"],
    );
  });

  it("a malformed response fails the client call with INTERNAL naming the response type", async () => {
    // A server that answers CreateCertificate with bytes that are not an IstioCertificateResponse.
    const bad = new Server();
    const def = grpcServiceDefinition(IstioCertificateService);
    bad.addService(
      {
        createCertificate: {
          ...def["createCertificate"]!,
          responseSerialize: () => Buffer.from("0a05", "hex"),
        },
      },
      {
        createCertificate: (_call: unknown, cb: (e: null, v: object) => void) => cb(null, {}),
      },
    );
    const badPort = await bind(bad);
    const client = createGrpcClient(
      IstioCertificateService,
      `127.0.0.1:${badPort}`,
      credentials.createInsecure(),
    );
    try {
      await assert.rejects(
        unaryCall(client, "createCertificate", { csr: "x" }),
        (err: ServiceError) => {
          assert.equal(err.code, status.INTERNAL);
          assert.match(
            err.details,
            /cannot decode istio\.v1\.auth\.IstioCertificateResponse \(2 bytes\): premature EOF/,
          );
          return true;
        },
      );
    } finally {
      client.close();
      bad.forceShutdown();
    }
  });
});
