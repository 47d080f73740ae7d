/**
 * ZDS messages per packet: encoding, and decoding with validation as values. A packet from the
 * peer is untrusted; each way it can be wrong (truncated, fds where none belong, an `add` without
 * its netns fd or workload info, a payload we do not know) is an expected outcome with a reason
 * an operator can act on, never an exception.
 *
 * Decoding is pure: it never closes fds. When a decode fails, none of the packet's fds were taken,
 * and the caller closes them all; when it succeeds, an `add`'s `netnsFd` is the packet's one fd.
 */
import { create } from "@bufbuild/protobuf";
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { fail, ok, type Result } from "../errors.ts";
import {
  WorkloadRequestSchema,
  WorkloadResponseSchema,
  ZdsHelloSchema,
  type Version,
} from "../gen/istio/workload/zds/zds_pb.ts";
import { decodeMessage, encodeMessage } from "../proto/index.ts";
import { ZDS_MAX_MESSAGE_BYTES, ZDS_VERSION_V1 } from "./constants.ts";
import type { ReceivedZdsRequest, WorkloadInfo, ZdsPacket, ZdsRequest } from "./types.ts";

/** ztunnel's first message. */
export function encodeHello(version: number = ZDS_VERSION_V1): Uint8Array {
  // Version is an open enum on the wire; a peer may announce one we have no name for.
  return encodeMessage(ZdsHelloSchema, create(ZdsHelloSchema, { version: version as Version }));
}

/**
 * A request from the agent. Fails (rather than sending something ztunnel would reject as
 * truncated) when it would not fit in ZDS_MAX_MESSAGE_BYTES, or when a uid is empty.
 */
export function encodeRequest(request: ZdsRequest): Result<Uint8Array> {
  let payload: MessageInitShape<typeof WorkloadRequestSchema>["payload"];
  switch (request.kind) {
    case "add": {
      const { name, namespace, serviceAccount } = request.info;
      payload = {
        case: "add",
        value: { uid: request.uid, workloadInfo: { name, namespace, serviceAccount } },
      };
      break;
    }
    case "keep":
      payload = { case: "keep", value: { uid: request.uid } };
      break;
    case "del":
      payload = { case: "del", value: { uid: request.uid } };
      break;
    case "snapshot-sent":
      payload = { case: "snapshotSent", value: {} };
      break;
  }
  if (request.kind !== "snapshot-sent" && request.uid === "") {
    return fail(`cannot send a ZDS ${request.kind} with an empty pod uid`);
  }
  const bytes = encodeMessage(WorkloadRequestSchema, create(WorkloadRequestSchema, { payload }));
  if (bytes.byteLength > ZDS_MAX_MESSAGE_BYTES) {
    return fail(
      `the ZDS ${describeRequest(request)} would be ${bytes.byteLength} bytes; ztunnel reads at most ${ZDS_MAX_MESSAGE_BYTES}`,
    );
  }
  return ok(bytes);
}

/** Bytes the Ack wrapping leaves for the error text (two tags and two length varints). */
const ACK_TEXT_LIMIT = ZDS_MAX_MESSAGE_BYTES - 6;

/**
 * ztunnel's answer to every request: an empty error is success. A long error text is cut (at a
 * character boundary, marked with "...") so the Ack always fits the agent's 1024-byte read.
 */
export function encodeAck(error = ""): Uint8Array {
  const text = fitUtf8(error, ACK_TEXT_LIMIT);
  return encodeMessage(
    WorkloadResponseSchema,
    create(WorkloadResponseSchema, {
      payload: { case: "ack", value: { error: text } },
    }),
  );
}

/** `text` cut to at most `limit` UTF-8 bytes, ending in "..." when cut. */
export function fitUtf8(text: string, limit: number): string {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= limit) return text;
  let end = Math.max(0, limit - 3);
  // Back off continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString("utf8") + "...";
}

/** Checks common to every packet: not truncated, fds only where allowed. */
function packetProblem(packet: ZdsPacket, what: string): string | undefined {
  if (packet.truncated) {
    const size = packet.size === undefined ? "more than" : `${packet.size} bytes,`;
    return `${what} was truncated (${size} over the ${ZDS_MAX_MESSAGE_BYTES}-byte ZDS limit)`;
  }
  if (packet.fdsTruncated) {
    return `${what} carried more file descriptors than the receiver accepts`;
  }
  return undefined;
}

function decodeChecked<Desc extends DescMessage>(
  schema: Desc,
  packet: ZdsPacket,
  what: string,
): Result<MessageShape<Desc>> {
  const problem = packetProblem(packet, what);
  if (problem !== undefined) return fail(problem);
  const decoded = decodeMessage(schema, packet.data);
  if (!decoded.ok) return fail(`${what} is not valid protobuf: ${decoded.reason}`);
  return decoded;
}

/** Field numbers a message carried that this version does not know, for error text. */
function unknownFields(message: { $unknown?: readonly { no: number }[] | undefined }): string {
  const numbers = [...new Set((message.$unknown ?? []).map((f) => f.no))];
  return numbers.length === 0
    ? ""
    : ` (unknown field${numbers.length === 1 ? "" : "s"} ${numbers.join(", ")})`;
}

/** ztunnel's hello, as the agent receives it. Any version but NOT_USED (0) is accepted. */
export function decodeHello(packet: ZdsPacket): Result<{ version: number }> {
  const what = "ZDS hello from ztunnel";
  if (packet.fds.length > 0) {
    return fail(`${what} carried ${packet.fds.length} file descriptor(s); it must carry none`);
  }
  const decoded = decodeChecked(ZdsHelloSchema, packet, what);
  if (!decoded.ok) return decoded;
  if (decoded.value.version === 0) return fail(`${what} has no version (NOT_USED)`);
  return ok({ version: decoded.value.version });
}

/** A request, as ztunnel receives it. See the module comment for who owns the fds. */
export function decodeRequest(packet: ZdsPacket): Result<ReceivedZdsRequest> {
  const decoded = decodeChecked(WorkloadRequestSchema, packet, "ZDS request");
  if (!decoded.ok) return decoded;
  const { payload } = decoded.value;
  const nfds = packet.fds.length;
  switch (payload.case) {
    case undefined:
      return fail(`ZDS request has no payload this ztunnel knows${unknownFields(decoded.value)}`);
    case "add": {
      const { uid, workloadInfo } = payload.value;
      if (uid === "") return fail("ZDS add has an empty pod uid");
      if (nfds === 0) return fail(`ZDS add for pod ${uid} came without the pod's netns fd`);
      if (nfds > 1) {
        return fail(
          `ZDS add for pod ${uid} carried ${nfds} fds; exactly one (the netns) is expected`,
        );
      }
      if (workloadInfo === undefined) {
        return fail(
          `ZDS add for pod ${uid} has no workload_info (name, namespace, service account)`,
        );
      }
      const info: WorkloadInfo = {
        name: workloadInfo.name,
        namespace: workloadInfo.namespace,
        serviceAccount: workloadInfo.serviceAccount,
      };
      return ok({ kind: "add", uid, info, netnsFd: packet.fds[0]! });
    }
    case "keep":
    case "del": {
      const { uid } = payload.value;
      const kind = payload.case;
      if (nfds > 0) {
        return fail(`ZDS ${kind} for pod ${uid} carried ${nfds} fd(s); only add may carry one`);
      }
      if (uid === "") return fail(`ZDS ${kind} has an empty pod uid`);
      return ok({ kind, uid });
    }
    case "snapshotSent":
      if (nfds > 0) return fail(`ZDS snapshot_sent carried ${nfds} fd(s); only add may carry one`);
      return ok({ kind: "snapshot-sent" });
  }
}

/** ztunnel's Ack, as the agent receives it: the error text, empty on success. */
export function decodeAck(packet: ZdsPacket): Result<{ error: string }> {
  const what = "ZDS response from ztunnel";
  if (packet.fds.length > 0) {
    return fail(`${what} carried ${packet.fds.length} file descriptor(s); it must carry none`);
  }
  const decoded = decodeChecked(WorkloadResponseSchema, packet, what);
  if (!decoded.ok) return decoded;
  const { payload } = decoded.value;
  if (payload.case !== "ack") {
    return fail(`${what} is not an Ack${unknownFields(decoded.value)}`);
  }
  return ok({ error: payload.value.error });
}

/** "add for pod <uid>", "snapshot_sent", ... for logs and errors. */
export function describeRequest(request: ZdsRequest | ReceivedZdsRequest): string {
  return request.kind === "snapshot-sent"
    ? "snapshot_sent"
    : `${request.kind} for pod ${request.uid}`;
}
