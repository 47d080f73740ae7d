/** Type URLs ztunnel and istiod exchange (INTEROP §3.2). */
import { AuthorizationSchema } from "../gen/istio/security/authorization_pb.ts";
import { AddressSchema, WorkloadSchema } from "../gen/istio/workload/workload_pb.ts";
import { typeUrl } from "../proto/index.ts";

/** `type.googleapis.com/istio.workload.Address`: workloads (by uid) and services (`<ns>/<hostname>`). */
export const ADDRESS_TYPE_URL = typeUrl(AddressSchema);
/** `type.googleapis.com/istio.security.Authorization`: policies by `<ns>/<name>`. */
export const AUTHORIZATION_TYPE_URL = typeUrl(AuthorizationSchema);
/** `type.googleapis.com/istio.workload.Workload`: served by istiod, unused by ztunnel. */
export const WORKLOAD_TYPE_URL = typeUrl(WorkloadSchema);
