/**
 * Turns a CA answer into a workload certificate the way ztunnel reads it: `cert_chain` is leaf
 * first; without a separate `root_cert` its last element holds the root(s) (possibly several
 * concatenated, during a root rotation), and everything between leaf and root is intermediates.
 * The leaf must carry the requested identity and match the key.
 */
import { AmbientError } from "../../lib/errors.ts";
import {
  formatIdentity,
  splitPemCertificates,
  workloadCertificateFromChain,
  type Identity,
  type WorkloadCertificate,
} from "../../lib/identity/index.ts";

export function certificateFromCaResponse(input: {
  readonly identity: Identity;
  readonly privateKeyPem: string;
  /** `IstioCertificateResponse.cert_chain`. */
  readonly certChain: readonly string[];
  /** `IstioCertificateResponse.root_cert.ca_cert`, when the CA sends roots separately. */
  readonly rootCerts?: readonly string[];
}): WorkloadCertificate {
  const id = formatIdentity(input.identity);
  const chain = input.certChain.filter((c) => c.trim() !== "");
  let certs: readonly string[];
  let roots: string[];
  if (input.rootCerts !== undefined && input.rootCerts.length > 0) {
    certs = chain;
    roots = input.rootCerts.flatMap((r) => splitPemCertificates(r));
  } else {
    if (chain.length === 0) {
      throw new AmbientError("ZTUNNEL_CA_BAD_RESPONSE", `the CA returned no certificate for ${id}`);
    }
    if (chain.length === 1) {
      throw new AmbientError(
        "ZTUNNEL_CA_BAD_RESPONSE",
        `the CA returned only a leaf for ${id}, no root certificate to verify peers with`,
      );
    }
    certs = chain.slice(0, -1);
    roots = splitPemCertificates(chain[chain.length - 1]!);
  }
  if (roots.length === 0) {
    throw new AmbientError(
      "ZTUNNEL_CA_BAD_RESPONSE",
      `the CA's root for ${id} holds no PEM certificate`,
    );
  }
  const r = workloadCertificateFromChain({
    identity: input.identity,
    privateKeyPem: input.privateKeyPem,
    chainPem: certs,
    rootsPem: roots,
  });
  if (!r.ok) {
    throw new AmbientError(
      "ZTUNNEL_CA_BAD_RESPONSE",
      `the CA's answer for ${id} is unusable: ${r.reason}`,
    );
  }
  return r.value;
}
