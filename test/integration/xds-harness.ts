/**
 * Shared by the xDS integration tests: an XdsServer on a real grpc-js server with TLS from the
 * test PKI on 127.0.0.1, and a raw Delta ADS stream (no XdsClient) to drive the server by hand.
 */
import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { Metadata, ServerCredentials, credentials } from "@grpc/grpc-js";
import type { Server, StatusObject } from "@grpc/grpc-js";
import { ok } from "../../src/lib/errors.ts";
import { AggregatedDiscoveryService } from "../../src/lib/gen/envoy/service/discovery/v3/discovery_pb.ts";
import type {
  DeltaDiscoveryRequest,
  DeltaDiscoveryRequestSchema,
  DeltaDiscoveryResponse,
} from "../../src/lib/gen/envoy/service/discovery/v3/discovery_pb.ts";
import { AddressSchema } from "../../src/lib/gen/istio/workload/workload_pb.ts";
import type { Address } from "../../src/lib/gen/istio/workload/workload_pb.ts";
import { createGrpcClient, createGrpcServer } from "../../src/lib/grpc/index.ts";
import type { GrpcClientOf } from "../../src/lib/grpc/index.ts";
import { LogOutput, MemorySink, parseLevelSpec } from "../../src/lib/log/index.ts";
import type { Logger } from "../../src/lib/log/index.ts";
import { ADDRESS_TYPE_URL, XdsServer } from "../../src/lib/xds/index.ts";
import type { ResourceInput, XdsServerOptions } from "../../src/lib/xds/index.ts";
import { createTestPki } from "../../src/testing/pki.ts";

/** The name in the control plane's certificate (it has no IP SAN for 127.0.0.1). */
export const SERVER_NAME = "istiod.istio-system.svc";

export interface TlsMaterial {
  readonly rootPem: string;
  readonly keyPem: string;
  readonly chainPem: string;
}

let material: Promise<TlsMaterial> | undefined;

/** A control-plane certificate with only the DNS SAN `istiod.istio-system.svc`. */
export function serverTls(): Promise<TlsMaterial> {
  material ??= (async () => {
    const pki = await createTestPki();
    const cert = await pki.issueWithSans({ dnsNames: [SERVER_NAME] });
    return {
      rootPem: pki.rootPem,
      keyPem: cert.privateKeyPem,
      chainPem: cert.chainPem.join(""),
    };
  })();
  return material;
}

export function memoryLogger(spec = "debug"): { logger: Logger; lines: string[] } {
  const sink = new MemorySink();
  const parsed = parseLevelSpec(spec);
  const out = new LogOutput({ sink, ...(parsed.ok ? { spec: parsed.value } : {}) });
  return { logger: out.logger("xds"), lines: sink.lines };
}

export interface RunningServer<C = unknown, M = unknown> {
  readonly xds: XdsServer<C, M>;
  readonly grpc: Server;
  readonly port: number;
  readonly tls: TlsMaterial;
  readonly lines: string[];
  stop(): void;
}

export function bind(server: Server, port: number, tls: TlsMaterial): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(
      `127.0.0.1:${port}`,
      ServerCredentials.createSsl(
        null,
        [{ private_key: Buffer.from(tls.keyPem), cert_chain: Buffer.from(tls.chainPem) }],
        false,
      ),
      (err, bound) => (err !== null ? reject(err) : resolve(bound)),
    );
  });
}

/**
 * An XdsServer serving Address (store-backed) on a TLS grpc-js server. Default authenticate
 * accepts everyone as caller "anonymous".
 */
export async function startServer<C = string, M = unknown>(
  options: Partial<XdsServerOptions<C>> & {
    port?: number;
    configure?: (xds: XdsServer<C, M>) => void;
  } = {},
): Promise<RunningServer<C, M>> {
  const tls = await serverTls();
  const { logger, lines } = memoryLogger();
  const xds = new XdsServer<C, M>({
    authenticate: () => Promise.resolve(ok("anonymous" as C)),
    debounceMs: 10,
    maxDelayMs: 50,
    logger,
    ...options,
  });
  if (options.configure !== undefined) options.configure(xds);
  else xds.registerType({ typeUrl: ADDRESS_TYPE_URL, schema: AddressSchema });
  const grpc = createGrpcServer();
  xds.attach(grpc);
  const port = await bind(grpc, options.port ?? 0, tls);
  return {
    xds,
    grpc,
    port,
    tls,
    lines,
    stop() {
      xds.close();
      grpc.forceShutdown();
    },
  };
}

/** A service Address resource `ns/<name>` with VIP aliases. */
export function service<M = unknown>(
  name: string,
  version: string,
  extra: Partial<ResourceInput<M>> = {},
): ResourceInput<M> {
  const address: Address = create(AddressSchema, {
    type: {
      case: "service",
      value: { name, namespace: "ns", hostname: `${name}.ns.svc.cluster.local` },
    },
  });
  return { name: `ns/${name}`, version, resource: anyPack(AddressSchema, address), ...extra };
}

/** A workload Address resource named by uid, with `/ip` aliases. */
export function workload<M = unknown>(
  uid: string,
  version: string,
  ip: string,
  extra: Partial<ResourceInput<M>> = {},
): ResourceInput<M> {
  const octets = ip.split(".").map(Number);
  const address: Address = create(AddressSchema, {
    type: {
      case: "workload",
      value: { uid, name: uid, namespace: "ns", addresses: [new Uint8Array(octets)] },
    },
  });
  return {
    name: uid,
    version,
    resource: anyPack(AddressSchema, address),
    aliases: [`/${ip}`],
    ...extra,
  };
}

export const NODE = {
  id: "ztunnel~198.18.0.2~ztunnel-a.istio-system~istio-system.svc.cluster.local",
  metadata: {
    NAME: "ztunnel-a",
    NAMESPACE: "istio-system",
    INSTANCE_IPS: "198.18.0.2",
    NODE_NAME: "node-a",
  },
};

type RequestInit = MessageInitShape<typeof DeltaDiscoveryRequestSchema>;

/**
 * A raw DeltaAggregatedResources stream: send requests, await responses one by one. Never
 * ACKs on its own.
 */
export class RawStream {
  readonly responses: DeltaDiscoveryResponse[] = [];
  readonly status: Promise<StatusObject>;
  readonly #client: GrpcClientOf<typeof AggregatedDiscoveryService>;
  readonly #call: ReturnType<
    GrpcClientOf<typeof AggregatedDiscoveryService>["deltaAggregatedResources"]
  >;
  #read = 0;
  #wake: (() => void) | undefined;

  constructor(port: number, tls: TlsMaterial, metadata?: Record<string, string>) {
    this.#client = createGrpcClient(
      AggregatedDiscoveryService,
      `127.0.0.1:${port}`,
      credentials.createSsl(Buffer.from(tls.rootPem)),
      { "grpc.ssl_target_name_override": SERVER_NAME },
    );
    const md = new Metadata();
    for (const [k, v] of Object.entries(metadata ?? {})) md.set(k, v);
    this.#call = this.#client.deltaAggregatedResources(md);
    this.#call.on("data", (res: DeltaDiscoveryResponse) => {
      this.responses.push(res);
      this.#wake?.();
    });
    this.#call.on("error", () => undefined);
    this.status = new Promise((resolve) => this.#call.on("status", resolve));
    void this.status.then(() => this.#wake?.());
  }

  send(request: RequestInit): void {
    this.#call.write(request);
  }

  /** The first request of a type: node + the given fields. */
  subscribe(request: Omit<RequestInit, "node" | "$typeName"> = {}): void {
    this.send({ typeUrl: ADDRESS_TYPE_URL, node: NODE, ...request });
  }

  /** The next response not read yet; fails after `timeoutMs`. */
  async next(timeoutMs = 5000): Promise<DeltaDiscoveryResponse> {
    const deadline = Date.now() + timeoutMs;
    while (this.#read >= this.responses.length) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    return this.responses[this.#read++]!;
  }

  /** Responses received but not read with next(). */
  get unread(): number {
    return this.responses.length - this.#read;
  }

  ack(res: DeltaDiscoveryResponse): void {
    this.send({ typeUrl: res.typeUrl, responseNonce: res.nonce });
  }

  nack(res: DeltaDiscoveryResponse, message: string): void {
    this.send({ typeUrl: res.typeUrl, responseNonce: res.nonce, errorDetail: { message } });
  }

  close(): void {
    this.#call.end();
    this.#client.close();
  }

  cancel(): void {
    this.#call.cancel();
    this.#client.close();
  }
}

/** name@version of a response's resources, sorted, and its removals. */
export function summary(res: DeltaDiscoveryResponse): { resources: string[]; removed: string[] } {
  return {
    resources: res.resources.map((r) => `${r.name}@${r.version}`).sort(),
    removed: [...res.removedResources].sort(),
  };
}

export type { DeltaDiscoveryRequest };
