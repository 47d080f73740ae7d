/**
 * The Delta ADS client (ztunnel's side): one DeltaAggregatedResources stream at a time, over
 * TLS, carrying every watched type. Per response it decodes, lets the type's handler apply,
 * and ACKs or NACKs naming only the refused resources. When the stream ends it reconnects
 * with backoff and tells the server what it holds (`initial_resource_versions`), so only the
 * difference comes back.
 *
 *   const client = new XdsClient({ address, tls: { rootCertsPem }, token, node, handlers });
 *   client.start();
 *   await client.ready;                      // every watched type's first response ACKed
 *   await client.lookup(ADDRESS_TYPE_URL, "/198.18.1.5");   // on-demand mode
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Client, Metadata } from "@grpc/grpc-js";
import type { ClientDuplexStream, StatusObject } from "@grpc/grpc-js";
import {
  AggregatedDiscoveryService,
  DeltaDiscoveryRequestSchema,
  DeltaDiscoveryResponseSchema,
} from "../../gen/envoy/service/discovery/v3/discovery_pb.ts";
import type { DeltaDiscoveryResponse } from "../../gen/envoy/service/discovery/v3/discovery_pb.ts";
import { AmbientError } from "../../errors.ts";
import { methodPath } from "../../grpc/index.ts";
import { LogOutput } from "../../log/index.ts";
import type { Logger } from "../../log/index.ts";
import { Backoff } from "../backoff.ts";
import { systemTimers } from "../../timers.ts";
import type { Timers } from "../../timers.ts";
import { channelCredentials, parseXdsAddress } from "./credentials.ts";
import type { XdsTarget, XdsTlsOptions } from "./credentials.ts";
import { classifyTermination, resetsBackoff } from "./termination.ts";
import { ClientTypeState } from "./type-state.ts";
import type { RequestInit } from "./type-state.ts";
import type {
  ClientDebug,
  ClientState,
  LookupOutcome,
  XdsClientObserver,
  XdsClientOptions,
} from "./types.ts";

export const DEFAULT_MAX_RECEIVE_MESSAGE_BYTES = 200 * 1024 * 1024;
export const DEFAULT_LOOKUP_TIMEOUT_MS = 5000;
export const DEFAULT_CLUSTER_ID = "Kubernetes";

const DELTA_PATH = methodPath(AggregatedDiscoveryService.method.deltaAggregatedResources);

/** A response as the deserializer hands it over, with its size for the message-bytes metric. */
interface Received {
  readonly message: DeltaDiscoveryResponse;
  readonly bytes: number;
}

type Call = ClientDuplexStream<RequestInit, Received>;

interface PendingLookup {
  readonly promise: Promise<LookupOutcome>;
  readonly resolve: (outcome: LookupOutcome) => void;
  readonly timer: unknown;
}

function serializeRequest(value: RequestInit): Buffer {
  const bytes = toBinary(DeltaDiscoveryRequestSchema, create(DeltaDiscoveryRequestSchema, value));
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// A throw here makes grpc-js fail the call with INTERNAL; the stream is then re-established.
function deserializeResponse(buf: Buffer): Received {
  return { message: fromBinary(DeltaDiscoveryResponseSchema, buf), bytes: buf.byteLength };
}

export class XdsClient {
  readonly #options: XdsClientOptions;
  readonly #target: XdsTarget;
  readonly #types = new Map<string, ClientTypeState>();
  readonly #backoff: Backoff;
  readonly #timers: Timers;
  readonly #log: Logger;
  readonly #observer: XdsClientObserver;
  readonly #lookups = new Map<string, PendingLookup>();
  readonly #ready: Promise<void>;
  #resolveReady!: () => void;
  #isReady = false;
  #state: ClientState = "idle";
  #connectionId = 0;
  #call: Call | undefined;
  #channel: Client | undefined;
  #retryTimer: unknown;
  /** The current stream has ACKed a response. */
  #streamAcked = false;

  constructor(options: XdsClientOptions) {
    const target = parseXdsAddress(options.address);
    if (!target.ok) throw new AmbientError("ERR_XDS_ADDRESS", target.reason);
    this.#target = target.value;
    this.#options = options;
    this.#timers = options.timers ?? systemTimers;
    this.#log = options.logger ?? new LogOutput().logger("xds");
    this.#observer = options.observer ?? {};
    this.#backoff = new Backoff(options.backoff);
    for (const h of options.handlers) {
      const st = new ClientTypeState(h, options.onDemand ?? false);
      if (this.#types.has(st.typeUrl)) {
        throw new AmbientError("ERR_XDS_TYPE", `two handlers for xDS type ${st.typeUrl}`);
      }
      this.#types.set(st.typeUrl, st);
    }
    this.#ready = new Promise((resolve) => {
      this.#resolveReady = resolve;
    });
  }

  /** Resolves once every watched (non-on-demand) type had a first response ACKed. */
  get ready(): Promise<void> {
    return this.#ready;
  }

  get isReady(): boolean {
    return this.#isReady;
  }

  get state(): ClientState {
    return this.#state;
  }

  /** Starts connecting (once). */
  start(): void {
    if (this.#state !== "idle") return;
    this.#connect();
  }

  /**
   * On-demand fetch: subscribes to `name` (a resource name or an alias such as `/198.18.1.5`)
   * and resolves when it arrives in a response — as a resource or alias ("found") or in
   * removed_resources ("removed", the server has no such resource) — or after the timeout.
   * Already held: "found" at once. Concurrent lookups of one name share one request. Without
   * a stream the subscription goes out with the next stream's first request.
   */
  lookup(
    typeUrl: string,
    name: string,
    options: { timeoutMs?: number } = {},
  ): Promise<LookupOutcome> {
    const st = this.#types.get(typeUrl);
    if (st === undefined || !st.onDemand) {
      throw new AmbientError(
        "ERR_XDS_NOT_ON_DEMAND",
        `lookup of ${name}: type ${typeUrl} is not watched on demand by this client`,
      );
    }
    if (this.#state === "closed") return Promise.resolve("closed");
    if (st.holds(name)) return Promise.resolve("found");
    const key = `${typeUrl}\n${name}`;
    const existing = this.#lookups.get(key);
    if (existing !== undefined) return existing.promise;

    let resolve!: (o: LookupOutcome) => void;
    const promise = new Promise<LookupOutcome>((r) => {
      resolve = r;
    });
    const timeoutMs =
      options.timeoutMs ?? this.#options.lookupTimeoutMs ?? DEFAULT_LOOKUP_TIMEOUT_MS;
    const timer = this.#timers.setTimeout(() => this.#settle(key, "timeout"), timeoutMs);
    this.#lookups.set(key, { promise, resolve, timer });
    this.#log.debug("on-demand lookup", { type_url: typeUrl, name });
    // Sent even when already subscribed (e.g. answered "removed" before): the server answers
    // every name in a subscribe list.
    st.subscribe(name);
    if (this.#call !== undefined) {
      this.#write(this.#call, { typeUrl, resourceNamesSubscribe: [name] });
    }
    return promise;
  }

  debug(): ClientDebug {
    return {
      state: this.#state,
      connectionId: this.#connectionId,
      ready: this.#isReady,
      pendingLookups: this.#lookups.size,
      types: [...this.#types.values()].map((t) => ({
        typeUrl: t.typeUrl,
        onDemand: t.onDemand,
        held: t.heldCount,
        subscriptions: t.subscriptions,
        acked: t.acked,
      })),
    };
  }

  /** Stops for good: ends the stream, cancels the retry, settles lookups as "closed". */
  close(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    if (this.#retryTimer !== undefined) this.#timers.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const call = this.#call;
    const channel = this.#channel;
    this.#call = undefined;
    this.#channel = undefined;
    call?.cancel();
    channel?.close();
    for (const key of [...this.#lookups.keys()]) this.#settle(key, "closed");
  }

  #connect(): void {
    this.#retryTimer = undefined;
    if (this.#state === "closed") return;
    this.#state = "connecting";
    this.#connectionId += 1;
    const id = this.#connectionId;
    this.#prepare().then(
      ({ tls, token }) => {
        if (this.#state === "closed" || id !== this.#connectionId) return;
        this.#open(id, tls, token);
      },
      (err: unknown) => {
        if (this.#state === "closed" || id !== this.#connectionId) return;
        const details = `cannot prepare the xDS connection: ${err instanceof Error ? err.message : String(err)}`;
        this.#terminated(id, { code: 14, details, metadata: new Metadata() }, false);
      },
    );
  }

  /** Token and TLS material are re-read on every attempt (rotated tokens and roots). */
  async #prepare(): Promise<{ tls: XdsTlsOptions | undefined; token: string | undefined }> {
    const tlsOpt = this.#options.tls;
    const tls = typeof tlsOpt === "function" ? await tlsOpt() : tlsOpt;
    const token = this.#options.token === undefined ? undefined : await this.#options.token();
    return { tls, token };
  }

  #open(id: number, tls: XdsTlsOptions | undefined, token: string | undefined): void {
    const opts = this.#options;
    const creds = channelCredentials(this.#target, tls);
    // A fresh channel per attempt: a reconnect really reconnects (new TCP and TLS), like ztunnel.
    const channel = new Client(this.#target.target, creds.credentials, {
      ...opts.channelOptions,
      ...creds.options,
      "grpc.max_receive_message_length":
        opts.maxReceiveMessageBytes ?? DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
    });
    const md = new Metadata();
    if (token !== undefined && token !== "") md.set("authorization", `Bearer ${token}`);
    md.set("clusterid", opts.clusterId ?? DEFAULT_CLUSTER_ID);
    for (const [k, v] of Object.entries(opts.headers ?? {})) md.set(k, v);

    const call: Call = channel.makeBidiStreamRequest(
      DELTA_PATH,
      serializeRequest,
      deserializeResponse,
      md,
    );
    this.#channel = channel;
    this.#call = call;
    this.#streamAcked = false;
    let established = false;
    call.on("metadata", () => {
      established = true;
    });
    call.on("data", (received: Received) => {
      if (this.#call !== call) return;
      if (!established || this.#state !== "connected") {
        established = true;
        this.#state = "connected";
        this.#log.info("xDS stream established", { id, address: opts.address });
        this.#notify("connected", { connectionId: id });
      }
      this.#onResponse(call, received);
    });
    // The final status arrives as 'status'; 'error' repeats it for non-OK codes.
    call.on("error", () => undefined);
    call.on("status", (status: StatusObject) => {
      channel.close();
      if (this.#call !== call) return;
      this.#call = undefined;
      this.#channel = undefined;
      this.#terminated(id, status, established);
    });
    for (const st of this.#types.values()) this.#write(call, st.initialRequest(opts.node));
  }

  #terminated(id: number, status: StatusObject, established: boolean): void {
    if (this.#state === "closed") return;
    const reason = classifyTermination(status.code, established);
    if (resetsBackoff(reason)) this.#backoff.reset();
    const delay = this.#backoff.next();
    const fields = { id, reason, code: status.code, details: status.details, retry_ms: delay };
    if (reason === "Reconnect" || reason === "Complete") {
      this.#log.info("xDS stream ended, reconnecting", fields);
    } else {
      this.#log.warn(
        reason === "ConnectionError"
          ? "cannot reach the xDS server (check XDS_ADDRESS, the root certificate and ALT_XDS_HOSTNAME)"
          : "xDS stream failed",
        fields,
      );
    }
    this.#notify("terminated", {
      connectionId: id,
      reason,
      code: status.code,
      details: status.details,
      retryInMs: delay,
    });
    this.#state = "backoff";
    this.#retryTimer = this.#timers.setTimeout(() => this.#connect(), delay);
  }

  #onResponse(call: Call, received: Received): void {
    const res = received.message;
    const typeUrl = res.typeUrl;
    this.#notify("message", {
      typeUrl,
      bytes: received.bytes,
      resources: res.resources.length,
      removed: res.removedResources.length,
    });
    const st = this.#types.get(typeUrl);
    if (st === undefined) {
      // Not a type we watch: no NACK (INTEROP §3.3), just answer so the server is not left waiting.
      this.#log.error("xDS response of a type this client does not watch", { type_url: typeUrl });
      this.#write(call, { typeUrl, responseNonce: res.nonce });
      return;
    }
    this.#log.debug("received response", {
      type_url: typeUrl,
      size: res.resources.length,
      removes: res.removedResources.length,
      nonce: res.nonce,
    });
    const result = st.process(res);
    this.#write(call, result.request);
    if (result.rejected.length > 0) {
      const message = result.request.errorDetail?.message ?? "";
      this.#log.error("rejected xDS resources (NACK)", {
        type_url: typeUrl,
        nonce: res.nonce,
        error: message,
      });
      this.#notify("nacked", { typeUrl, nonce: res.nonce, message, rejected: result.rejected });
    } else {
      this.#notify("acked", { typeUrl, nonce: res.nonce });
      st.markAcked();
      if (!this.#streamAcked) {
        // This stream works: a later failure starts the backoff over.
        this.#streamAcked = true;
        this.#backoff.reset();
      }
    }
    for (const name of result.arrived) this.#settle(`${typeUrl}\n${name}`, "found");
    for (const name of result.removed) this.#settle(`${typeUrl}\n${name}`, "removed");
    this.#checkReady();
  }

  #checkReady(): void {
    if (this.#isReady) return;
    for (const st of this.#types.values()) if (!st.onDemand && !st.acked) return;
    this.#isReady = true;
    this.#log.info("xDS ready: first response of every watched type applied");
    this.#resolveReady();
    this.#notify("ready", undefined);
  }

  #settle(key: string, outcome: LookupOutcome): void {
    const p = this.#lookups.get(key);
    if (p === undefined) return;
    this.#lookups.delete(key);
    this.#timers.clearTimeout(p.timer);
    p.resolve(outcome);
  }

  // Requests are small and at most one per response or lookup: the stream's buffer is the queue.
  #write(call: Call, request: RequestInit): void {
    call.write(request);
  }

  #notify<K extends keyof XdsClientObserver>(
    hook: K,
    event: Parameters<NonNullable<XdsClientObserver[K]>>[0],
  ): void {
    const fn = this.#observer[hook] as ((e: typeof event) => void) | undefined;
    if (fn === undefined) return;
    try {
      fn.call(this.#observer, event);
    } catch (err) {
      this.#log.error("xDS observer hook threw", {
        hook,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
}
