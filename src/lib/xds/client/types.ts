/**
 * The client's public contract: options and hooks.
 */
import type { ChannelOptions } from "@grpc/grpc-js";
import type { Logger } from "../../log/index.ts";
import type { BackoffOptions } from "../backoff.ts";
import type { Rejection } from "../nack.ts";
import type { NodeInit } from "../node.ts";
import type { Timers } from "../../timers.ts";
import type { XdsTlsOptions } from "./credentials.ts";
import type { TypeHandler } from "./handler.ts";
import type { TerminationReason } from "./termination.ts";

export interface TerminationEvent {
  readonly connectionId: number;
  readonly reason: TerminationReason;
  /** gRPC status code and details the stream ended with. */
  readonly code: number;
  readonly details: string;
  /** When the next attempt starts. */
  readonly retryInMs: number;
}

export interface MessageEvent {
  readonly typeUrl: string;
  /** Encoded size of the DeltaDiscoveryResponse. */
  readonly bytes: number;
  readonly resources: number;
  readonly removed: number;
}

export interface ClientAckEvent {
  readonly typeUrl: string;
  readonly nonce: string;
}

export interface ClientNackEvent extends ClientAckEvent {
  readonly message: string;
  readonly rejected: readonly Rejection[];
}

/**
 * Hooks for ztunnel's metrics: `terminated` -> istio_xds_connection_terminations_total{reason},
 * `message` -> istio_xds_message_total{url} and istio_xds_message_bytes_total{url}. Called
 * synchronously; an exception thrown by a hook is logged and otherwise ignored.
 */
export interface XdsClientObserver {
  /** The first response arrived on a new stream. */
  connected?(event: { readonly connectionId: number }): void;
  terminated?(event: TerminationEvent): void;
  message?(event: MessageEvent): void;
  acked?(event: ClientAckEvent): void;
  nacked?(event: ClientNackEvent): void;
  /** Every watched type had a first response ACKed (once per client). */
  ready?(): void;
}

export interface XdsClientOptions {
  /** `https://host:port` (TLS), `http://host:port` (plaintext) or `host:port` (TLS). */
  readonly address: string;
  /** TLS settings, or a function read on every connection attempt (rotated roots). */
  readonly tls?: XdsTlsOptions | (() => XdsTlsOptions | Promise<XdsTlsOptions>);
  /** Bearer token, read on every connection attempt; nothing is sent when it returns undefined. */
  readonly token?: () => string | undefined | Promise<string | undefined>;
  /** `clusterid` header. Default `Kubernetes`. */
  readonly clusterId?: string;
  /** Extra headers on every call (`XDS_HEADER_<name>`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Built with buildProxyNode. */
  readonly node: NodeInit;
  /** One per type the client watches. */
  readonly handlers: readonly TypeHandler[];
  /** `XDS_ON_DEMAND`: subscribe to nothing up front and fetch names with lookup(). */
  readonly onDemand?: boolean;
  /** Default 10 ms doubling to 15 s, ±20 % jitter. */
  readonly backoff?: BackoffOptions;
  /** Default 200 MiB (ztunnel's limit). */
  readonly maxReceiveMessageBytes?: number;
  /** How long lookup() waits by default. Default 5 s. */
  readonly lookupTimeoutMs?: number;
  readonly observer?: XdsClientObserver;
  readonly logger?: Logger;
  /** Extra grpc-js channel options (keepalive, ...). */
  readonly channelOptions?: ChannelOptions;
  /** Injectable clock and timers (tests). */
  readonly timers?: Timers;
}

/** How a lookup ended: the name arrived as a resource or alias, was answered as removed, or neither in time. */
export type LookupOutcome = "found" | "removed" | "timeout" | "closed";

export type ClientState = "idle" | "connecting" | "connected" | "backoff" | "closed";

export interface ClientTypeDebug {
  readonly typeUrl: string;
  readonly onDemand: boolean;
  readonly held: number;
  readonly subscriptions: readonly string[];
  readonly acked: boolean;
}

export interface ClientDebug {
  readonly state: ClientState;
  readonly connectionId: number;
  readonly ready: boolean;
  readonly types: readonly ClientTypeDebug[];
  readonly pendingLookups: number;
}
