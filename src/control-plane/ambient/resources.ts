/**
 * The xDS resources the conversion publishes: a name, aliases, the message, its encoded bytes and
 * a version that is a hash of those bytes — so equal content always has an equal version, and a
 * recomputation that changes nothing pushes nothing.
 */
import { hash } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { AddressSchema } from "../../lib/gen/istio/workload/workload_pb.ts";
import type { Address, Service, Workload } from "../../lib/gen/istio/workload/workload_pb.ts";
import { AuthorizationSchema } from "../../lib/gen/istio/security/authorization_pb.ts";
import type { Authorization } from "../../lib/gen/istio/security/authorization_pb.ts";
import { formatIp } from "../model/index.ts";

export const addressTypeUrl = "type.googleapis.com/istio.workload.Address";
export const authorizationTypeUrl = "type.googleapis.com/istio.security.Authorization";

export interface AmbientResource<M> {
  /** Workload uid, `<namespace>/<hostname>` for services, `<namespace>/<name>` for policies. */
  readonly name: string;
  /** `<network>/<ip>` for every address of a workload or service (empty for policies). */
  readonly aliases: readonly string[];
  readonly version: string;
  readonly message: M;
  /** `message` encoded; what goes into the xDS `Resource.resource` Any. */
  readonly bytes: Uint8Array;
}

export type AddressResource = AmbientResource<Address>;
export type AuthorizationResource = AmbientResource<Authorization>;

function versionOf(bytes: Uint8Array): string {
  return hash("sha256", bytes, "base64url").slice(0, 16);
}

export function workloadResource(workload: Workload): AddressResource {
  const message = create(AddressSchema, { type: { case: "workload", value: workload } });
  const bytes = toBinary(AddressSchema, message);
  const aliases = workload.addresses.map((a) => `${workload.network}/${formatIp(a)}`);
  return { name: workload.uid, aliases, version: versionOf(bytes), message, bytes };
}

export function serviceResource(service: Service): AddressResource {
  const message = create(AddressSchema, { type: { case: "service", value: service } });
  const bytes = toBinary(AddressSchema, message);
  const aliases = service.addresses.map((a) => `${a.network}/${formatIp(a.address)}`);
  return {
    name: `${service.namespace}/${service.hostname}`,
    aliases,
    version: versionOf(bytes),
    message,
    bytes,
  };
}

export function authorizationResource(auth: Authorization): AuthorizationResource {
  const bytes = toBinary(AuthorizationSchema, auth);
  return {
    name: `${auth.namespace}/${auth.name}`,
    aliases: [],
    version: versionOf(bytes),
    message: auth,
    bytes,
  };
}
