/**
 * Binary encode/decode for the generated messages in src/lib/gen, with decode failures as
 * values. Bytes from the network (xDS resources, ZDS packets, CA replies) are untrusted: a bad
 * buffer is an expected outcome to report (NACK, Ack error, gRPC status), never a crash.
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { fail, ok } from "../errors.ts";
import type { Result } from "../errors.ts";

/** The `type.googleapis.com/<full name>` URL xDS and `Any` use for a message type. */
export function typeUrl(schema: DescMessage): string {
  return `type.googleapis.com/${schema.typeName}`;
}

export function encodeMessage<Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc>,
): Uint8Array {
  return toBinary(schema, message);
}

/**
 * Decodes `bytes` as `schema`. Unknown fields are kept (so a newer peer's additions survive a
 * relay). The failure reason names the message type, e.g.
 * `cannot decode istio.workload.Address (12 bytes): premature EOF`.
 */
export function decodeMessage<Desc extends DescMessage>(
  schema: Desc,
  bytes: Uint8Array,
): Result<MessageShape<Desc>> {
  try {
    return ok(fromBinary(schema, bytes));
  } catch (err) {
    return fail(decodeFailureReason(schema, bytes, err));
  }
}

/** The operator-facing reason for a failed decode of `bytes` as `schema`. */
export function decodeFailureReason(schema: DescMessage, bytes: Uint8Array, err: unknown): string {
  const detail = err instanceof Error ? err.message : String(err);
  const n = bytes.byteLength;
  return `cannot decode ${schema.typeName} (${n} byte${n === 1 ? "" : "s"}): ${detail}`;
}
