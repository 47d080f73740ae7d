/**
 * gRPC glue between protobuf-es services (src/lib/gen) and @grpc/grpc-js: one way to build the
 * servers and clients for xDS and the CA.
 */
export {
  createGrpcClient,
  unaryCall,
  type BidiStreamingMethod,
  type ClientMethod,
  type ClientStreamingMethod,
  type GrpcClient,
  type GrpcClientOf,
  type ServerStreamingMethod,
  type UnaryCallOptions,
  type UnaryMethod,
  type UnaryMethodName,
} from "./client.ts";
export {
  GrpcStatusError,
  addService,
  createGrpcServer,
  statusFromError,
  unaryHandler,
  type MethodHandler,
  type ServiceImplementation,
} from "./server.ts";
export {
  RequestDecodeFailure,
  grpcServiceDefinition,
  methodPath,
  type BadRequestMode,
} from "./service-definition.ts";
