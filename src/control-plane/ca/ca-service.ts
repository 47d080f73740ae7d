/**
 * `istio.v1.auth.IstioCertificateService/CreateCertificate` (INTEROP §4) on the xDS port: the
 * caller is authenticated, the identity it is entitled to decided (`entitledIdentity`), the CSR
 * signed for that identity with the requested lifetime capped by config, and the chain returned
 * leaf first, root last, one PEM per element.
 */
import { status as GrpcStatus } from "@grpc/grpc-js";
import type { Metadata, Server } from "@grpc/grpc-js";
import { AmbientError } from "../../lib/errors.ts";
import { IstioCertificateService } from "../../lib/gen/istio/v1/auth/ca_pb.ts";
import type { IstioCertificateRequest } from "../../lib/gen/istio/v1/auth/ca_pb.ts";
import { GrpcStatusError, addService, unaryHandler } from "../../lib/grpc/index.ts";
import { formatIdentity, type CertificateAuthority } from "../../lib/identity/index.ts";
import type { Logger } from "../../lib/log/index.ts";
import { describeCaller, type Authenticator } from "../auth/caller.ts";
import { entitledIdentity } from "./entitlement.ts";

export interface CaServiceObserver {
  signed?(event: { identity: string; ttlSeconds: number; impersonated: boolean }): void;
  refused?(event: { reason: "unauthenticated" | "not-entitled" | "bad-request" }): void;
}

export interface CaServiceOptions {
  readonly ca: CertificateAuthority;
  readonly authenticator: Authenticator;
  readonly trustDomain: string;
  readonly trustedNodeAccounts: readonly string[];
  readonly hasAccountOnNode: (node: string, namespace: string, serviceAccount: string) => boolean;
  readonly logger: Logger;
  readonly observer?: CaServiceObserver;
}

const IMPERSONATED = "ImpersonatedIdentity";

/** The CreateCertificate logic, apart from gRPC wiring (tests call it directly too). */
export async function createCertificate(
  options: CaServiceOptions,
  request: IstioCertificateRequest,
  metadata: Metadata,
  peer: string,
): Promise<string[]> {
  const log = options.logger;
  const refuse = (
    reason: "unauthenticated" | "not-entitled" | "bad-request",
    code: GrpcStatus,
    message: string,
  ): never => {
    options.observer?.refused?.({ reason });
    throw new GrpcStatusError(code, message);
  };
  const auth = await options.authenticator.authenticate(metadata, peer);
  if (!auth.ok) {
    log.warn("certificate request refused", { peer, reason: auth.reason });
    return refuse(
      "unauthenticated",
      GrpcStatus.UNAUTHENTICATED,
      `authentication failed: ${auth.reason}`,
    );
  }
  const caller = auth.value;
  const imp = request.metadata?.[IMPERSONATED];
  if (imp !== undefined && typeof imp !== "string") {
    return refuse(
      "bad-request",
      GrpcStatus.INVALID_ARGUMENT,
      `${IMPERSONATED} must be a string (a SPIFFE id)`,
    );
  }
  const decided = entitledIdentity({
    caller,
    impersonated: imp,
    trustDomain: options.trustDomain,
    trustedNodeAccounts: options.trustedNodeAccounts,
    hasAccountOnNode: options.hasAccountOnNode,
  });
  if (!decided.ok) {
    log.warn("certificate request refused", {
      peer,
      caller: `${caller.namespace}/${caller.serviceAccount}`,
      node: caller.node ?? "",
      identity: imp ?? "",
      reason: decided.reason,
    });
    return refuse(
      "not-entitled",
      GrpcStatus.UNAUTHENTICATED,
      `${describeCaller(caller)} may not have a certificate for ${imp ?? "its own identity"}: ${decided.reason}`,
    );
  }
  const identity = formatIdentity(decided.value);
  const requested = Number(request.validityDuration);
  const ttlSeconds = options.ca.effectiveTtlSeconds(requested);
  let chain: string[];
  try {
    chain = await options.ca.sign(request.csr, { identity, ttlSeconds });
  } catch (err) {
    if (
      err instanceof AmbientError &&
      (err.code === "CA_BAD_CSR" || err.code === "CA_BAD_IDENTITY")
    ) {
      log.warn("certificate request refused", {
        peer,
        caller: describeCaller(caller),
        identity,
        reason: err.message,
      });
      return refuse(
        "bad-request",
        GrpcStatus.INVALID_ARGUMENT,
        `bad certificate request: ${err.message}`,
      );
    }
    throw err;
  }
  options.observer?.signed?.({
    identity,
    ttlSeconds,
    impersonated: imp !== undefined && imp !== "",
  });
  log.debug("certificate signed", { caller: describeCaller(caller), identity, ttlSeconds });
  // One PEM per element, each with its trailing newline (istiod splits multi-cert PEMs).
  return chain.map((pem) => (pem.endsWith("\n") ? pem : `${pem}\n`));
}

/** Adds the CA service to a server made by `createGrpcServer`. */
export function addCaService(server: Server, options: CaServiceOptions): void {
  addService(server, IstioCertificateService, {
    createCertificate: unaryHandler(async (call) => ({
      certChain: await createCertificate(options, call.request, call.metadata, call.getPeer()),
    })),
  });
}
