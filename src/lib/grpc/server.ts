/**
 * gRPC servers for protobuf-es services. `createGrpcServer` builds a grpc-js Server whose
 * interceptor turns an undecodable request into a clean status (INTERNAL, details naming the
 * message type and method) instead of handing garbage to a handler; `addService` registers a
 * typed implementation of a generated service on such a server.
 */
import { Server, ServerInterceptingCall, status as GrpcStatus } from "@grpc/grpc-js";
import type {
  ServerInterceptor,
  ServerOptions,
  ServerUnaryCall,
  StatusObject,
  UntypedServiceImplementation,
  handleBidiStreamingCall,
  handleClientStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
} from "@grpc/grpc-js";
import type { MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { AmbientError } from "../errors.ts";
import { RequestDecodeFailure, grpcServiceDefinition } from "./service-definition.ts";

/** The handler grpc-js expects for one method: requests are decoded messages; responses may be init objects. */
export type MethodHandler<M extends GenServiceMethods[string]> = M["methodKind"] extends "unary"
  ? handleUnaryCall<MessageShape<M["input"]>, MessageInitShape<M["output"]>>
  : M["methodKind"] extends "server_streaming"
    ? handleServerStreamingCall<MessageShape<M["input"]>, MessageInitShape<M["output"]>>
    : M["methodKind"] extends "client_streaming"
      ? handleClientStreamingCall<MessageShape<M["input"]>, MessageInitShape<M["output"]>>
      : handleBidiStreamingCall<MessageShape<M["input"]>, MessageInitShape<M["output"]>>;

/**
 * Handlers keyed by the method's local name (`createCertificate`, `deltaAggregatedResources`).
 * Methods left out answer UNIMPLEMENTED.
 */
export type ServiceImplementation<S extends GenServiceMethods> = {
  [K in keyof S]?: MethodHandler<S[K]>;
};

/** A status to end a call with; throw it from a `unaryHandler` body or pass it to a callback. */
export class GrpcStatusError extends Error {
  readonly code: GrpcStatus;
  readonly details: string;

  constructor(code: GrpcStatus, details: string) {
    super(details);
    this.name = "GrpcStatusError";
    this.code = code;
    this.details = details;
  }
}

const decodeGuard: ServerInterceptor = (_method, call) => {
  const intercepting: ServerInterceptingCall = new ServerInterceptingCall(call, {
    start(next) {
      next({
        onReceiveMessage(message: unknown, nextMessage: (message: unknown) => void) {
          if (message instanceof RequestDecodeFailure) {
            // Ending the call also cancels the handler's stream (it sees 'cancelled').
            intercepting.sendStatus({ code: GrpcStatus.INTERNAL, details: message.details });
            return;
          }
          nextMessage(message);
        },
      });
    },
  });
  return intercepting;
};

const guardedServers = new WeakSet<Server>();

/** A grpc-js Server that reports undecodable requests by type; use it with `addService`. */
export function createGrpcServer(options: ServerOptions = {}): Server {
  const server = new Server({
    ...options,
    interceptors: [decodeGuard, ...(options.interceptors ?? [])],
  });
  guardedServers.add(server);
  return server;
}

/** Registers `implementation` for the generated `service` on a server from createGrpcServer. */
export function addService<S extends GenServiceMethods>(
  server: Server,
  service: GenService<S>,
  implementation: ServiceImplementation<S>,
): void {
  if (!guardedServers.has(server)) {
    // Without the interceptor a handler could be given a RequestDecodeFailure as its request.
    throw new AmbientError(
      "ERR_GRPC_SERVER",
      `cannot add ${service.typeName}: the server was not made by createGrpcServer`,
    );
  }
  server.addService(
    grpcServiceDefinition(service, "mark"),
    implementation as UntypedServiceImplementation,
  );
}

/** The status for a failure thrown inside a handler body. */
export function statusFromError(err: unknown): Partial<StatusObject> {
  if (err instanceof GrpcStatusError) return { code: err.code, details: err.details };
  const message = err instanceof Error ? err.message : String(err);
  return { code: GrpcStatus.UNKNOWN, details: message };
}

/**
 * Adapts an async function to a grpc-js unary handler: its result is the response, a thrown
 * GrpcStatusError becomes that status, anything else UNKNOWN with the error's message. A
 * rejected promise can never escape as an unhandled rejection.
 */
export function unaryHandler<Req, Res>(
  body: (call: ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    let result: Promise<Res>;
    try {
      result = Promise.resolve(body(call));
    } catch (err) {
      callback(statusFromError(err));
      return;
    }
    result.then(
      (response) => callback(null, response),
      (err: unknown) => callback(statusFromError(err)),
    );
  };
}
