/**
 * Turns a protobuf-es service descriptor (the `GenService` constants in src/lib/gen) into a
 * @grpc/grpc-js `ServiceDefinition`, so every gRPC server and client in Ambient (xDS, CA) is
 * wired the same way: method path `/<package>.<Service>/<Method>`, binary protobuf on the wire,
 * streaming flags taken from the descriptor.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import { AmbientError } from "../errors.ts";
import { decodeFailureReason } from "../proto/index.ts";

/** The HTTP/2 path gRPC uses for a method, e.g. `/istio.v1.auth.IstioCertificateService/CreateCertificate`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/**
 * What a server received instead of a request it could not decode. grpc-js drops the reason
 * when a deserializer throws (the client only sees "Error deserializing request"), so the
 * server-side definition returns this marker and the server's interceptor (server.ts) answers
 * with a status that names the message type.
 */
export class RequestDecodeFailure {
  readonly details: string;

  constructor(details: string) {
    this.details = details;
    Object.freeze(this);
  }
}

/**
 * How an undecodable request is handled: `throw` leaves it to grpc-js (status INTERNAL, reason
 * hidden); `mark` hands a RequestDecodeFailure to the server's interceptor. Only servers made by
 * createGrpcServer can use `mark`.
 */
export type BadRequestMode = "throw" | "mark";

function serializer(schema: DescMessage): (value: unknown) => Buffer {
  return (value) => {
    // `create` returns a message of this type unchanged and builds one from a plain init object.
    const bytes = toBinary(schema, create(schema, value as never));
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(
  schema: DescMessage,
  path: string,
  mode: BadRequestMode,
): (buf: Buffer) => unknown {
  return (buf) => {
    try {
      return fromBinary(schema, buf);
    } catch (err) {
      const details = `${decodeFailureReason(schema, buf, err)} (in ${path})`;
      if (mode === "mark") return new RequestDecodeFailure(details);
      throw new AmbientError("ERR_GRPC_DECODE", details, { cause: err });
    }
  };
}

function methodDefinition(
  method: DescMethod,
  mode: BadRequestMode,
): MethodDefinition<unknown, unknown> {
  const path = methodPath(method);
  return {
    path,
    originalName: method.name,
    requestStream:
      method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream:
      method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: serializer(method.input),
    requestDeserialize: deserializer(method.input, path, mode),
    responseSerialize: serializer(method.output),
    // A response that does not decode always throws: grpc-js then fails the call with
    // INTERNAL "Response message parsing error: cannot decode <type> ...".
    responseDeserialize: deserializer(method.output, path, "throw"),
  };
}

const cache = {
  throw: new WeakMap<DescService, ServiceDefinition>(),
  mark: new WeakMap<DescService, ServiceDefinition>(),
};

/**
 * The grpc-js definition of `service`, keyed by each method's local (camelCase) name, e.g.
 * `createCertificate`, `deltaAggregatedResources`. Definitions are cached per descriptor.
 */
export function grpcServiceDefinition(
  service: DescService,
  mode: BadRequestMode = "throw",
): ServiceDefinition {
  const cached = cache[mode].get(service);
  if (cached !== undefined) return cached;
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.localName] = methodDefinition(method, mode);
  }
  cache[mode].set(service, definition);
  return definition;
}
