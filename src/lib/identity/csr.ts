/**
 * Certificate signing requests in ztunnel's shape: a fresh ECDSA P-256 key, an empty subject, and
 * one extension request — a critical subjectAltName holding only the identity's URI. (ztunnel's
 * `CsrOptions::generate` does exactly this; the SAN is critical because RFC 5280 requires that when
 * the subject is empty. istiod ignores the CSR's subject and SANs anyway and uses the identity it
 * authenticated, so nothing else is worth sending.)
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { AmbientError, fail, ok, type Result } from "../errors.ts";
import { describePublicKey, generateKey, loadPrivateKey } from "./keys.ts";
import { formatIdentity, toIdentity, type Identity } from "./spiffe.ts";
import { x509 } from "./x509.ts";

export interface CsrWithKey {
  /** PEM `CERTIFICATE REQUEST`. */
  readonly csrPem: string;
  /** PKCS#8 PEM of the key the CSR was signed with; stays with the workload. */
  readonly privateKeyPem: string;
}

const SAN_OID = "2.5.29.17";

/**
 * Creates a CSR for `identity`. A new P-256 key is generated unless `privateKeyPem` is given.
 * Throws `IDENTITY_BAD_IDENTITY` for an invalid identity string.
 */
export async function createCsr(
  identity: Identity | string,
  options: { privateKeyPem?: string } = {},
): Promise<CsrWithKey> {
  const id = toIdentity(identity);
  if (!id.ok) throw new AmbientError("IDENTITY_BAD_IDENTITY", id.reason);
  const privateKeyPem = options.privateKeyPem ?? (await generateKey("ecdsa-p256")).privateKeyPem;
  const key = loadPrivateKey(privateKeyPem, "the CSR key");
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: key.cryptoKeys,
    signingAlgorithm: key.signingAlgorithm,
    extensions: [
      new x509.SubjectAlternativeNameExtension(
        [{ type: "url", value: formatIdentity(id.value) }],
        true,
      ),
    ],
  });
  return { csrPem: csr.toString("pem") + "\n", privateKeyPem };
}

export interface ParsedCsr {
  /** URI SANs requested (ztunnel sends exactly one, the SPIFFE id). */
  readonly uriSans: readonly string[];
  /** Any other requested SANs as `type:value` (dns, ip, email, ...), for logging and policy. */
  readonly otherSans: readonly string[];
  /** The subject DN as text; "" when empty (ztunnel's CSRs). */
  readonly subject: string;
  /** The public key to certify; its signature over the CSR has been verified. */
  readonly publicKey: KeyObject;
  /** "ECDSA P-256", "RSA 2048", ... */
  readonly keyDescription: string;
}

/**
 * Parses a PEM CSR and verifies its self-signature (proof the requester holds the key). Bad input
 * is an expected outcome (it comes from the network), so it is a `Result`, never a throw.
 */
export async function parseCsr(csrPem: string): Promise<Result<ParsedCsr>> {
  if (!csrPem.includes("-----BEGIN CERTIFICATE REQUEST-----")) {
    return fail('the CSR is not PEM: expected a "-----BEGIN CERTIFICATE REQUEST-----" block');
  }
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem.trim());
  } catch (err) {
    return fail(`the CSR cannot be decoded: ${message(err)}`);
  }
  let valid: boolean;
  try {
    valid = await csr.verify();
  } catch (err) {
    return fail(`the CSR signature cannot be checked: ${message(err)}`);
  }
  if (!valid) return fail("the CSR signature does not verify with its own public key");

  const uriSans: string[] = [];
  const otherSans: string[] = [];
  try {
    for (const ext of csr.extensions) {
      if (ext.type !== SAN_OID) continue;
      const san = new x509.SubjectAlternativeNameExtension(ext.rawData);
      for (const name of san.names.items) {
        if (name.type === "url") uriSans.push(name.value);
        else otherSans.push(`${name.type}:${name.value}`);
      }
    }
  } catch (err) {
    return fail(`the CSR's subjectAltName cannot be decoded: ${message(err)}`);
  }

  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({
      key: Buffer.from(csr.publicKey.rawData),
      format: "der",
      type: "spki",
    });
  } catch (err) {
    return fail(`the CSR's public key cannot be read: ${message(err)}`);
  }
  return ok({
    uriSans,
    otherSans,
    subject: csr.subject,
    publicKey,
    keyDescription: describePublicKey(publicKey),
  });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
