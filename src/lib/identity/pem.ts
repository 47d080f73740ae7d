/**
 * PEM helpers. Istio passes certificate chains as arrays with one PEM certificate per element,
 * each ending in a newline; these helpers produce and accept exactly that.
 */
import { X509Certificate } from "node:crypto";

const pemBlock = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** Every PEM block of `type` in `text`, re-encoded in canonical form (64-column, trailing "\n"). */
export function pemBlocks(text: string, type: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(pemBlock)) {
    if (m[1] !== type) continue;
    out.push(derToPem(Buffer.from((m[2] ?? "").replace(/\s+/g, ""), "base64"), type));
  }
  return out;
}

/** Splits text holding any number of certificates into one canonical PEM string per certificate. */
export function splitPemCertificates(text: string): string[] {
  return pemBlocks(text, "CERTIFICATE");
}

export function derToPem(der: Uint8Array, type: string): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${type}-----\n${lines.join("\n")}\n-----END ${type}-----\n`;
}

/** The DER bytes of the first PEM block of `type`, or undefined. */
export function pemToDer(text: string, type: string): Buffer | undefined {
  for (const m of text.matchAll(pemBlock)) {
    if (m[1] === type) return Buffer.from((m[2] ?? "").replace(/\s+/g, ""), "base64");
  }
  return undefined;
}

/** Canonical PEM for one certificate given as PEM, DER or a parsed Node certificate. */
export function certificatePem(cert: string | Buffer | X509Certificate): string {
  if (cert instanceof X509Certificate) return derToPem(cert.raw, "CERTIFICATE");
  if (typeof cert === "string") {
    const [first] = splitPemCertificates(cert);
    if (first === undefined) throw new TypeError("no PEM CERTIFICATE block found");
    return first;
  }
  return derToPem(cert, "CERTIFICATE");
}
