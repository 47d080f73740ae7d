/**
 * Workload identity: SPIFFE ids, keys, CSRs, the CA, certificate bundles and rotation.
 */
export {
  DEFAULT_TRUST_DOMAIN,
  SPIFFE_SCHEME,
  checkTrustDomain,
  formatIdentity,
  identitiesEqual,
  identitiesFromCertificate,
  identitiesFromSubjectAltName,
  identityKey,
  makeIdentity,
  parseIdentity,
  parseSubjectAltNameString,
  toIdentity,
  uriSansFromCertificate,
  type Identity,
} from "./spiffe.ts";
export {
  MIN_RSA_BITS,
  checkCertifiableKey,
  describePublicKey,
  generateKey,
  keyMatches,
  loadPrivateKey,
  signingKeyFrom,
  type GeneratedKey,
  type KeyAlgorithm,
  type SigningKey,
} from "./keys.ts";
export { createCsr, parseCsr, type CsrWithKey, type ParsedCsr } from "./csr.ts";
export {
  CA_FILES,
  CLOCK_SKEW_GRACE_SECONDS,
  CertificateAuthority,
  DEFAULT_MAX_WORKLOAD_TTL_SECONDS,
  DEFAULT_ROOT_TTL_SECONDS,
  DEFAULT_WORKLOAD_TTL_SECONDS,
  type CertificateAuthorityKind,
  type CertificateAuthorityOptions,
  type IssueRequest,
  type SignOptions,
} from "./ca.ts";
export {
  formatDuration,
  issuedBy,
  subjectOf,
  tlsCredentials,
  validityAt,
  verifyChain,
  workloadCertificateFromChain,
  type CertificateMaterial,
  type Validity,
  type ValidityState,
  type VerifiedChain,
  type WorkloadCertificate,
} from "./bundle.ts";
export { certificatePem, derToPem, pemToDer, splitPemCertificates } from "./pem.ts";
export {
  CertificateHolder,
  DEFAULT_INITIAL_BACKOFF_MS,
  DEFAULT_MAX_BACKOFF_MS,
  type CertificateHolderEvents,
  type CertificateHolderOptions,
  type FetchCertificate,
  type HolderState,
} from "./holder.ts";
