/**
 * Protobuf helpers. The messages themselves are generated into src/lib/gen (one module per
 * .proto file, e.g. `../gen/istio/workload/workload_pb.ts`); import their schemas from there.
 */
export { decodeFailureReason, decodeMessage, encodeMessage, typeUrl } from "./codec.ts";
