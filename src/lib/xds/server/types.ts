/**
 * The server's public contract: options, hooks and the shapes of its debug and stats values.
 */
import type { DescMessage } from "@bufbuild/protobuf";
import type { Metadata, ServerDuplexStream } from "@grpc/grpc-js";
import type { Result } from "../../errors.ts";
import type { Logger } from "../../log/index.ts";
import type { Rejection } from "../nack.ts";
import type { ProxyInfo } from "../node.ts";
import type { Timers } from "../../timers.ts";
import type { StoredResource } from "./resource.ts";
import type { SessionDebug } from "./session.ts";
import type { ResourceProvider } from "./store.ts";

/** grpc-js's TLS details of a call (its AuthContext type is not exported). */
export type CallAuthContext = ReturnType<ServerDuplexStream<unknown, unknown>["getAuthContext"]>;

/** What `authenticate` sees of a new stream. */
export interface AuthenticateContext {
  /** The call's request headers (`authorization`, `clusterid`, ...). */
  readonly metadata: Metadata;
  /** grpc-js peer string, e.g. `ipv4:127.0.0.1:53122`. */
  readonly peer: string;
  /** TLS details (peer certificate when the client sent one). */
  readonly authContext: CallAuthContext;
}

/**
 * Run when a stream opens, before any request is read. `{ ok: false, reason }` ends the stream
 * with UNAUTHENTICATED and the reason; a rejection (thrown error) ends it with UNAVAILABLE so
 * the client retries. The caller value is opaque to the server and handed to `select` hooks.
 */
export type Authenticate<C> = (context: AuthenticateContext) => Promise<Result<C>>;

/**
 * Run on the stream's first request, once the node is known: `{ ok: false, reason }` ends the
 * stream with PERMISSION_DENIED (e.g. the node claims an identity the caller does not have).
 */
export type AuthorizeProxy<C> = (proxy: ProxyInfo, caller: C) => Result<void>;

export interface SelectContext<C> {
  readonly proxy: ProxyInfo;
  readonly caller: C;
  /** The stream subscribed to every resource of the type. */
  readonly wildcard: boolean;
  /**
   * An explicit subscription names the resource, one of its aliases, one of its `related`
   * names, or an alias of one of those.
   */
  readonly requested: boolean;
}

/**
 * Decides whether a resource is in a proxy's view. Default: `wildcard || requested`. Must be
 * pure and cheap: it runs per (stream, candidate resource) on every change and on subscribe.
 * Example, a ztunnel in on-demand mode always holds its node's workloads:
 * `(r, c) => c.wildcard || c.requested || r.meta?.node === c.proxy.nodeName`.
 */
export type Select<C, M> = (resource: StoredResource<M>, context: SelectContext<C>) => boolean;

export interface TypeRegistration<C, M> {
  readonly typeUrl: string;
  /** Lets `upsert` take messages of this type (else only encoded bytes or an Any). */
  readonly schema?: DescMessage;
  /** Where resources come from. Default: a built-in ResourceStore filled by upsert/remove. */
  readonly provider?: ResourceProvider<M>;
  readonly select?: Select<C, M>;
}

export interface ConnectionEvent {
  readonly connectionId: string;
  readonly peer: string;
  readonly proxy: ProxyInfo;
}

export interface DisconnectEvent {
  readonly connectionId: string;
  readonly peer: string;
  /** Undefined when the stream ended before its first request. */
  readonly proxy: ProxyInfo | undefined;
  readonly reason: string;
}

export interface PushEvent {
  readonly connectionId: string;
  readonly proxyId: string;
  readonly typeUrl: string;
  readonly nonce: string;
  readonly resources: number;
  readonly removed: number;
  /** Encoded response size. */
  readonly bytes: number;
  /** From the first published change it carries to the write; undefined for request-driven responses. */
  readonly latencyMs: number | undefined;
}

export interface AckEvent {
  readonly connectionId: string;
  readonly proxyId: string;
  readonly typeUrl: string;
  readonly nonce: string;
}

export interface NackEvent extends AckEvent {
  /** `error_detail.message` as the proxy sent it. */
  readonly message: string;
  /** The resources the message names (matched against what the NACKed response carried). */
  readonly rejected: readonly Rejection[];
  /** The NACK is for a response older than the latest one sent. */
  readonly stale: boolean;
}

export interface RefusedEvent {
  readonly peer: string;
  /** gRPC status name the stream ended with. */
  readonly code: "UNAUTHENTICATED" | "PERMISSION_DENIED" | "UNAVAILABLE" | "INVALID_ARGUMENT";
  readonly reason: string;
}

/**
 * Hooks for metrics (the control plane maps them to Prometheus). Called synchronously; an
 * exception thrown by a hook is logged and otherwise ignored.
 */
export interface XdsServerObserver {
  connected?(event: ConnectionEvent): void;
  disconnected?(event: DisconnectEvent): void;
  pushed?(event: PushEvent): void;
  acked?(event: AckEvent): void;
  nacked?(event: NackEvent): void;
  refused?(event: RefusedEvent): void;
}

export interface XdsServerOptions<C> {
  readonly authenticate: Authenticate<C>;
  readonly authorizeProxy?: AuthorizeProxy<C>;
  /** Quiet time before published changes are pushed. Default 100 ms (istiod's debounce). */
  readonly debounceMs?: number;
  /** Longest a change waits while changes keep coming. Default 1 s. */
  readonly maxDelayMs?: number;
  readonly observer?: XdsServerObserver;
  readonly logger?: Logger;
  /** Injectable clock and timers (tests). */
  readonly timers?: Timers;
}

export interface ConnectionDebug {
  readonly connectionId: string;
  readonly peer: string;
  /** Epoch ms. */
  readonly connectedAt: number;
  readonly proxy: ProxyInfo | undefined;
  readonly types: readonly SessionDebug[];
}

export interface TypeStats {
  pushes: number;
  resourcesPushed: number;
  removalsPushed: number;
  bytesPushed: number;
  acks: number;
  nacks: number;
}

export interface XdsServerStats {
  readonly connections: number;
  readonly refused: number;
  readonly byType: Readonly<Record<string, Readonly<TypeStats>>>;
}
