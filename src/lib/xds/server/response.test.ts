import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { DeltaDiscoveryResponseSchema } from "../../gen/envoy/service/discovery/v3/discovery_pb.ts";
import { storeResource } from "./resource.ts";
import { encodeDeltaResponse } from "./response.ts";

const URL = "type.googleapis.com/istio.workload.Address";

describe("encodeDeltaResponse", () => {
  it("produces bytes the generated DeltaDiscoveryResponse decodes field for field", () => {
    const a = storeResource(URL, {
      name: "a",
      version: "1",
      resource: new Uint8Array([8, 1]),
      aliases: ["/198.18.0.1"],
    });
    const b = storeResource(URL, { name: "b", version: "2", resource: new Uint8Array() });
    const bytes = encodeDeltaResponse({
      typeUrl: URL,
      nonce: "n-1",
      systemVersionInfo: "v9",
      resources: [a, b],
      removed: ["gone", "/198.18.9.9"],
    });
    const res = fromBinary(DeltaDiscoveryResponseSchema, bytes);
    assert.equal(res.typeUrl, URL);
    assert.equal(res.nonce, "n-1");
    assert.equal(res.systemVersionInfo, "v9");
    assert.deepEqual(res.removedResources, ["gone", "/198.18.9.9"]);
    assert.deepEqual(
      res.resources.map((r) => [
        r.name,
        r.version,
        r.aliases,
        r.resource?.typeUrl,
        [...(r.resource?.value ?? [])],
      ]),
      [
        ["a", "1", ["/198.18.0.1"], URL, [8, 1]],
        ["b", "2", [], URL, []],
      ],
    );
  });

  it("encodes an empty response (a first answer with nothing to send)", () => {
    const res = fromBinary(
      DeltaDiscoveryResponseSchema,
      encodeDeltaResponse({ typeUrl: URL, nonce: "x", resources: [], removed: [] }),
    );
    assert.deepEqual(
      [res.typeUrl, res.nonce, res.resources.length, res.removedResources.length],
      [URL, "x", 0, 0],
    );
  });
});
