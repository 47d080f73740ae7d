/**
 * SPIFFE workload identities in Istio's shape: `spiffe://<trust-domain>/ns/<namespace>/sa/<sa>`.
 *
 * Parsing is strict, because an identity read from a peer certificate decides authorization:
 * - the scheme is exactly `spiffe://` (lower case; `SPIFFE://` is rejected);
 * - the trust domain is lower-case letters, digits, `.`, `-`, `_` (the SPIFFE spec's set; upper case
 *   is rejected rather than folded, so two spellings can never name one identity);
 * - exactly five `/`-separated parts: trust domain, literal `ns`, namespace, literal `sa`,
 *   service account (Istio's rule) — no trailing slash, no empty part;
 * - namespace and service account use the SPIFFE path-segment set: letters (either case, compared
 *   case-sensitively), digits, `.`, `-`, `_`, and are not `.` or `..`;
 * - no percent-encoding (the SPIFFE spec forbids it, and decoding would let `a%2Fb` smuggle a `/`),
 *   no query, fragment, user info or port;
 * - at most 2048 bytes in all and 255 for the trust domain (SPIFFE limits).
 */
import { X509Certificate } from "node:crypto";
import { fail, ok, type Result } from "../errors.ts";

export interface Identity {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

export const SPIFFE_SCHEME = "spiffe://";
export const DEFAULT_TRUST_DOMAIN = "cluster.local";

const MAX_ID_LENGTH = 2048;
const MAX_TRUST_DOMAIN_LENGTH = 255;
const trustDomainChars = /^[a-z0-9._-]+$/;
const segmentChars = /^[A-Za-z0-9._-]+$/;

/** Why a trust domain is not valid, or undefined when it is. */
export function checkTrustDomain(td: string): string | undefined {
  if (td === "") return "the trust domain is empty";
  if (td.length > MAX_TRUST_DOMAIN_LENGTH)
    return `the trust domain is ${td.length} characters long (at most ${MAX_TRUST_DOMAIN_LENGTH})`;
  if (!trustDomainChars.test(td)) {
    if (/[A-Z]/.test(td))
      return `the trust domain "${td}" has upper-case letters (must be lower case)`;
    if (td.includes("%")) return `the trust domain "${td}" is percent-encoded (not allowed)`;
    if (td.includes(":")) return `the trust domain "${td}" has a port or ":" (not allowed)`;
    if (td.includes("@")) return `the trust domain "${td}" has user info (not allowed)`;
    return `the trust domain "${td}" has characters other than a-z, 0-9, ".", "-", "_"`;
  }
  return undefined;
}

function checkSegment(what: string, value: string): string | undefined {
  if (value === "") return `the ${what} is empty`;
  if (value === "." || value === "..") return `the ${what} "${value}" is a dot segment`;
  if (!segmentChars.test(value)) {
    if (value.includes("%")) return `the ${what} "${value}" is percent-encoded (not allowed)`;
    return `the ${what} "${value}" has characters other than letters, digits, ".", "-", "_"`;
  }
  return undefined;
}

/** Parses `spiffe://td/ns/<ns>/sa/<sa>`; the reason says exactly what is wrong. */
export function parseIdentity(s: string): Result<Identity> {
  const bad = (why: string) => fail(`invalid SPIFFE identity "${clip(s)}": ${why}`);
  if (s.length > MAX_ID_LENGTH) return bad(`longer than ${MAX_ID_LENGTH} characters`);
  if (!s.startsWith(SPIFFE_SCHEME)) {
    if (s.toLowerCase().startsWith(SPIFFE_SCHEME))
      return bad(`the scheme must be lower-case "spiffe://"`);
    return bad(`it must start with "spiffe://"`);
  }
  const rest = s.slice(SPIFFE_SCHEME.length);
  if (rest.includes("?")) return bad("a query is not allowed");
  if (rest.includes("#")) return bad("a fragment is not allowed");
  const parts = rest.split("/");
  if (parts.length !== 5) {
    return bad(
      `expected 5 parts "<trust-domain>/ns/<namespace>/sa/<service-account>", found ${parts.length}`,
    );
  }
  const [td, nsLit, ns, saLit, sa] = parts as [string, string, string, string, string];
  const tdProblem = checkTrustDomain(td);
  if (tdProblem !== undefined) return bad(tdProblem);
  if (nsLit !== "ns") return bad(`the second part must be "ns", found "${nsLit}"`);
  if (saLit !== "sa") return bad(`the fourth part must be "sa", found "${saLit}"`);
  const nsProblem = checkSegment("namespace", ns);
  if (nsProblem !== undefined) return bad(nsProblem);
  const saProblem = checkSegment("service account", sa);
  if (saProblem !== undefined) return bad(saProblem);
  return ok({ trustDomain: td, namespace: ns, serviceAccount: sa });
}

/**
 * Builds an identity from parts, checking them with the same rules as `parseIdentity`. Use this
 * when the parts come from configuration or xDS (`Workload.trust_domain` etc.).
 */
export function makeIdentity(
  trustDomain: string,
  namespace: string,
  serviceAccount: string,
): Result<Identity> {
  return parseIdentity(`${SPIFFE_SCHEME}${trustDomain}/ns/${namespace}/sa/${serviceAccount}`);
}

/** `spiffe://td/ns/x/sa/y`. */
export function formatIdentity(id: Identity): string {
  return `${SPIFFE_SCHEME}${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** A string key for maps and sets; equal identities have equal keys. */
export function identityKey(id: Identity): string {
  return formatIdentity(id);
}

export function identitiesEqual(a: Identity, b: Identity): boolean {
  return (
    a.trustDomain === b.trustDomain &&
    a.namespace === b.namespace &&
    a.serviceAccount === b.serviceAccount
  );
}

/** Accepts an identity or its string form; throws nothing, reports why a string is invalid. */
export function toIdentity(id: Identity | string): Result<Identity> {
  return typeof id === "string" ? parseIdentity(id) : ok(id);
}

/**
 * The SAN entries of Node's `subjectAltName` / `tls.PeerCertificate.subjectaltname` string, as
 * `{ type, value }`. Node separates entries with ", " and JSON-quotes a value that contains a
 * separator or quote (`URI:"spiffe://a, b"`), so a plain split would be wrong.
 */
export function parseSubjectAltNameString(s: string): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  let i = 0;
  while (i < s.length) {
    const colon = s.indexOf(":", i);
    if (colon === -1) break;
    const type = s.slice(i, colon);
    let value: string;
    let next: number;
    if (s[colon + 1] === '"') {
      let j = colon + 2;
      while (j < s.length && s[j] !== '"') j += s[j] === "\\" ? 2 : 1;
      try {
        value = JSON.parse(s.slice(colon + 1, j + 1)) as string;
      } catch {
        value = s.slice(colon + 2, j);
      }
      next = j + 1;
    } else {
      const sep = s.indexOf(", ", colon + 1);
      next = sep === -1 ? s.length : sep;
      value = s.slice(colon + 1, next);
    }
    out.push({ type, value });
    // Skip the ", " separator.
    i = next;
    if (s.startsWith(", ", i)) i += 2;
  }
  return out;
}

/**
 * The SPIFFE identities among the URI SANs in a Node `subjectaltname` string. DNS, IP and email
 * SANs are ignored (Istio considers URI SANs only); URI SANs that are not valid SPIFFE ids in
 * Istio's shape are ignored too.
 */
export function identitiesFromSubjectAltName(subjectAltName: string | undefined): Identity[] {
  if (subjectAltName === undefined || subjectAltName === "") return [];
  const out: Identity[] = [];
  for (const { type, value } of parseSubjectAltNameString(subjectAltName)) {
    if (type !== "URI") continue;
    const id = parseIdentity(value);
    if (id.ok) out.push(id.value);
  }
  return out;
}

/** The URI SANs of a certificate (DER, PEM, or a parsed Node certificate). */
export function uriSansFromCertificate(cert: Buffer | string | X509Certificate): string[] {
  const c = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return parseSubjectAltNameString(c.subjectAltName ?? "")
    .filter((e) => e.type === "URI")
    .map((e) => e.value);
}

/**
 * The SPIFFE identities in a certificate's URI SANs (DER, PEM, or a parsed Node certificate).
 * Only URI SANs count; a certificate whose CN looks like an identity has none.
 */
export function identitiesFromCertificate(cert: Buffer | string | X509Certificate): Identity[] {
  const c = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return identitiesFromSubjectAltName(c.subjectAltName);
}

function clip(s: string): string {
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}
