/**
 * ztunnel's CA client (istio/ztunnel `identity/caclient.rs`):
 * `istio.v1.auth.IstioCertificateService/CreateCertificate` over gRPC + TLS. Per request: a fresh
 * P-256 key and CSR for the identity, `validity_duration` = `SECRET_TTL`, and in shared mode the
 * metadata `ImpersonatedIdentity` = the identity (ztunnel asks on behalf of its pods). Call
 * metadata: `authorization: Bearer <token>` (the token re-read on every call, since projected
 * tokens rotate), `clusterid`, and `CA_HEADER_*`. The answer is checked: the leaf must carry
 * the requested identity.
 */
import { Metadata } from "@grpc/grpc-js";
import type { ChannelOptions } from "@grpc/grpc-js";
import { AmbientError } from "../../lib/errors.ts";
import { IstioCertificateService } from "../../lib/gen/istio/v1/auth/ca_pb.ts";
import { createGrpcClient, unaryCall, type GrpcClientOf } from "../../lib/grpc/index.ts";
import {
  createCsr,
  formatIdentity,
  type FetchCertificate,
  type Identity,
} from "../../lib/identity/index.ts";
import type { Logger } from "../../lib/log/index.ts";
import { channelCredentials, parseXdsAddress, type XdsTlsOptions } from "../../lib/xds/index.ts";
import { certificateFromCaResponse } from "./chain.ts";

export interface CaClientOptions {
  /** `https://host:port` (or `http://` for plaintext, tests only). */
  readonly address: string;
  /** TLS material, read before each call; the channel is rebuilt when it changes. */
  readonly tls: () => XdsTlsOptions | Promise<XdsTlsOptions>;
  /** Bearer token, read before each call; undefined sends none. */
  readonly token: () => string | undefined | Promise<string | undefined>;
  readonly clusterId: string;
  /** `CA_HEADER_*`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** `SECRET_TTL` in seconds. */
  readonly ttlSeconds: number;
  /** Shared mode: ask for each identity with `ImpersonatedIdentity`. */
  readonly impersonate: boolean;
  /** Per-call deadline. Default 30 s. */
  readonly deadlineMs?: number;
  readonly channelOptions?: ChannelOptions;
  readonly log?: Logger;
}

export interface CaClient {
  readonly fetch: FetchCertificate;
  /** Closes the channel (a later fetch opens a new one). */
  close(): void;
}

type Client = GrpcClientOf<typeof IstioCertificateService>;

export const DEFAULT_CA_DEADLINE_MS = 30_000;

export function createCaClient(options: CaClientOptions): CaClient {
  const target = parseXdsAddress(options.address);
  if (!target.ok) {
    throw new AmbientError(
      "ZTUNNEL_CA_ADDRESS",
      target.reason.replace("XDS_ADDRESS", "CA_ADDRESS"),
    );
  }
  let client: Client | undefined;
  let clientTls = "";

  const channel = async (): Promise<Client> => {
    const tls = await options.tls();
    const fingerprint = JSON.stringify([
      String(tls.rootCertsPem ?? ""),
      tls.altHostname ?? "",
      String(tls.certChainPem ?? ""),
    ]);
    if (client === undefined || fingerprint !== clientTls) {
      client?.close();
      const creds = channelCredentials(target.value, tls);
      client = createGrpcClient(IstioCertificateService, target.value.target, creds.credentials, {
        ...options.channelOptions,
        ...creds.options,
      });
      clientTls = fingerprint;
    }
    return client;
  };

  const fetch = async (
    identity: Identity,
  ): Promise<ReturnType<typeof certificateFromCaResponse>> => {
    const id = formatIdentity(identity);
    const { csrPem, privateKeyPem } = await createCsr(identity);
    let c: Client;
    let token: string | undefined;
    try {
      c = await channel();
      token = await options.token();
    } catch (err) {
      throw new AmbientError(
        "ZTUNNEL_CA_PREPARE",
        `cannot request a certificate for ${id}: ${message(err)} (check CA_ROOT_CA and AUTH_TOKEN)`,
        { cause: err },
      );
    }
    const md = new Metadata();
    if (token !== undefined && token !== "") md.set("authorization", `Bearer ${token}`);
    md.set("clusterid", options.clusterId);
    for (const [k, v] of Object.entries(options.headers ?? {})) md.set(k, v);
    let response;
    try {
      response = await unaryCall(
        c,
        "createCertificate",
        {
          csr: csrPem,
          validityDuration: BigInt(options.ttlSeconds),
          ...(options.impersonate ? { metadata: { ImpersonatedIdentity: id } } : {}),
        },
        { metadata: md, deadline: Date.now() + (options.deadlineMs ?? DEFAULT_CA_DEADLINE_MS) },
      );
    } catch (err) {
      throw new AmbientError(
        "ZTUNNEL_CA_REQUEST",
        `the CA at ${options.address} did not issue a certificate for ${id}: ${message(err)}`,
        { cause: err },
      );
    }
    const cert = certificateFromCaResponse({
      identity,
      privateKeyPem,
      certChain: response.certChain,
      ...(response.rootCert !== undefined ? { rootCerts: response.rootCert.caCert } : {}),
    });
    options.log?.debug("certificate issued by the CA", {
      identity: id,
      expires: cert.notAfter.toISOString(),
    });
    return cert;
  };

  return {
    fetch,
    close() {
      client?.close();
      client = undefined;
    },
  };
}

function message(err: unknown): string {
  if (typeof err === "object" && err !== null && "details" in err && "code" in err) {
    // grpc-js ServiceError: "14 UNAVAILABLE: ..." is the message; details alone reads better.
    const e = err as { code: number; details: string };
    return `gRPC status ${e.code}: ${e.details}`;
  }
  return err instanceof Error ? err.message : String(err);
}
