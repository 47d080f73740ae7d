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

  it("handles multi-byte lengths and UTF-8 names", () => {
    const big = storeResource(URL, {
      name: "bïg/ñame",
      version: "1",
      resource: new Uint8Array(70_000).fill(7),
    });
    const bytes = encodeDeltaResponse({
      typeUrl: URL,
      nonce: "ñ",
      resources: [big, big],
      removed: ["ünïcode/x"],
    });
    const res = fromBinary(DeltaDiscoveryResponseSchema, bytes);
    assert.equal(
      bytes.byteLength,
      2 * (1 + 3 + big.encoded.byteLength) + (2 + URL.length) + 4 + 13,
    );
    assert.deepEqual(
      res.resources.map((r) => [r.name, r.resource?.value.byteLength]),
      [
        ["bïg/ñame", 70_000],
        ["bïg/ñame", 70_000],
      ],
    );
    assert.deepEqual([res.nonce, res.removedResources], ["ñ", ["ünïcode/x"]]);
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
