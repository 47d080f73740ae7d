/**
 * Serves the ambient index over Delta ADS: `istio.workload.Address` and
 * `istio.security.Authorization`. A wildcard subscriber (ztunnel's default) gets everything; an
 * on-demand one gets what it asks for — a VIP brings its service and the workloads behind it,
 * since each workload lists its services as `related` — and, always, the workloads on its own
 * node. Authorization stays wildcard (ztunnel never asks for it on demand). Only changed
 * resources are published, and the server offers them only to streams whose view holds them.
 */
import type { AddressResource, AmbientDelta, AuthorizationResource } from "../ambient/index.ts";
import type { ResourceInput, XdsServer } from "../../lib/xds/index.ts";
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  WORKLOAD_TYPE_URL,
  storeResource,
} from "../../lib/xds/index.ts";
import type { Select } from "../../lib/xds/index.ts";
import { AddressProvider } from "./address-provider.ts";
import { WorkloadProvider, type AddressBytes } from "./workload-provider.ts";
import type { Caller } from "../auth/caller.ts";

/** What the `select` hook knows of an Address resource. */
export interface AddressMeta {
  /** The node of a workload (undefined for services and node-less workloads). */
  readonly node: string | undefined;
}

export type AmbientXdsServer = XdsServer<Caller, AddressMeta | undefined>;

/** Wildcard, asked for (or related to what was asked for), or on the proxy's own node. */
const addressView: Select<Caller, AddressMeta | undefined> = (r, c) =>
  c.wildcard ||
  c.requested ||
  (r.meta?.node !== undefined && c.proxy.nodeName !== "" && r.meta.node === c.proxy.nodeName);

/**
 * Registers the ambient types with their per-proxy views; returns the Address provider. With
 * `addressBytes` (the encoded Address of a name), `istio.workload.Workload` is served too.
 */
export function registerAmbientTypes(
  xds: AmbientXdsServer,
  addressBytes?: AddressBytes,
): AddressProvider<AddressMeta | undefined> {
  const addresses = new AddressProvider<AddressMeta | undefined>();
  xds.registerType({ typeUrl: ADDRESS_TYPE_URL, provider: addresses, select: addressView });
  xds.registerType({ typeUrl: AUTHORIZATION_TYPE_URL });
  if (addressBytes !== undefined) {
    xds.registerType({
      typeUrl: WORKLOAD_TYPE_URL,
      provider: new WorkloadProvider(addresses, addressBytes),
      select: addressView,
    });
    addresses.servesWorkloads = true;
  }
  return addresses;
}

function authorizationInput(r: AuthorizationResource): ResourceInput<AddressMeta | undefined> {
  return { name: r.name, version: r.version, resource: r.bytes };
}

/** Publishes index deltas to the server. */
export class AmbientPublisher {
  readonly #xds: AmbientXdsServer;
  readonly #addresses: AddressProvider<AddressMeta | undefined>;
  /** One meta object per node, shared by its workloads (100k workloads, 1k nodes). */
  readonly #metaByNode = new Map<string, AddressMeta>();

  constructor(xds: AmbientXdsServer, addresses: AddressProvider<AddressMeta | undefined>) {
    this.#xds = xds;
    this.#addresses = addresses;
  }

  /** Publishes what an index update changed. */
  publish(delta: Omit<AmbientDelta, "builds">): void {
    const xds = this.#xds;
    const { addresses, authorizations } = delta;
    const changed: string[] = [];
    if (addresses.updated.length > 0) {
      const stored = addresses.updated.map((r) =>
        storeResource(ADDRESS_TYPE_URL, this.#addressInput(r)),
      );
      for (const n of this.#addresses.upsert(stored)) changed.push(n);
    }
    if (addresses.removed.length > 0) {
      for (const n of this.#addresses.remove(addresses.removed)) changed.push(n);
    }
    if (changed.length > 0) {
      xds.changed(ADDRESS_TYPE_URL, changed);
      if (this.#addresses.servesWorkloads) xds.changed(WORKLOAD_TYPE_URL, changed);
    }
    if (authorizations.updated.length > 0) {
      xds.upsert(AUTHORIZATION_TYPE_URL, authorizations.updated.map(authorizationInput));
    }
    if (authorizations.removed.length > 0) {
      xds.remove(AUTHORIZATION_TYPE_URL, authorizations.removed);
    }
  }

  #nodeMeta(node: string): AddressMeta | undefined {
    if (node === "") return undefined;
    let m = this.#metaByNode.get(node);
    if (m === undefined) {
      m = Object.freeze({ node });
      this.#metaByNode.set(node, m);
    }
    return m;
  }

  #addressInput(r: AddressResource): ResourceInput<AddressMeta | undefined> {
    const address = r.message.type;
    if (address.case !== "workload") {
      return { name: r.name, version: r.version, resource: r.bytes, aliases: r.aliases };
    }
    const w = address.value;
    return {
      name: r.name,
      version: r.version,
      resource: r.bytes,
      aliases: r.aliases,
      // A subscription to one of the workload's services (or a VIP of one) brings it along.
      related: Object.keys(w.services),
      meta: this.#nodeMeta(w.node),
    };
  }
}
