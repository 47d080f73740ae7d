/**
 * What the embedding application plugs into the client per type: a schema to decode the `Any`
 * payloads with, and a function that applies a batch and says which resources it refused.
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { Rejection } from "../nack.ts";

export interface XdsUpdate<T> {
  readonly name: string;
  readonly version: string;
  readonly aliases: readonly string[];
  readonly resource: T;
}

/** One response's worth of changes for a type: decoded updates, then removals by name. */
export interface XdsBatch<T> {
  readonly typeUrl: string;
  readonly updates: readonly XdsUpdate<T>[];
  readonly removed: readonly string[];
}

export interface TypeHandler<Desc extends DescMessage = DescMessage> {
  /** Decodes each resource's `Any.value`. */
  readonly schema: Desc;
  /** Default `type.googleapis.com/<schema type name>`. */
  readonly typeUrl?: string;
  /**
   * Whether the type follows the client's on-demand mode. `false` keeps it wildcard even then
   * (ztunnel does so for Authorization). Default true.
   */
  readonly onDemand?: boolean;
  /**
   * Applies a batch to the application's state and returns the resources it refused (with
   * why); the others count as applied. Resources that fail to decode never get here: the client
   * refuses them itself. A throw refuses every update of the batch with the error's message.
   */
  apply(batch: XdsBatch<MessageShape<Desc>>): readonly Rejection[] | void;
}
