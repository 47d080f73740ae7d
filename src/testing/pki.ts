/**
 * A test PKI for tests across the project: a CA whose root is created once per process and trust
 * domain, and helpers that issue workload certificates — valid, expired, not yet valid, without a
 * SPIFFE SAN — plus a second, untrusted PKI for "wrong root" tests.
 *
 *   const pki = await createTestPki();
 *   const cert = await pki.issue("spiffe://cluster.local/ns/default/sa/client");
 *   tls.connect({ ...tlsCredentials(cert), ... });
 */
import { X509Certificate } from "node:crypto";
import { AmbientError } from "../lib/errors.ts";
import {
  CertificateAuthority,
  DEFAULT_TRUST_DOMAIN,
  formatIdentity,
  generateKey,
  toIdentity,
  type CertificateMaterial,
  type Identity,
  type WorkloadCertificate,
} from "../lib/identity/index.ts";

export interface TestIssueOptions {
  /** Default: now minus 2 minutes, like the CA. */
  readonly notBefore?: Date;
  /** Default: notBefore-independent now + ttlSeconds. */
  readonly notAfter?: Date;
  /** Lifetime from now when notAfter is not given. Default 24 h. */
  readonly ttlSeconds?: number;
}

export interface TestSanOptions extends TestIssueOptions {
  /** URI SANs as given (need not be SPIFFE ids). */
  readonly uris?: readonly string[];
  readonly dnsNames?: readonly string[];
}

export interface TestPki {
  readonly trustDomain: string;
  readonly ca: CertificateAuthority;
  /** The root every certificate of this PKI chains to. */
  readonly rootPem: string;
  /** A certificate for an identity (object or `spiffe://...` string). */
  issue(identity: Identity | string, options?: TestIssueOptions): Promise<WorkloadCertificate>;
  /** A certificate that expired `agoSeconds` (default 1 hour) ago. */
  issueExpired(identity: Identity | string, agoSeconds?: number): Promise<WorkloadCertificate>;
  /** A certificate that becomes valid in `inSeconds` (default 1 hour). */
  issueNotYetValid(identity: Identity | string, inSeconds?: number): Promise<WorkloadCertificate>;
  /** A certificate with exactly these SANs: e.g. only a DNS name, or a non-SPIFFE URI. */
  issueWithSans(options: TestSanOptions): Promise<CertificateMaterial>;
  /** A certificate with no SPIFFE SAN (only the DNS name `no-identity.test`). */
  issueWithoutIdentity(options?: TestIssueOptions): Promise<CertificateMaterial>;
}

const authorities = new Map<string, Promise<CertificateAuthority>>();

/**
 * The process-wide test PKI for a trust domain (default `cluster.local`). The root is created on
 * first use and shared, so certificates from separate calls trust each other.
 */
export function createTestPki(options: { trustDomain?: string } = {}): Promise<TestPki> {
  return pkiFor(options.trustDomain ?? DEFAULT_TRUST_DOMAIN, "trusted");
}

/**
 * A PKI with a different root, for tests where the peer must be rejected: its certificates do
 * not verify against `createTestPki()`'s root (nor the other way round). Shared per process too.
 */
export function createUntrustedPki(options: { trustDomain?: string } = {}): Promise<TestPki> {
  return pkiFor(options.trustDomain ?? DEFAULT_TRUST_DOMAIN, "untrusted");
}

/** A brand-new PKI (new root) every call, for tests that need a root nobody else uses. */
export function createFreshPki(options: { trustDomain?: string } = {}): Promise<TestPki> {
  return wrap(
    options.trustDomain ?? DEFAULT_TRUST_DOMAIN,
    CertificateAuthority.create({
      ...caOptions(options.trustDomain),
      rootCommonName: "Ambient fresh test root",
    }),
  );
}

function pkiFor(trustDomain: string, flavour: "trusted" | "untrusted"): Promise<TestPki> {
  const key = `${flavour}/${trustDomain}`;
  let ca = authorities.get(key);
  if (ca === undefined) {
    ca = CertificateAuthority.create({
      ...caOptions(trustDomain),
      rootCommonName: flavour === "trusted" ? "Ambient test root" : "Ambient UNTRUSTED test root",
    });
    authorities.set(key, ca);
    // A failed creation must not poison later calls.
    ca.catch(() => authorities.delete(key));
  }
  return wrap(trustDomain, ca);
}

function caOptions(trustDomain: string | undefined) {
  return {
    ...(trustDomain !== undefined ? { trustDomain } : {}),
    // Test certificates may ask for long or odd lifetimes; don't cap them.
    maxTtlSeconds: 100 * 365 * 24 * 3600,
  };
}

async function wrap(
  trustDomain: string,
  caPromise: Promise<CertificateAuthority>,
): Promise<TestPki> {
  const ca = await caPromise;
  const rootPem = ca.rootPem;

  const material = async (options: TestSanOptions): Promise<CertificateMaterial> => {
    const now = Date.now();
    const notBefore = options.notBefore ?? new Date(now - 120_000);
    const notAfter = options.notAfter ?? new Date(now + (options.ttlSeconds ?? 24 * 3600) * 1000);
    const { privateKeyPem, publicKeyPem } = await generateKey("ecdsa-p256");
    const chainPem = await ca.issue({
      publicKeyPem,
      uris: options.uris ?? [],
      dnsNames: options.dnsNames ?? [],
      notBefore,
      notAfter,
    });
    // Report the dates as encoded (X.509 keeps whole seconds).
    const leaf = new X509Certificate(chainPem[0]!);
    return {
      privateKeyPem,
      chainPem,
      rootsPem: ca.roots(),
      notBefore: leaf.validFromDate,
      notAfter: leaf.validToDate,
    };
  };

  const issue = async (identity: Identity | string, options: TestIssueOptions = {}) => {
    const id = toIdentity(identity);
    if (!id.ok) throw new AmbientError("TEST_PKI_BAD_IDENTITY", id.reason);
    const m = await material({ ...options, uris: [formatIdentity(id.value)] });
    return { identity: id.value, ...m };
  };

  return {
    trustDomain,
    ca,
    rootPem,
    issue,
    issueExpired: (identity, agoSeconds = 3600) => {
      const end = Date.now() - agoSeconds * 1000;
      return issue(identity, {
        notBefore: new Date(end - 24 * 3600 * 1000),
        notAfter: new Date(end),
      });
    },
    issueNotYetValid: (identity, inSeconds = 3600) => {
      const start = Date.now() + inSeconds * 1000;
      return issue(identity, {
        notBefore: new Date(start),
        notAfter: new Date(start + 24 * 3600 * 1000),
      });
    },
    issueWithSans: material,
    issueWithoutIdentity: (options = {}) =>
      material({ ...options, dnsNames: ["no-identity.test"] }),
  };
}
