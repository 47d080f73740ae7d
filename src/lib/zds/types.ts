/**
 * ZDS as both ends see it: the domain form of the protobuf messages (converted at the codec) and
 * the packet transport they travel on. The transport is an interface so the state machines can
 * be tested over an in-memory pair; in production it is the native SEQPACKET socket
 * (`SeqpacketSocket` / `SeqpacketServer` from src/lib/net satisfy it as they are).
 */
import type { PeerCredentials, ReceiveOptions, WaitOptions } from "../net/index.ts";

/** The pod identity ztunnel needs to find the pod's workload in xDS. */
export interface WorkloadInfo {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** What the node agent asks of ztunnel. The pod's netns fd travels beside an `add`, not in it. */
export type ZdsRequest =
  | { readonly kind: "add"; readonly uid: string; readonly info: WorkloadInfo }
  | { readonly kind: "keep"; readonly uid: string }
  | { readonly kind: "del"; readonly uid: string }
  | { readonly kind: "snapshot-sent" };

export type ZdsRequestKind = ZdsRequest["kind"];

/**
 * A request as ztunnel received it. An `add` carries the netns fd that came with it; the
 * receiver owns that fd from here on and must close it exactly once.
 */
export type ReceivedZdsRequest =
  | { readonly kind: "add"; readonly uid: string; readonly info: WorkloadInfo; netnsFd: number }
  | Exclude<ZdsRequest, { kind: "add" }>;

/** One received packet: the data, the fds that came with it, and what the kernel cut off. */
export interface ZdsPacket {
  readonly data: Uint8Array;
  readonly fds: readonly number[];
  /** The message was longer than the receive buffer (MSG_TRUNC). */
  readonly truncated: boolean;
  /** More fds were sent than the receiver accepted (MSG_CTRUNC); the extras are closed. */
  readonly fdsTruncated: boolean;
  /** The message's full length as sent, when the transport knows it. */
  readonly size?: number;
}

/** One end of a message-oriented connection that can pass fds. */
export interface PacketConn {
  readonly closed: boolean;
  /** Sends one message; the fds are duplicated into the message (the caller keeps its own). */
  send(data: Uint8Array, fds?: readonly number[], options?: WaitOptions): Promise<void>;
  /** The next message, or null once the peer has closed. Received fds belong to the caller. */
  receive(options?: ReceiveOptions): Promise<ZdsPacket | null>;
  /** Closes; pending sends and receives reject. Idempotent. */
  close(): void;
  /** The peer process, for logs (SO_PEERCRED); absent on transports that cannot tell. */
  peerCredentials?(): PeerCredentials;
}

/** The listening side (the node agent). */
export interface PacketListener {
  accept(options?: WaitOptions): Promise<PacketConn>;
  close(): void;
}
