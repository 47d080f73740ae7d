import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  AggregatedDiscoveryService,
  DeltaDiscoveryRequestSchema,
} from "../gen/envoy/service/discovery/v3/discovery_pb.ts";
import type { DeltaDiscoveryRequest } from "../gen/envoy/service/discovery/v3/discovery_pb.ts";
import {
  IstioCertificateRequestSchema,
  IstioCertificateService,
} from "../gen/istio/v1/auth/ca_pb.ts";
import type { IstioCertificateRequest } from "../gen/istio/v1/auth/ca_pb.ts";
import { AmbientError } from "../errors.ts";
import { RequestDecodeFailure, grpcServiceDefinition, methodPath } from "./index.ts";

describe("grpcServiceDefinition", () => {
  it("uses /<package>.<Service>/<Method> paths and the descriptor's streaming flags", () => {
    const ca = grpcServiceDefinition(IstioCertificateService);
    assert.deepEqual(Object.keys(ca), ["createCertificate"]);
    assert.equal(
      ca["createCertificate"]!.path,
      "/istio.v1.auth.IstioCertificateService/CreateCertificate",
    );
    assert.equal(ca["createCertificate"]!.requestStream, false);
    assert.equal(ca["createCertificate"]!.responseStream, false);

    const ads = grpcServiceDefinition(AggregatedDiscoveryService);
    assert.deepEqual(Object.keys(ads).sort(), [
      "deltaAggregatedResources",
      "streamAggregatedResources",
    ]);
    const delta = ads["deltaAggregatedResources"]!;
    assert.equal(
      delta.path,
      "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources",
    );
    assert.equal(delta.requestStream, true);
    assert.equal(delta.responseStream, true);
    assert.equal(
      methodPath(AggregatedDiscoveryService.method.streamAggregatedResources),
      ads["streamAggregatedResources"]!.path,
    );
  });

  it("serializes messages and plain init objects to the same protobuf bytes", () => {
    const def = grpcServiceDefinition(IstioCertificateService)["createCertificate"]!;
    const fromInit = def.requestSerialize({ csr: "C", validityDuration: 86400n });
    const fromMessage = def.requestSerialize(
      create(IstioCertificateRequestSchema, { csr: "C", validityDuration: 86400n }),
    );
    assert.ok(Buffer.isBuffer(fromInit));
    assert.equal(fromInit.toString("hex"), "0a01431880a305");
    assert.deepEqual(fromMessage, fromInit);
    const back = def.requestDeserialize(fromInit) as IstioCertificateRequest;
    assert.equal(back.csr, "C");
    assert.equal(back.validityDuration, 86400n);
  });

  it("decodes streaming requests from grpc-js Buffers", () => {
    const def = grpcServiceDefinition(AggregatedDiscoveryService)["deltaAggregatedResources"]!;
    const bytes = def.requestSerialize(
      create(DeltaDiscoveryRequestSchema, {
        typeUrl: "type.googleapis.com/istio.workload.Address",
        resourceNamesSubscribe: ["*"],
      }),
    );
    const req = def.requestDeserialize(bytes) as DeltaDiscoveryRequest;
    assert.equal(req.typeUrl, "type.googleapis.com/istio.workload.Address");
    assert.deepEqual(req.resourceNamesSubscribe, ["*"]);
  });

  it("a bad response throws an error naming the type and method (grpc-js turns it into INTERNAL)", () => {
    const def = grpcServiceDefinition(IstioCertificateService)["createCertificate"]!;
    assert.throws(
      () => def.responseDeserialize(Buffer.from([0x0a, 0x05, 0x41])),
      (err: unknown) =>
        err instanceof AmbientError &&
        err.code === "ERR_GRPC_DECODE" &&
        err.message ===
          "cannot decode istio.v1.auth.IstioCertificateResponse (3 bytes): premature EOF " +
            "(in /istio.v1.auth.IstioCertificateService/CreateCertificate)",
    );
  });

  it("in mark mode a bad request becomes a RequestDecodeFailure instead of throwing", () => {
    const marked = grpcServiceDefinition(IstioCertificateService, "mark")["createCertificate"]!;
    const r: unknown = marked.requestDeserialize(Buffer.from([0xff]));
    assert.ok(r instanceof RequestDecodeFailure);
    assert.match(r.details, /^cannot decode istio\.v1\.auth\.IstioCertificateRequest \(1 byte\): /);
    // Responses still throw: the marker is only for the server's request side.
    assert.throws(() => marked.responseDeserialize(Buffer.from([0xff])), AmbientError);
    // The plain definition throws for requests too, and both are cached per descriptor.
    const plain = grpcServiceDefinition(IstioCertificateService);
    assert.throws(
      () => plain["createCertificate"]!.requestDeserialize(Buffer.from([0xff])),
      AmbientError,
    );
    assert.equal(grpcServiceDefinition(IstioCertificateService), plain);
    assert.equal(
      grpcServiceDefinition(IstioCertificateService, "mark")["createCertificate"],
      marked,
    );
  });
});
