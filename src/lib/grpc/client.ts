/**
 * Typed grpc-js clients for protobuf-es services. Requests may be messages or plain init objects
 * (`{ csr, validityDuration: 86400n }`); responses arrive as decoded messages. A response that
 * does not decode fails the call with INTERNAL and details naming the message type.
 */
import { Metadata, makeGenericClientConstructor } from "@grpc/grpc-js";
import type {
  CallOptions,
  ChannelCredentials,
  Client,
  ClientDuplexStream,
  ClientOptions,
  ClientReadableStream,
  ClientUnaryCall,
  ClientWritableStream,
  ServiceClientConstructor,
  requestCallback,
} from "@grpc/grpc-js";
import type { DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { AmbientError } from "../errors.ts";
import { grpcServiceDefinition } from "./service-definition.ts";

type Req<M extends GenServiceMethods[string]> = MessageInitShape<M["input"]>;
type Res<M extends GenServiceMethods[string]> = MessageShape<M["output"]>;

export interface UnaryMethod<In, Out> {
  (request: In, callback: requestCallback<Out>): ClientUnaryCall;
  (request: In, metadata: Metadata, callback: requestCallback<Out>): ClientUnaryCall;
  (
    request: In,
    metadata: Metadata,
    options: Partial<CallOptions>,
    callback: requestCallback<Out>,
  ): ClientUnaryCall;
}

export interface ServerStreamingMethod<In, Out> {
  (request: In, metadata?: Metadata, options?: Partial<CallOptions>): ClientReadableStream<Out>;
}

export interface ClientStreamingMethod<In, Out> {
  (callback: requestCallback<Out>): ClientWritableStream<In>;
  (metadata: Metadata, callback: requestCallback<Out>): ClientWritableStream<In>;
  (
    metadata: Metadata,
    options: Partial<CallOptions>,
    callback: requestCallback<Out>,
  ): ClientWritableStream<In>;
}

export interface BidiStreamingMethod<In, Out> {
  (metadata?: Metadata, options?: Partial<CallOptions>): ClientDuplexStream<In, Out>;
}

export type ClientMethod<M extends GenServiceMethods[string]> = M["methodKind"] extends "unary"
  ? UnaryMethod<Req<M>, Res<M>>
  : M["methodKind"] extends "server_streaming"
    ? ServerStreamingMethod<Req<M>, Res<M>>
    : M["methodKind"] extends "client_streaming"
      ? ClientStreamingMethod<Req<M>, Res<M>>
      : BidiStreamingMethod<Req<M>, Res<M>>;

/** A grpc-js Client with one method per RPC, named by the method's local (camelCase) name. */
export type GrpcClient<S extends GenServiceMethods> = Client & {
  [K in keyof S]: ClientMethod<S[K]>;
};

/** The client type for a generated service constant, e.g. `GrpcClientOf<typeof IstioCertificateService>`. */
export type GrpcClientOf<T> = T extends GenService<infer S> ? GrpcClient<S> : never;

const constructors = new WeakMap<DescService, ServiceClientConstructor>();

/**
 * A client for `service` at `target` (grpc-js syntax, e.g. `127.0.0.1:15012` or
 * `dns:///istiod.istio-system.svc:15012`). Close it with `client.close()`.
 */
export function createGrpcClient<S extends GenServiceMethods>(
  service: GenService<S>,
  target: string,
  credentials: ChannelCredentials,
  options?: ClientOptions,
): GrpcClient<S> {
  let ctor = constructors.get(service);
  if (ctor === undefined) {
    ctor = makeGenericClientConstructor(grpcServiceDefinition(service), service.typeName);
    constructors.set(service, ctor);
  }
  return new ctor(target, credentials, options) as unknown as GrpcClient<S>;
}

/** Local names of the unary methods of a service. */
export type UnaryMethodName<S extends GenServiceMethods> = {
  [K in keyof S]: S[K]["methodKind"] extends "unary" ? K : never;
}[keyof S] &
  string;

export interface UnaryCallOptions {
  metadata?: Metadata;
  /** Absolute deadline (Date or epoch ms), as grpc-js takes it. */
  deadline?: Date | number;
}

/** Calls a unary method and resolves with the response; rejects with the grpc-js ServiceError. */
export function unaryCall<S extends GenServiceMethods, K extends UnaryMethodName<S>>(
  client: GrpcClient<S>,
  method: K,
  request: Req<S[K]>,
  options: UnaryCallOptions = {},
): Promise<Res<S[K]>> {
  const fn = client[method] as unknown as UnaryMethod<Req<S[K]>, Res<S[K]>>;
  const metadata = options.metadata ?? new Metadata();
  const callOptions: Partial<CallOptions> =
    options.deadline === undefined ? {} : { deadline: options.deadline };
  return new Promise((resolve, reject) => {
    fn.call(client, request, metadata, callOptions, (err, response) => {
      if (err !== null) reject(err);
      else if (response === undefined)
        reject(
          new AmbientError("ERR_GRPC_NO_RESPONSE", `${method}: call ended without a response`),
        );
      else resolve(response);
    });
  });
}
