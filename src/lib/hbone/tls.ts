/**
 * TLS pieces both HBONE ends share: building a secure context once per certificate (it costs
 * 2–3 ms, so never per connection), and reading and checking the peer's SPIFFE identity.
 */
import type { X509Certificate } from "node:crypto";
import { createSecureContext, type SecureContext, type SecureContextOptions } from "node:tls";
import {
  formatIdentity,
  identitiesFromCertificate,
  tlsCredentials,
  type CertificateMaterial,
  type Identity,
} from "../identity/index.ts";
import { tlsVersionOptions, type TlsPolicy } from "./settings.ts";

/** Secure-context options for a certificate under the HBONE TLS policy (both sides). */
export function secureContextOptions(
  cert: CertificateMaterial,
  policy: TlsPolicy = {},
): SecureContextOptions {
  return { ...tlsCredentials(cert), ...tlsVersionOptions(policy) };
}

/**
 * Caches values built from a certificate (a SecureContext, a TLS server) by the certificate
 * itself, so a rotated certificate gets a new one and an unchanged one reuses the old. The leaf
 * PEM names the certificate; providers may hand out fresh objects for the same certificate.
 * Bounded: the oldest entries go first (rotations leave old ones behind).
 */
export class PerCertificate<V, M extends CertificateMaterial = CertificateMaterial> {
  readonly #byObject = new WeakMap<M, V>();
  readonly #byLeaf = new Map<string, V>();
  readonly #max: number;
  readonly #build: (cert: M) => V;

  constructor(build: (cert: M) => V, opts: { max?: number } = {}) {
    this.#build = build;
    this.#max = opts.max ?? 256;
  }

  get(cert: M): V {
    const hit = this.#byObject.get(cert);
    if (hit !== undefined) return hit;
    const leaf = cert.chainPem[0] ?? "";
    let v = this.#byLeaf.get(leaf);
    if (v === undefined) {
      v = this.#build(cert);
      this.#byLeaf.set(leaf, v);
      if (this.#byLeaf.size > this.#max) {
        const oldest = this.#byLeaf.keys().next().value;
        if (oldest !== undefined) this.#byLeaf.delete(oldest);
      }
    }
    this.#byObject.set(cert, v);
    return v;
  }
}

/** One SecureContext per certificate, for TLS clients. */
export function secureContextCache(policy: TlsPolicy = {}): PerCertificate<SecureContext> {
  return new PerCertificate((cert) => createSecureContext(secureContextOptions(cert, policy)));
}

/** The SPIFFE identities of a peer certificate (URI SANs only); empty when there is none. */
export function peerIdentities(cert: X509Certificate | undefined): Identity[] {
  return cert === undefined ? [] : identitiesFromCertificate(cert);
}

export function describeIdentities(ids: readonly Identity[]): string {
  return ids.length === 0 ? "no SPIFFE identity" : ids.map(formatIdentity).join(", ");
}
