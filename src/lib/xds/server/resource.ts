/**
 * Resources as the server holds them: what the embedding application hands in
 * (`ResourceInput`) and the stored form, whose envoy `Resource` message is encoded once and
 * then shared by every response to every proxy.
 */
import { createHash } from "node:crypto";
import { create, isMessage, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, Message } from "@bufbuild/protobuf";
import type { Any } from "@bufbuild/protobuf/wkt";
import { AnySchema } from "@bufbuild/protobuf/wkt";
import { ResourceSchema } from "../../gen/envoy/service/discovery/v3/discovery_pb.ts";
import { AmbientError } from "../../errors.ts";

/**
 * The payload: an encoded message of the type's schema, an `Any` of the type, or a message of the
 * schema registered for the type.
 */
export type ResourcePayload = Uint8Array | Any | Message;

export interface ResourceInput<M = unknown> {
  /** Unique per type, e.g. a workload uid or `<namespace>/<hostname>`. */
  readonly name: string;
  /**
   * Identifies the content: equal versions mean equal resources, so an upsert with the version
   * already stored is ignored, and a reconnecting proxy that holds this version is not sent it
   * again. Default: a hash of the payload, aliases and related names (stable across restarts).
   */
  readonly version?: string;
  readonly resource: ResourcePayload;
  /** Other names a subscription may use for this resource, e.g. `<network>/<ip>`. */
  readonly aliases?: readonly string[];
  /**
   * Names (of the same type) whose explicit subscription also brings this resource, e.g. a
   * workload lists its services so that a proxy asking for a service VIP gets the pods behind it.
   */
  readonly related?: readonly string[];
  /** Opaque to the server; handed to the type's `select` hook (e.g. the workload's node). */
  readonly meta?: M;
}

export interface StoredResource<M = unknown> {
  readonly typeUrl: string;
  readonly name: string;
  readonly version: string;
  readonly aliases: readonly string[];
  readonly related: readonly string[];
  readonly meta: M | undefined;
  /** `envoy.service.discovery.v3.Resource`, encoded. */
  readonly encoded: Uint8Array;
}

const EMPTY: readonly string[] = Object.freeze([]);

function payloadBytes(typeUrl: string, payload: ResourcePayload, schema?: DescMessage): Uint8Array {
  if (payload instanceof Uint8Array) return payload;
  if (isMessage(payload, AnySchema)) {
    if (payload.typeUrl !== typeUrl) {
      throw new AmbientError(
        "ERR_XDS_RESOURCE_TYPE",
        `resource is an Any of ${payload.typeUrl}, but it was published as ${typeUrl}`,
      );
    }
    return payload.value;
  }
  if (schema === undefined || payload.$typeName !== schema.typeName) {
    throw new AmbientError(
      "ERR_XDS_RESOURCE_TYPE",
      `resource is a ${payload.$typeName} message, but ${typeUrl} was registered ` +
        (schema === undefined ? "without a schema" : `with schema ${schema.typeName}`) +
        `; pass encoded bytes or an Any instead`,
    );
  }
  return toBinary(schema, payload);
}

/** A content version: the first 12 bytes of SHA-256 over payload, aliases and related, base64url. */
export function contentVersion(
  payload: Uint8Array,
  aliases: readonly string[],
  related: readonly string[],
): string {
  const h = createHash("sha256");
  h.update(payload);
  // NUL separators: no alias/related list can collide with another split differently.
  h.update("\0a\0" + aliases.join("\0"));
  h.update("\0r\0" + related.join("\0"));
  return h.digest().subarray(0, 12).toString("base64url");
}

/** Encodes an input once; throws AmbientError `ERR_XDS_RESOURCE_TYPE` on a payload of the wrong type. */
export function storeResource<M>(
  typeUrl: string,
  input: ResourceInput<M>,
  schema?: DescMessage,
): StoredResource<M> {
  if (input.name === "") {
    throw new AmbientError("ERR_XDS_RESOURCE_NAME", `a ${typeUrl} resource has an empty name`);
  }
  const value = payloadBytes(typeUrl, input.resource, schema);
  const aliases =
    input.aliases !== undefined && input.aliases.length > 0 ? [...input.aliases] : EMPTY;
  const related =
    input.related !== undefined && input.related.length > 0 ? [...input.related] : EMPTY;
  const version = input.version ?? contentVersion(value, aliases, related);
  const encoded = toBinary(
    ResourceSchema,
    create(ResourceSchema, {
      name: input.name,
      version,
      aliases: [...aliases],
      resource: { typeUrl, value },
    }),
  );
  return Object.freeze({
    typeUrl,
    name: input.name,
    version,
    aliases,
    related,
    meta: input.meta,
    encoded,
  });
}
