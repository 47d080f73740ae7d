/**
 * ZDS, the node agent <-> ztunnel protocol (INTEROP.md §5): shared constants, the domain form of
 * its messages, the per-packet codec with validation as values, the transport interface (the
 * native SEQPACKET socket, or an in-memory pair in tests), and the owned netns fd both ends keep.
 */
export {
  ZDS_DEFAULT_SOCKET_PATH,
  ZDS_DEFAULT_TIMEOUT_MS,
  ZDS_MAX_MESSAGE_BYTES,
  ZDS_VERSION_V1,
} from "./constants.ts";
export {
  decodeAck,
  decodeHello,
  decodeRequest,
  describeRequest,
  encodeAck,
  encodeHello,
  encodeRequest,
  fitUtf8,
} from "./codec.ts";
export { MemoryPacketConn, MemoryPacketListener } from "./memory-transport.ts";
export { NetnsHandle } from "./netns-handle.ts";
export type {
  PacketConn,
  PacketListener,
  ReceivedZdsRequest,
  WorkloadInfo,
  ZdsPacket,
  ZdsRequest,
  ZdsRequestKind,
} from "./types.ts";
