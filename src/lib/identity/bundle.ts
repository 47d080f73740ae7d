/**
 * A workload's certificate material — what ztunnel presents for one identity — and checks on it:
 * validity state with operator-readable messages, and chain verification against trusted roots.
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { fail, ok, type Result } from "../errors.ts";
import { keyMatches } from "./keys.ts";
import { splitPemCertificates } from "./pem.ts";
import {
  formatIdentity,
  identitiesEqual,
  identitiesFromCertificate,
  type Identity,
} from "./spiffe.ts";

/** A private key with its certificate chain and the roots to verify peers with. */
export interface CertificateMaterial {
  /** PKCS#8 PEM. */
  readonly privateKeyPem: string;
  /** One PEM certificate per element, leaf first; the last is normally the root. */
  readonly chainPem: readonly string[];
  /** Every trusted root (several during root rotation). */
  readonly rootsPem: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** The certificate material of one workload identity. */
export interface WorkloadCertificate extends CertificateMaterial {
  readonly identity: Identity;
}

/**
 * Options for `tls.createSecureContext` / `tls.connect`: the key, the chain to present (leaf and
 * intermediates; a trailing root the peer already trusts is left out) and the roots as `ca`.
 */
export function tlsCredentials(material: CertificateMaterial): {
  key: string;
  cert: string;
  ca: string[];
} {
  const chain = [...material.chainPem];
  const last = chain[chain.length - 1];
  if (chain.length > 1 && last !== undefined && material.rootsPem.includes(last)) chain.pop();
  return { key: material.privateKeyPem, cert: chain.join(""), ca: [...material.rootsPem] };
}

export type ValidityState = "valid" | "expired" | "not-yet-valid";

export interface Validity {
  readonly state: ValidityState;
  /** "valid for another 11h 59m", "expired 3m 12s ago (at 2026-...)", "not valid for another 2m". */
  readonly message: string;
}

/** Where `now` falls in [notBefore, notAfter]. Both ends are inclusive, as in X.509. */
export function validityAt(
  cert: { readonly notBefore: Date; readonly notAfter: Date },
  now: number = Date.now(),
): Validity {
  const nb = cert.notBefore.getTime();
  const na = cert.notAfter.getTime();
  if (now < nb) {
    return {
      state: "not-yet-valid",
      message: `not valid yet: becomes valid in ${formatDuration(nb - now)} (at ${cert.notBefore.toISOString()}); check the clocks of this machine and the CA`,
    };
  }
  if (now > na) {
    return {
      state: "expired",
      message: `expired ${formatDuration(now - na)} ago (at ${cert.notAfter.toISOString()})`,
    };
  }
  return {
    state: "valid",
    message: `valid for another ${formatDuration(na - now)} (until ${cert.notAfter.toISOString()})`,
  };
}

/** "1d 2h", "3h 4m", "5m 6s", "7s", "250ms": the two largest non-zero units, for messages. */
export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(abs)}ms`;
  const total = Math.floor(abs / 1000);
  const units: [number, string][] = [
    [Math.floor(total / 86_400), "d"],
    [Math.floor(total / 3600) % 24, "h"],
    [Math.floor(total / 60) % 60, "m"],
    [total % 60, "s"],
  ];
  const first = units.findIndex(([n]) => n > 0);
  const picked = units.slice(first, first + 2).filter(([n]) => n > 0);
  return picked.map(([n, u]) => `${n}${u}`).join(" ");
}

export interface VerifiedChain {
  /** SPIFFE identities in the leaf's URI SANs. */
  readonly identities: readonly Identity[];
  /** PEM of the trusted root the chain ends at. */
  readonly rootPem: string;
}

/**
 * Verifies a chain (leaf first) against trusted roots the way a TLS peer would: each certificate
 * is signed by the next, issuers are CAs, every certificate is within its validity period at
 * `now`, and the chain ends at (or is issued by) a trusted root. Returns why when it does not.
 * For tests and diagnostics; the data path lets OpenSSL do this during the handshake.
 */
export function verifyChain(
  chainPem: readonly string[] | string,
  rootsPem: readonly string[] | string,
  options: { now?: number } = {},
): Result<VerifiedChain> {
  const now = options.now ?? Date.now();
  const chain = parseAll(typeof chainPem === "string" ? [chainPem] : chainPem);
  const roots = parseAll(typeof rootsPem === "string" ? [rootsPem] : rootsPem);
  if (!chain.ok) return fail(`chain: ${chain.reason}`);
  if (!roots.ok) return fail(`roots: ${roots.reason}`);
  if (chain.value.length === 0) return fail("the chain is empty");
  if (roots.value.length === 0) return fail("no trusted roots were given");

  const isRoot = (c: X509Certificate) => roots.value.find((r) => r.raw.equals(c.raw));
  for (let i = 0; i < chain.value.length; i++) {
    const cert = chain.value[i]!;
    const what = i === 0 ? "the leaf" : `chain certificate ${i + 1} (${subjectOf(cert)})`;
    const v = validityAt({ notBefore: cert.validFromDate, notAfter: cert.validToDate }, now);
    if (v.state !== "valid") return fail(`${what} is ${v.message}`);
    const trusted = i > 0 ? isRoot(cert) : undefined;
    if (trusted !== undefined) return ok(result(chain.value[0]!, trusted));
    const next = chain.value[i + 1];
    if (next !== undefined) {
      const problem = issuedBy(cert, next);
      if (problem !== undefined) return fail(`${what}: ${problem}`);
      continue;
    }
    // The end of the presented chain: a root must have issued it.
    for (const root of roots.value) {
      if (issuedBy(cert, root) !== undefined) continue;
      const rv = validityAt({ notBefore: root.validFromDate, notAfter: root.validToDate }, now);
      if (rv.state !== "valid") return fail(`the root ${subjectOf(root)} is ${rv.message}`);
      return ok(result(chain.value[0]!, root));
    }
    if (cert.checkIssued(cert)) {
      return fail(
        `${what} is a root that is not among the trusted roots (wrong trust anchor or PKI)`,
      );
    }
    return fail(`${what} (issuer "${dnText(cert.issuer)}") is not issued by any trusted root`);
  }
  return fail("the chain does not end at a trusted root");
}

/** Why `issuer` did not issue `cert`, or undefined when it did. */
export function issuedBy(cert: X509Certificate, issuer: X509Certificate): string | undefined {
  if (!cert.checkIssued(issuer)) {
    return `not issued by ${subjectOf(issuer)} (issuer name, key identifier or key usage do not match)`;
  }
  if (!issuer.ca) return `its issuer ${subjectOf(issuer)} is not a CA certificate`;
  if (!cert.verify(issuer.publicKey))
    return `its signature does not verify with ${subjectOf(issuer)}'s key`;
  return undefined;
}

/**
 * Builds a `WorkloadCertificate` from what the CA returned, checking what ztunnel checks: the leaf
 * carries the requested identity, the private key matches the leaf, the chain is non-empty.
 */
export function workloadCertificateFromChain(input: {
  identity: Identity;
  privateKeyPem: string;
  chainPem: readonly string[];
  rootsPem: readonly string[];
}): Result<WorkloadCertificate> {
  const chainPem = input.chainPem.flatMap((p) => splitPemCertificates(p));
  const leafPem = chainPem[0];
  if (leafPem === undefined) return fail("the CA returned an empty certificate chain");
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(leafPem);
  } catch (err) {
    return fail(
      `the leaf certificate cannot be parsed: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const ids = identitiesFromCertificate(leaf);
  if (!ids.some((id) => identitiesEqual(id, input.identity))) {
    const got = ids.length === 0 ? "no SPIFFE identity" : ids.map(formatIdentity).join(", ");
    return fail(
      `the leaf certificate is for ${got}, but ${formatIdentity(input.identity)} was requested`,
    );
  }
  let keyOk: boolean;
  try {
    keyOk = keyMatches(createPrivateKey(input.privateKeyPem), leaf.publicKey);
  } catch (err) {
    return fail(
      `the private key cannot be read: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (!keyOk) return fail("the private key does not match the leaf certificate's public key");
  return ok({
    identity: input.identity,
    privateKeyPem: input.privateKeyPem,
    chainPem,
    rootsPem: input.rootsPem.flatMap((p) => splitPemCertificates(p)),
    notBefore: leaf.validFromDate,
    notAfter: leaf.validToDate,
  });
}

function result(leaf: X509Certificate, root: X509Certificate): VerifiedChain {
  return { identities: identitiesFromCertificate(leaf), rootPem: root.toString() };
}

function parseAll(pems: readonly string[]): Result<X509Certificate[]> {
  const out: X509Certificate[] = [];
  for (const p of pems) {
    for (const one of splitPemCertificates(p)) {
      try {
        out.push(new X509Certificate(one));
      } catch (err) {
        return fail(
          `a certificate cannot be parsed: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
  }
  return ok(out);
}

/** Node prints distinguished names one attribute per line; messages want one line. */
export function dnText(dn: string | undefined): string {
  return (dn ?? "").replace(/\n/g, ", ");
}

/** A short name for a certificate in messages. */
export function subjectOf(cert: X509Certificate): string {
  const subject = dnText(cert.subject);
  if (subject !== "") return `"${subject}"`;
  const uris = cert.subjectAltName ?? "";
  return uris !== "" ? `[${uris}]` : `serial ${cert.serialNumber}`;
}
