/**
 * Encodes a DeltaDiscoveryResponse from resources that are already encoded: each `Resource` is
 * written as stored, so a 10,000-resource first sync to many proxies costs one copy per proxy,
 * not one protobuf encode per resource per proxy. Field numbers are envoy's
 * (discovery.proto): system_version_info=1, resources=2, type_url=4, nonce=5,
 * removed_resources=6.
 */
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import type { StoredResource } from "./resource.ts";

export interface ResponseParts {
  readonly typeUrl: string;
  readonly nonce: string;
  readonly systemVersionInfo?: string;
  readonly resources: readonly StoredResource<unknown>[];
  readonly removed: readonly string[];
}

export function encodeDeltaResponse(parts: ResponseParts): Uint8Array {
  const w = new BinaryWriter();
  if (parts.systemVersionInfo !== undefined && parts.systemVersionInfo !== "") {
    w.tag(1, WireType.LengthDelimited).string(parts.systemVersionInfo);
  }
  for (const r of parts.resources) w.tag(2, WireType.LengthDelimited).bytes(r.encoded);
  w.tag(4, WireType.LengthDelimited).string(parts.typeUrl);
  w.tag(5, WireType.LengthDelimited).string(parts.nonce);
  for (const name of parts.removed) w.tag(6, WireType.LengthDelimited).string(name);
  return w.finish();
}
