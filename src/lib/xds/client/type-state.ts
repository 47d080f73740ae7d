/**
 * The client's state for one type, across reconnects: which resources it holds (name ->
 * version, and their aliases), its explicit (on-demand) subscriptions, and whether a first
 * response was ever ACKed. Pure: it builds requests and processes responses; the client does
 * the I/O.
 *
 * Processing follows ztunnel (INTEROP §3.3): every resource is decoded on its own; decode
 * failures and the handler's refusals are NACKed together as `"<name>: <reason>; ..."` while the
 * rest stay applied; refused names are forgotten, so a reconnect does not claim to hold them.
 */
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { DeltaDiscoveryRequestSchema } from "../../gen/envoy/service/discovery/v3/discovery_pb.ts";
import type { DeltaDiscoveryResponse } from "../../gen/envoy/service/discovery/v3/discovery_pb.ts";
import { decodeMessage, typeUrl as typeUrlOf } from "../../proto/index.ts";
import { formatRejections } from "../nack.ts";
import type { Rejection } from "../nack.ts";
import type { NodeInit } from "../node.ts";
import type { TypeHandler, XdsUpdate } from "./handler.ts";

export type RequestInit = MessageInitShape<typeof DeltaDiscoveryRequestSchema>;

export interface ProcessResult {
  /** The ACK (no error detail) or NACK to send. */
  readonly request: RequestInit;
  readonly rejected: readonly Rejection[];
  /** Resource names and aliases that arrived (rejected ones included): on-demand waiters for them resolve. */
  readonly arrived: readonly string[];
  readonly removed: readonly string[];
}

interface Held {
  readonly version: string;
  readonly aliases: readonly string[];
}

export class ClientTypeState {
  readonly typeUrl: string;
  readonly handler: TypeHandler;
  /** Subscribes to nothing up front and asks per name (`lookup`). */
  readonly onDemand: boolean;
  readonly #held = new Map<string, Held>();
  readonly #byAlias = new Map<string, Set<string>>();
  readonly #explicit = new Set<string>();
  #acked = false;

  constructor(handler: TypeHandler, clientOnDemand: boolean) {
    this.handler = handler;
    this.typeUrl = handler.typeUrl ?? typeUrlOf(handler.schema);
    this.onDemand = clientOnDemand && handler.onDemand !== false;
  }

  /** A first response of this type was ACKed (on any stream). */
  get acked(): boolean {
    return this.#acked;
  }

  markAcked(): void {
    this.#acked = true;
  }

  get heldCount(): number {
    return this.#held.size;
  }

  /** The client holds a resource by this name or alias. */
  holds(nameOrAlias: string): boolean {
    return this.#held.has(nameOrAlias) || this.#byAlias.has(nameOrAlias);
  }

  /** Version held of `name`, if any. */
  version(name: string): string | undefined {
    return this.#held.get(name)?.version;
  }

  get subscriptions(): readonly string[] {
    return [...this.#explicit];
  }

  /** Records an on-demand subscription; false if it already existed. */
  subscribe(name: string): boolean {
    if (this.#explicit.has(name)) return false;
    this.#explicit.add(name);
    return true;
  }

  /**
   * The first request of a stream. Wildcard: empty subscribe list. On demand: subscribe and
   * unsubscribe `*` together ("nothing"), plus the names asked for so far. Either way the held
   * versions go in `initial_resource_versions`.
   */
  initialRequest(node: NodeInit): RequestInit {
    const initialResourceVersions: Record<string, string> = {};
    for (const [name, h] of this.#held) initialResourceVersions[name] = h.version;
    return {
      typeUrl: this.typeUrl,
      node: { id: node.id, metadata: node.metadata },
      resourceNamesSubscribe: this.onDemand ? ["*", ...this.#explicit] : [],
      resourceNamesUnsubscribe: this.onDemand ? ["*"] : [],
      initialResourceVersions,
    };
  }

  process(response: DeltaDiscoveryResponse): ProcessResult {
    const schema: DescMessage = this.handler.schema;
    const updates: XdsUpdate<MessageShape<DescMessage>>[] = [];
    const refused: Rejection[] = [];
    const arrived: string[] = [];
    for (const r of response.resources) {
      arrived.push(r.name, ...r.aliases);
      const any = r.resource;
      if (any === undefined) {
        refused.push({ name: r.name, reason: "xDS resource without a payload" });
        continue;
      }
      if (any.typeUrl !== "" && any.typeUrl !== this.typeUrl) {
        refused.push({
          name: r.name,
          reason: `payload is ${any.typeUrl}, expected ${this.typeUrl}`,
        });
        continue;
      }
      const decoded = decodeMessage(schema, any.value);
      if (!decoded.ok) {
        refused.push({ name: r.name, reason: decoded.reason });
        continue;
      }
      updates.push({
        name: r.name,
        version: r.version,
        aliases: r.aliases,
        resource: decoded.value,
      });
    }

    let handlerRefused: readonly Rejection[];
    try {
      handlerRefused =
        this.handler.apply({
          typeUrl: this.typeUrl,
          updates,
          removed: response.removedResources,
        }) ?? [];
    } catch (err) {
      const reason = `handler failed: ${err instanceof Error ? err.message : String(err)}`;
      handlerRefused = updates.map((u) => ({ name: u.name, reason }));
    }

    const rejected = [...refused, ...handlerRefused];
    const rejectedNames = new Set(rejected.map((r) => r.name));
    for (const u of updates) {
      if (rejectedNames.has(u.name)) this.#forget(u.name);
      else this.#hold(u.name, u.version, u.aliases);
    }
    for (const r of refused) this.#forget(r.name);
    for (const name of response.removedResources) this.#forget(name);

    const request: RequestInit =
      rejected.length === 0
        ? { typeUrl: this.typeUrl, responseNonce: response.nonce }
        : {
            typeUrl: this.typeUrl,
            responseNonce: response.nonce,
            errorDetail: { message: formatRejections(rejected) },
          };
    return { request, rejected, arrived, removed: response.removedResources };
  }

  #hold(name: string, version: string, aliases: readonly string[]): void {
    this.#forget(name);
    this.#held.set(name, { version, aliases });
    for (const a of aliases) {
      let set = this.#byAlias.get(a);
      if (set === undefined) {
        set = new Set();
        this.#byAlias.set(a, set);
      }
      set.add(name);
    }
  }

  #forget(name: string): void {
    const old = this.#held.get(name);
    if (old === undefined) return;
    this.#held.delete(name);
    for (const a of old.aliases) {
      const set = this.#byAlias.get(a);
      if (set === undefined) continue;
      set.delete(name);
      if (set.size === 0) this.#byAlias.delete(a);
    }
  }
}
