/**
 * `istio.workload.Workload`: the workload-only view of the Address resources (istiod serves it
 * too; ztunnel does not use it). Nothing is stored up front: a Workload resource is made from
 * the Address resource the first time a stream needs it — the Address's encoded bytes are the
 * field-1 (workload) wrapper around the Workload's, so the payload is a sub-array — and kept
 * while that Address version lives. Names, aliases and versions are the Address's.
 */
import type { ResourceProvider, StoredResource } from "../../lib/xds/index.ts";
import { WORKLOAD_TYPE_URL, storeResource } from "../../lib/xds/index.ts";
/** The Address resources' meta (a workload's node), passed through unchanged. */
type Meta = { readonly node: string | undefined } | undefined;

/** The Workload bytes inside an encoded `Address{workload}`, or undefined for a Service. */
export function workloadPayload(address: Uint8Array): Uint8Array | undefined {
  // Address.workload is field 1, wire type 2: tag 0x0a, then a varint length.
  if (address[0] !== 0x0a) return undefined;
  let len = 0;
  let shift = 0;
  let i = 1;
  for (; i < address.length && i < 6; i++) {
    const b = address[i]!;
    len |= (b & 0x7f) << shift;
    shift += 7;
    if ((b & 0x80) === 0) break;
  }
  const start = i + 1;
  return start + len === address.length ? address.subarray(start) : undefined;
}

/** The Address resource's own payload (the envoy Resource's Any value) is not kept; decode it. */
export type AddressBytes = (name: string) => Uint8Array | undefined;

export class WorkloadProvider implements ResourceProvider<Meta> {
  readonly #addresses: ResourceProvider<Meta>;
  readonly #bytes: AddressBytes;
  readonly #made = new WeakMap<StoredResource<Meta>, StoredResource<Meta> | null>();

  /** `bytes(name)` gives the encoded Address message of a name (the index keeps it). */
  constructor(addresses: ResourceProvider<Meta>, bytes: AddressBytes) {
    this.#addresses = addresses;
    this.#bytes = bytes;
  }

  get(name: string): StoredResource<Meta> | undefined {
    const a = this.#addresses.get(name);
    if (a === undefined) return undefined;
    let w = this.#made.get(a);
    if (w === undefined) {
      const bytes = this.#bytes(name);
      const payload = bytes === undefined ? undefined : workloadPayload(bytes);
      w =
        payload === undefined
          ? null
          : storeResource(WORKLOAD_TYPE_URL, {
              name,
              version: a.version,
              resource: payload,
              aliases: a.aliases,
              meta: a.meta,
            });
      this.#made.set(a, w);
    }
    return w ?? undefined;
  }

  withAlias(alias: string): Iterable<string> {
    return this.#addresses.withAlias(alias);
  }

  dependents(): Iterable<string> {
    return [];
  }

  names(): Iterable<string> {
    return this.#addresses.names();
  }
}
