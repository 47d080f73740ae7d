/**
 * The Delta ADS server: `envoy.service.discovery.v3.AggregatedDiscoveryService/
 * DeltaAggregatedResources`, generic over type URLs.
 *
 * The application registers types, then publishes (upsert/remove/replace) or, with its own
 * provider, reports what changed (`changed`). Changes are debounced server-wide and then offered
 * to every stream watching the type; each stream's TypeSession keeps only those in its view and
 * sends only what differs from what the proxy holds, one un-ACKed response at a time.
 *
 *   const xds = new XdsServer({ authenticate: async (ctx) => ok(callerFrom(ctx)) });
 *   xds.registerType({ typeUrl: ADDRESS_TYPE_URL, schema: AddressSchema });
 *   xds.attach(grpcServer);                         // a createGrpcServer() server
 *   xds.upsert(ADDRESS_TYPE_URL, [{ name, resource: address, aliases: ["/198.18.1.5"] }]);
 */
import { randomBytes } from "node:crypto";
import type { MethodDefinition, Server, handleBidiStreamingCall } from "@grpc/grpc-js";
import { AggregatedDiscoveryService } from "../../gen/envoy/service/discovery/v3/discovery_pb.ts";
import type { DeltaDiscoveryRequest } from "../../gen/envoy/service/discovery/v3/discovery_pb.ts";
import { AmbientError } from "../../errors.ts";
import { grpcServiceDefinition } from "../../grpc/index.ts";
import type { RequestDecodeFailure } from "../../grpc/index.ts";
import { LogOutput } from "../../log/index.ts";
import type { Logger } from "../../log/index.ts";
import type { ProxyInfo } from "../node.ts";
import { XdsConnection } from "./connection.ts";
import type { ConnectionHost, DeltaStream, ServedType } from "./connection.ts";
import { systemTimers } from "../../timers.ts";
import type { Timers } from "../../timers.ts";
import { Debouncer } from "./debounce.ts";
import type { ResourceInput } from "./resource.ts";
import { ResourceStore } from "./store.ts";
import type {
  Authenticate,
  AuthorizeProxy,
  ConnectionDebug,
  RefusedEvent,
  TypeRegistration,
  TypeStats,
  XdsServerObserver,
  XdsServerOptions,
  XdsServerStats,
} from "./types.ts";

export const DEFAULT_DEBOUNCE_MS = 100;
export const DEFAULT_MAX_DELAY_MS = 1000;

interface RegisteredType<C, M> extends ServedType<C, M> {
  /** Set when the server owns the resources (no provider was given). */
  readonly store: ResourceStore<M> | undefined;
}

function emptyStats(): TypeStats {
  return { pushes: 0, resourcesPushed: 0, removalsPushed: 0, bytesPushed: 0, acks: 0, nacks: 0 };
}

export class XdsServer<C = unknown, M = unknown> {
  readonly #types = new Map<string, RegisteredType<C, M>>();
  readonly #connections = new Map<string, XdsConnection<C, M>>();
  /** Published but not yet pushed: type -> changed names (bounded by the number of names). */
  readonly #changes = new Map<string, Set<string>>();
  readonly #debouncer: Debouncer;
  readonly #observer: XdsServerObserver;
  readonly #log: Logger;
  readonly #timers: Timers;
  readonly #host: ConnectionHost<C, M>;
  readonly #noncePrefix = randomBytes(4).toString("hex");
  readonly #stats = new Map<string, TypeStats>();
  #nonceCounter = 0;
  #connectionCounter = 0;
  #refused = 0;
  #closed = false;

  constructor(options: XdsServerOptions<C>) {
    this.#observer = options.observer ?? {};
    this.#log = options.logger ?? new LogOutput().logger("xds");
    this.#timers = options.timers ?? systemTimers;
    this.#debouncer = new Debouncer(
      {
        quietMs: options.debounceMs ?? DEFAULT_DEBOUNCE_MS,
        maxDelayMs: options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS,
        timers: this.#timers,
      },
      (start) => this.#flush(start),
    );
    this.#host = this.#makeHost(options.authenticate, options.authorizeProxy);
  }

  /** Serves a type. Register every type before proxies connect; a type cannot be re-registered. */
  registerType(registration: TypeRegistration<C, M>): void {
    const { typeUrl } = registration;
    if (this.#types.has(typeUrl)) {
      throw new AmbientError("ERR_XDS_TYPE", `xDS type ${typeUrl} is already registered`);
    }
    const store =
      registration.provider === undefined
        ? new ResourceStore<M>(typeUrl, registration.schema)
        : undefined;
    this.#types.set(typeUrl, {
      typeUrl,
      provider: registration.provider ?? store!,
      select: registration.select,
      store,
    });
    this.#stats.set(typeUrl, emptyStats());
  }

  /** Adds or replaces resources of a store-backed type; returns the names whose version changed. */
  upsert(typeUrl: string, resources: Iterable<ResourceInput<M>>): string[] {
    const changed = this.#store(typeUrl).upsert(resources);
    this.#publish(typeUrl, changed);
    return changed;
  }

  /** Removes resources of a store-backed type by name; returns the names that existed. */
  remove(typeUrl: string, names: Iterable<string>): string[] {
    const removed = this.#store(typeUrl).remove(names);
    this.#publish(typeUrl, removed);
    return removed;
  }

  /** Makes a store-backed type hold exactly `resources`; returns the changed and removed names. */
  replace(typeUrl: string, resources: Iterable<ResourceInput<M>>): string[] {
    const changed = this.#store(typeUrl).replace(resources);
    this.#publish(typeUrl, changed);
    return changed;
  }

  /** For types with their own provider: these names changed or disappeared. */
  changed(typeUrl: string, names: Iterable<string>): void {
    if (!this.#types.has(typeUrl)) {
      throw new AmbientError("ERR_XDS_TYPE", `xDS type ${typeUrl} is not registered`);
    }
    this.#publish(typeUrl, names);
  }

  /**
   * Re-evaluates every resource for the matching streams (all when no filter), e.g. after
   * something a `select` hook reads changed. Pushes right away, without debounce.
   */
  resync(filter?: (proxy: ProxyInfo, caller: C) => boolean, typeUrl?: string): void {
    for (const conn of this.#connections.values()) {
      const proxy = conn.proxy;
      if (proxy === undefined) continue;
      if (filter !== undefined && !filter(proxy, conn.caller as C)) continue;
      conn.resync(typeUrl);
    }
  }

  /** Pushes pending published changes now instead of after the debounce. */
  flush(): void {
    this.#debouncer.flushNow();
  }

  /** Adds DeltaAggregatedResources to a grpc-js server (best made by createGrpcServer). */
  attach(server: Server): void {
    server.addService(
      { deltaAggregatedResources: deltaMethodDefinition() },
      { deltaAggregatedResources: this.handler },
    );
  }

  /** The grpc-js handler, for wiring by hand. */
  readonly handler: handleBidiStreamingCall<
    DeltaDiscoveryRequest | RequestDecodeFailure,
    Uint8Array
  > = (call) => {
    const stream = call as DeltaStream;
    if (this.#closed) {
      stream.emit("error", { code: 14, details: "xDS server is shutting down" });
      return;
    }
    this.#connectionCounter += 1;
    const conn = new XdsConnection<C, M>(
      `${this.#noncePrefix}-${this.#connectionCounter}`,
      stream,
      this.#host,
    );
    // Tracked from the start, so close() also ends streams still authenticating.
    this.#connections.set(conn.id, conn);
    conn.start();
  };

  /**
   * Debug state of every stream (`proxy` is undefined until its first request). `versions`
   * includes each resource version the proxy holds.
   */
  connections(options: { versions?: boolean } = {}): ConnectionDebug[] {
    return [...this.#connections.values()].map((c) => c.debug(options.versions ?? false));
  }

  connection(id: string, options: { versions?: boolean } = {}): ConnectionDebug | undefined {
    return this.#connections.get(id)?.debug(options.versions ?? true);
  }

  stats(): XdsServerStats {
    const byType: Record<string, TypeStats> = {};
    for (const [t, s] of this.#stats) byType[t] = { ...s };
    let connections = 0;
    for (const c of this.#connections.values()) if (c.proxy !== undefined) connections += 1;
    return { connections, refused: this.#refused, byType };
  }

  /** Ends every stream (status OK: proxies reconnect elsewhere or later) and stops pushing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#debouncer.close();
    this.#changes.clear();
    for (const conn of [...this.#connections.values()]) conn.close("OK", "xDS server closing");
    this.#connections.clear();
  }

  #store(typeUrl: string): ResourceStore<M> {
    const t = this.#types.get(typeUrl);
    if (t === undefined) {
      throw new AmbientError("ERR_XDS_TYPE", `xDS type ${typeUrl} is not registered`);
    }
    if (t.store === undefined) {
      throw new AmbientError(
        "ERR_XDS_TYPE",
        `xDS type ${typeUrl} has its own provider; report changes with changed()`,
      );
    }
    return t.store;
  }

  #publish(typeUrl: string, names: Iterable<string>): void {
    if (this.#closed) return;
    let set = this.#changes.get(typeUrl);
    let any = false;
    for (const n of names) {
      if (set === undefined) {
        set = new Set();
        this.#changes.set(typeUrl, set);
      }
      set.add(n);
      any = true;
    }
    if (any) this.#debouncer.trigger();
  }

  #flush(batchStart: number): void {
    const changes = [...this.#changes];
    this.#changes.clear();
    for (const [typeUrl, names] of changes) {
      const type = this.#types.get(typeUrl);
      if (type === undefined) continue;
      // A change to a resource can move its dependents in or out of explicit views (a
      // service gaining the VIP someone asked for brings its workloads along).
      const candidates = new Set(names);
      for (const n of names) for (const d of type.provider.dependents(n)) candidates.add(d);
      for (const conn of this.#connections.values())
        conn.onChanged(typeUrl, candidates, batchStart);
    }
  }

  #makeHost(
    authenticate: Authenticate<C>,
    authorizeProxy: AuthorizeProxy<C> | undefined,
  ): ConnectionHost<C, M> {
    return {
      authenticate,
      authorizeProxy,
      logger: this.#log,
      timers: this.#timers,
      type: (typeUrl) => this.#types.get(typeUrl),
      nonce: () => {
        this.#nonceCounter += 1;
        return `${this.#noncePrefix}-${this.#nonceCounter.toString(36)}`;
      },
      opened: (conn) => {
        this.#notify("connected", { connectionId: conn.id, peer: conn.peer, proxy: conn.proxy! });
      },
      closed: (conn, reason) => {
        this.#connections.delete(conn.id);
        if (conn.proxy !== undefined) {
          this.#notify("disconnected", {
            connectionId: conn.id,
            peer: conn.peer,
            proxy: conn.proxy,
            reason,
          });
        }
      },
      refused: (event: RefusedEvent) => {
        this.#refused += 1;
        this.#notify("refused", event);
      },
      notify: (hook, event) => this.#notify(hook, event),
      count: (typeUrl, what, resources = 0, removed = 0, bytes = 0) => {
        const s = this.#stats.get(typeUrl);
        if (s === undefined) return;
        if (what === "push") {
          s.pushes += 1;
          s.resourcesPushed += resources;
          s.removalsPushed += removed;
          s.bytesPushed += bytes;
        } else if (what === "ack") s.acks += 1;
        else s.nacks += 1;
      },
    };
  }

  #notify<K extends keyof XdsServerObserver>(
    hook: K,
    event: Parameters<NonNullable<XdsServerObserver[K]>>[0],
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

let deltaDefinition: MethodDefinition<unknown, unknown> | undefined;

/**
 * DeltaAggregatedResources with responses written as pre-encoded bytes (see response.ts) and
 * undecodable requests marked (createGrpcServer's interceptor answers them with INTERNAL).
 */
function deltaMethodDefinition(): MethodDefinition<unknown, unknown> {
  if (deltaDefinition !== undefined) return deltaDefinition;
  const base = grpcServiceDefinition(AggregatedDiscoveryService, "mark")[
    "deltaAggregatedResources"
  ];
  if (base === undefined) {
    throw new AmbientError(
      "ERR_XDS_DEFINITION",
      "AggregatedDiscoveryService lacks DeltaAggregatedResources",
    );
  }
  deltaDefinition = {
    ...base,
    responseSerialize: (value: unknown) =>
      value instanceof Uint8Array
        ? Buffer.from(value.buffer, value.byteOffset, value.byteLength)
        : base.responseSerialize(value),
  };
  return deltaDefinition;
}
