/**
 * One DeltaAggregatedResources stream on the server: authenticates it, reads the node from its
 * first request, keeps a TypeSession per requested type and writes the responses those plan.
 * This file is the I/O edge; the protocol decisions live in session.ts.
 */
import { status as GrpcStatus } from "@grpc/grpc-js";
import type { ServerDuplexStream } from "@grpc/grpc-js";
import type { DeltaDiscoveryRequest } from "../../gen/envoy/service/discovery/v3/discovery_pb.ts";
import { RequestDecodeFailure } from "../../grpc/index.ts";
import type { Logger } from "../../log/index.ts";
import { parseProxyInfo } from "../node.ts";
import type { ProxyInfo } from "../node.ts";
import type { Timers } from "../../timers.ts";
import { encodeDeltaResponse } from "./response.ts";
import { TypeSession } from "./session.ts";
import type { InView } from "./session.ts";
import type { ResourceProvider } from "./store.ts";
import type {
  AuthorizeProxy,
  Authenticate,
  ConnectionDebug,
  RefusedEvent,
  Select,
  XdsServerObserver,
} from "./types.ts";

/** A type as the connection needs it. */
export interface ServedType<C, M> {
  readonly typeUrl: string;
  readonly provider: ResourceProvider<M>;
  readonly select: Select<C, M> | undefined;
}

/** What a connection needs from its server. */
export interface ConnectionHost<C, M> {
  readonly authenticate: Authenticate<C>;
  readonly authorizeProxy: AuthorizeProxy<C> | undefined;
  readonly logger: Logger;
  readonly timers: Timers;
  type(typeUrl: string): ServedType<C, M> | undefined;
  nonce(): string;
  opened(conn: XdsConnection<C, M>): void;
  closed(conn: XdsConnection<C, M>, reason: string): void;
  refused(event: RefusedEvent): void;
  notify<K extends keyof XdsServerObserver>(
    hook: K,
    event: Parameters<NonNullable<XdsServerObserver[K]>>[0],
  ): void;
  count(
    typeUrl: string,
    what: "push" | "ack" | "nack",
    resources?: number,
    removed?: number,
    bytes?: number,
  ): void;
}

/** The stream as grpc-js hands it over; responses are pre-encoded bytes (see server.ts). */
export type DeltaStream = ServerDuplexStream<
  DeltaDiscoveryRequest | RequestDecodeFailure,
  Uint8Array
>;

type CloseCode = keyof typeof GrpcStatus;

export class XdsConnection<C = unknown, M = unknown> {
  readonly id: string;
  readonly peer: string;
  readonly connectedAt: number;
  readonly #call: DeltaStream;
  readonly #host: ConnectionHost<C, M>;
  readonly #log: Logger;
  readonly #sessions = new Map<string, TypeSession<M>>();
  readonly #unknownTypes = new Set<string>();
  #caller: C | undefined;
  #authenticated = false;
  #proxy: ProxyInfo | undefined;
  /** The stream's write buffer is full: wait for 'drain' before writing more. */
  #blocked = false;
  #closed = false;

  constructor(id: string, call: DeltaStream, host: ConnectionHost<C, M>) {
    this.id = id;
    this.#call = call;
    this.#host = host;
    this.#log = host.logger;
    this.peer = call.getPeer();
    this.connectedAt = host.timers.now();
  }

  get proxy(): ProxyInfo | undefined {
    return this.#proxy;
  }

  get caller(): C | undefined {
    return this.#caller;
  }

  get closed(): boolean {
    return this.#closed;
  }

  start(): void {
    const call = this.#call;
    // grpc-js emits 'cancelled' whenever the call ends (client gone, or after our own status).
    call.on("cancelled", () => this.#finish("stream cancelled"));
    call.on("error", (err: unknown) =>
      this.#finish(`stream error: ${err instanceof Error ? err.message : JSON.stringify(err)}`),
    );
    call.on("drain", () => {
      this.#blocked = false;
      this.#safely("writing responses", () => this.#pumpAll());
    });
    let auth: ReturnType<Authenticate<C>>;
    try {
      auth = this.#host.authenticate({
        metadata: call.metadata,
        peer: this.peer,
        authContext: call.getAuthContext(),
      });
    } catch (err) {
      auth = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    // Requests are only read once authenticated: the 'data' listener is attached then, and
    // grpc-js holds what arrives meanwhile.
    auth.then(
      (result) => {
        if (this.#closed) return;
        if (!result.ok) {
          this.#refuse("UNAUTHENTICATED", `authentication failed: ${result.reason}`);
          return;
        }
        this.#caller = result.value;
        this.#authenticated = true;
        call.on("data", (req: DeltaDiscoveryRequest | RequestDecodeFailure) =>
          this.#safely("handling a request", () => this.#onData(req)),
        );
        call.on("end", () => this.#end("OK", "client closed the stream"));
      },
      (err: unknown) => {
        if (this.#closed) return;
        const message = err instanceof Error ? err.message : String(err);
        this.#log.error("xDS authentication hook failed", { peer: this.peer, error: message });
        this.#refuse("UNAVAILABLE", `authentication unavailable: ${message}`);
      },
    );
  }

  /** Published changes for one type: `candidates` changed at `since`. */
  onChanged(typeUrl: string, candidates: Iterable<string>, since: number): void {
    const s = this.#sessions.get(typeUrl);
    if (s === undefined || this.#closed) return;
    this.#safely("pushing changes", () => {
      if (s.onChanged(candidates, since)) this.#pump(s);
    });
  }

  resync(typeUrl: string | undefined): void {
    this.#safely("resyncing", () => {
      for (const s of this.#sessions.values()) {
        if (typeUrl !== undefined && s.typeUrl !== typeUrl) continue;
        s.resync();
        this.#pump(s);
      }
    });
  }

  /** Ends the stream with a status (OK for an orderly close). */
  close(code: CloseCode, details: string): void {
    this.#end(code, details);
  }

  debug(includeVersions: boolean): ConnectionDebug {
    return {
      connectionId: this.id,
      peer: this.peer,
      connectedAt: this.connectedAt,
      proxy: this.#proxy,
      types: [...this.#sessions.values()].map((s) => s.debug(includeVersions)),
    };
  }

  /**
   * Runs application hooks (select, providers) for this stream: a throw ends only this stream,
   * with INTERNAL, and is logged; other streams and the process carry on.
   */
  #safely(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.#log.error("xDS stream failed on a control plane error", {
        node: this.#proxy?.id,
        while: what,
        error: message,
      });
      this.#end("INTERNAL", `control plane error while ${what}: ${message}`);
    }
  }

  #onData(req: DeltaDiscoveryRequest | RequestDecodeFailure): void {
    if (this.#closed || !this.#authenticated) return;
    if (req instanceof RequestDecodeFailure) {
      // Only reached on a server not made by createGrpcServer (its interceptor answers first).
      this.#end("INTERNAL", req.details);
      return;
    }
    if (this.#proxy === undefined && !this.#admit(req)) return;
    const proxy = this.#proxy!;
    const typeUrl = req.typeUrl;
    if (typeUrl === "") {
      this.#end("INVALID_ARGUMENT", "DeltaDiscoveryRequest without type_url");
      return;
    }
    const type = this.#host.type(typeUrl);
    if (type === undefined) {
      // Like istiod: no generator, no answer. Said once per type so a retrying client can't flood.
      if (!this.#unknownTypes.has(typeUrl)) {
        this.#unknownTypes.add(typeUrl);
        this.#log.warn("proxy requested a type this server does not serve", {
          node: proxy.id,
          type_url: typeUrl,
        });
      }
      return;
    }
    const now = this.#host.timers.now();
    let session = this.#sessions.get(typeUrl);
    if (session === undefined) {
      session = new TypeSession(typeUrl, type.provider, this.#inView(type, proxy), req);
      this.#sessions.set(typeUrl, session);
      this.#log.debug("subscribed", {
        node: proxy.id,
        type_url: typeUrl,
        wildcard: session.wildcard,
        known: Object.keys(req.initialResourceVersions).length,
      });
    } else {
      const outcome = session.onRequest(req, now);
      switch (outcome.kind) {
        case "ack":
          this.#host.count(typeUrl, "ack");
          this.#host.notify("acked", {
            connectionId: this.id,
            proxyId: proxy.id,
            typeUrl,
            nonce: outcome.nonce,
          });
          break;
        case "nack":
          this.#host.count(typeUrl, "nack");
          this.#log.warn("proxy rejected configuration (NACK)", {
            node: proxy.id,
            type_url: typeUrl,
            nonce: outcome.nonce,
            stale: outcome.stale,
            rejected: outcome.rejected.map((r) => r.name).join(","),
            error: outcome.message,
          });
          this.#host.notify("nacked", {
            connectionId: this.id,
            proxyId: proxy.id,
            typeUrl,
            nonce: outcome.nonce,
            message: outcome.message,
            rejected: outcome.rejected,
            stale: outcome.stale,
          });
          break;
        case "stale-ack":
        case "request":
          break;
      }
    }
    this.#pump(session);
  }

  /** First request: node, proxy info, authorization. */
  #admit(req: DeltaDiscoveryRequest): boolean {
    const node = req.node;
    if (node === undefined || node.id === "") {
      this.#refuse(
        "INVALID_ARGUMENT",
        "the first DeltaDiscoveryRequest on a stream must carry node.id",
      );
      return false;
    }
    const proxy = parseProxyInfo(node);
    const check = this.#host.authorizeProxy?.(proxy, this.#caller as C);
    if (check !== undefined && !check.ok) {
      this.#refuse("PERMISSION_DENIED", `node ${proxy.id} refused: ${check.reason}`);
      return false;
    }
    this.#proxy = proxy;
    this.#log.info("new delta xDS connection", { node: proxy.id, peer: this.peer, id: this.id });
    this.#host.opened(this);
    return true;
  }

  #inView(type: ServedType<C, M>, proxy: ProxyInfo): InView<M> {
    const select = type.select;
    if (select === undefined) return (_r, requested, wildcard) => wildcard || requested;
    const caller = this.#caller as C;
    return (r, requested, wildcard) => select(r, { proxy, caller, wildcard, requested });
  }

  #pumpAll(): void {
    for (const s of this.#sessions.values()) this.#pump(s);
  }

  #pump(session: TypeSession<M>): void {
    if (this.#closed || this.#blocked || !session.ready) return;
    const now = this.#host.timers.now();
    const nonce = this.#host.nonce();
    const plan = session.takeResponse(nonce, now);
    if (plan === undefined) return;
    const typeUrl = session.typeUrl;
    const bytes = encodeDeltaResponse({
      typeUrl,
      nonce,
      resources: plan.resources,
      removed: plan.removed,
    });
    if (!this.#call.write(bytes)) this.#blocked = true;
    const proxyId = this.#proxy?.id ?? "";
    const latencyMs = plan.oldestChange === undefined ? undefined : now - plan.oldestChange;
    this.#host.count(typeUrl, "push", plan.resources.length, plan.removed.length, bytes.byteLength);
    this.#log.debug("push", {
      node: proxyId,
      type_url: typeUrl,
      nonce,
      resources: plan.resources.length,
      removed: plan.removed.length,
      bytes: bytes.byteLength,
    });
    this.#host.notify("pushed", {
      connectionId: this.id,
      proxyId,
      typeUrl,
      nonce,
      resources: plan.resources.length,
      removed: plan.removed.length,
      bytes: bytes.byteLength,
      latencyMs,
    });
  }

  #refuse(code: RefusedEvent["code"], reason: string): void {
    this.#log.warn("xDS stream refused", { peer: this.peer, code, reason });
    this.#host.refused({ peer: this.peer, code, reason });
    this.#end(code, reason);
  }

  #end(code: CloseCode, details: string): void {
    if (this.#closed) return;
    // Finish first: emitting 'error' below also reaches our own 'error' listener.
    this.#finish(code === "OK" ? details : `${code}: ${details}`);
    if (code === "OK") this.#call.end();
    // grpc-js turns an 'error' event on a server stream into the call's final status.
    else this.#call.emit("error", { code: GrpcStatus[code], details });
  }

  #finish(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sessions.clear();
    if (this.#proxy !== undefined) {
      this.#log.info("delta xDS connection closed", { node: this.#proxy.id, id: this.id, reason });
    }
    this.#host.closed(this, reason);
  }
}
