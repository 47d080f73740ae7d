/**
 * The certificate authority that signs workload certificates (istiod's role).
 *
 * Two ways to get one, as in istiod:
 * - self-signed: a root created on first start and kept in a directory (`loadOrCreate`), or only in
 *   memory (`create`, for tests);
 * - plug-in: Istio's `cacerts` layout (`fromPluginFiles`): `ca-cert.pem` (the signing, usually
 *   intermediate, certificate), `ca-key.pem`, `root-cert.pem` (one or more trusted roots) and
 *   `cert-chain.pem` (the chain from `ca-cert.pem` up to the root).
 *
 * The self-signed root uses ECDSA P-256 by default (RSA on request, `keyAlgorithm`): key generation
 * takes about a millisecond instead of 50-500 ms for RSA (first start and every test PKI), signing
 * workload certificates is an order of magnitude cheaper, certificates and handshakes are smaller,
 * and workload keys are P-256 anyway so every peer already speaks ECDSA. istiod defaults to RSA 2048
 * for its self-signed root; both interoperate, since verifiers accept either.
 *
 * `sign` decides nothing about authorization: the caller (the CA service) has authenticated the
 * requester and passes the identity it is entitled to. The CSR proves possession of the key only:
 * its signature is verified, its key type checked, and everything it asks for (subject, SANs,
 * extensions) is ignored — the leaf's only SAN is the identity passed in. That is what istiod does
 * (`genCertTemplateFromCSR` builds the SAN from the authenticated subject IDs).
 */
import { X509Certificate, randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AmbientError, errnoCode } from "../errors.ts";
import { dnText, issuedBy, subjectOf, validityAt } from "./bundle.ts";
import { parseCsr } from "./csr.ts";
import {
  checkCertifiableKey,
  generateKey,
  keyMatches,
  loadPrivateKey,
  type KeyAlgorithm,
  type SigningKey,
} from "./keys.ts";
import { derToPem, splitPemCertificates } from "./pem.ts";
import {
  DEFAULT_TRUST_DOMAIN,
  checkTrustDomain,
  formatIdentity,
  toIdentity,
  type Identity,
} from "./spiffe.ts";
import { x509 } from "./x509.ts";

/** istiod's default workload certificate lifetime (`DEFAULT_WORKLOAD_CERT_TTL`, ztunnel's `SECRET_TTL`). */
export const DEFAULT_WORKLOAD_TTL_SECONDS = 24 * 3600;
/** istiod's default cap (`MAX_WORKLOAD_CERT_TTL`, 90 days). */
export const DEFAULT_MAX_WORKLOAD_TTL_SECONDS = 90 * 24 * 3600;
/** istiod's default self-signed root lifetime (`CITADEL_SELF_SIGNED_CA_CERT_TTL`, 10 years). */
export const DEFAULT_ROOT_TTL_SECONDS = 10 * 365 * 24 * 3600;
/** How far notBefore is backdated for clock skew between CA and workloads (istiod: 2 minutes). */
export const CLOCK_SKEW_GRACE_SECONDS = 120;

/** Istio's `cacerts` file names (also used for the self-signed CA's directory). */
export const CA_FILES = {
  caCert: "ca-cert.pem",
  caKey: "ca-key.pem",
  rootCert: "root-cert.pem",
  certChain: "cert-chain.pem",
} as const;

export interface CertificateAuthorityOptions {
  /** Written into the self-signed root's subject (`O=<trust domain>`, as istiod does). */
  readonly trustDomain?: string;
  /** Adds `CN=<name>` to a newly created root's subject (istiod's has only `O=<trust domain>`). */
  readonly rootCommonName?: string;
  /** Key of a newly created self-signed root. Default `ecdsa-p256`. */
  readonly keyAlgorithm?: KeyAlgorithm;
  /** Lifetime of a newly created self-signed root. Default 10 years. */
  readonly rootTtlSeconds?: number;
  /** Workload certificate lifetime when the request gives none (or <= 0). Default 24 h. */
  readonly defaultTtlSeconds?: number;
  /** Longer requests are capped to this. Default 90 days. */
  readonly maxTtlSeconds?: number;
  /**
   * More trusted roots (PEM, each may hold several certificates), e.g. the previous root during
   * a rotation. They are served in `roots()` but never sign.
   */
  readonly extraTrustedRoots?: readonly string[];
  /** Clock in ms since the epoch; injectable for tests. */
  readonly now?: () => number;
}

export interface SignOptions {
  /** The identity the caller is entitled to; becomes the leaf's only SAN. */
  readonly identity: Identity | string;
  /** Requested lifetime; <= 0 or absent means the default; capped at `maxTtlSeconds`. */
  readonly ttlSeconds?: number;
}

/** A leaf to issue directly from a public key, bypassing the CSR (test PKIs and tools). */
export interface IssueRequest {
  /** SPKI PEM or a Node public/private KeyObject-compatible PEM of the key to certify. */
  readonly publicKeyPem: string;
  /** URI SANs (SPIFFE ids); may be empty to produce a certificate without any identity. */
  readonly uris?: readonly string[];
  readonly dnsNames?: readonly string[];
  /** IP address SANs (a server certificate for clients that connect by IP). */
  readonly ipAddresses?: readonly string[];
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

export type CertificateAuthorityKind = "self-signed" | "plug-in";

interface Material {
  readonly kind: CertificateAuthorityKind;
  readonly key: SigningKey;
  readonly signingCert: X509Certificate;
  /** Certificates between the signing certificate and the root, in order. */
  readonly intermediates: readonly X509Certificate[];
  /** The root the signing certificate chains to (may be the signing certificate itself). */
  readonly signingRoot: X509Certificate;
  /** Every trusted root, the signing root first. */
  readonly roots: readonly X509Certificate[];
}

export class CertificateAuthority {
  readonly kind: CertificateAuthorityKind;
  readonly #material: Material;
  readonly #issuerName: x509.Name;
  readonly #authorityKeyId: string | undefined;
  readonly #defaultTtl: number;
  readonly #maxTtl: number;
  readonly #now: () => number;

  private constructor(material: Material, options: CertificateAuthorityOptions) {
    this.kind = material.kind;
    this.#material = material;
    const parsed = new x509.X509Certificate(material.signingCert.raw);
    // Reuse the signing certificate's encoded subject so issuer and subject match byte for byte.
    this.#issuerName = parsed.subjectName;
    this.#authorityKeyId = parsed.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    this.#defaultTtl = options.defaultTtlSeconds ?? DEFAULT_WORKLOAD_TTL_SECONDS;
    this.#maxTtl = options.maxTtlSeconds ?? DEFAULT_MAX_WORKLOAD_TTL_SECONDS;
    this.#now = options.now ?? Date.now;
  }

  /** A new self-signed CA held only in memory. */
  static async create(options: CertificateAuthorityOptions = {}): Promise<CertificateAuthority> {
    const { certPem, keyPem } = await createRoot(options);
    return CertificateAuthority.fromPem({ caCertPem: certPem, caKeyPem: keyPem }, options);
  }

  /**
   * The CA kept in `dir`: loads `ca-cert.pem` + `ca-key.pem` (+ `root-cert.pem`, `cert-chain.pem`
   * when present) if they exist, otherwise creates a self-signed root and writes it there (key
   * 0600). Never overwrites: if only some of the files exist, it fails naming the missing one.
   * Run one creator per directory (two processes creating at once could each make a root).
   */
  static async loadOrCreate(
    dir: string,
    options: CertificateAuthorityOptions = {},
  ): Promise<CertificateAuthority> {
    const certPath = join(dir, CA_FILES.caCert);
    const keyPath = join(dir, CA_FILES.caKey);
    const [cert, key] = await Promise.all([readOptional(certPath), readOptional(keyPath)]);
    if (cert !== undefined || key !== undefined) {
      if (cert === undefined) throw missingFile(certPath, `${keyPath} exists`);
      if (key === undefined) throw missingFile(keyPath, `${certPath} exists`);
      return CertificateAuthority.#fromDir(dir, options, false);
    }
    const { certPem, keyPem } = await createRoot(options);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    try {
      // "wx": fail rather than replace a key another process wrote meanwhile.
      await writeFile(keyPath, keyPem, { mode: 0o600, flag: "wx" });
      await chmod(keyPath, 0o600); // in case the umask trimmed the mode
    } catch (cause) {
      throw new AmbientError(
        "CA_PERSIST",
        `cannot write the new CA key to ${keyPath}: ${(cause as Error).message}; check the directory exists and is writable, and that no other process is creating a CA there`,
        { cause },
      );
    }
    await writeAtomic(certPath, certPem);
    await writeAtomic(join(dir, CA_FILES.rootCert), certPem);
    return CertificateAuthority.fromPem({ caCertPem: certPem, caKeyPem: keyPem }, options, {
      kind: "self-signed",
      sources: { caCert: certPath, caKey: keyPath },
    });
  }

  /**
   * Istio's plug-in CA files in `dir` (all four required). Checks the key matches `ca-cert.pem`,
   * that `ca-cert.pem` is a CA within its validity period, and that it chains through
   * `cert-chain.pem` to a certificate in `root-cert.pem`. Errors name the file at fault.
   */
  static async fromPluginFiles(
    dir: string,
    options: CertificateAuthorityOptions = {},
  ): Promise<CertificateAuthority> {
    return CertificateAuthority.#fromDir(dir, options, true);
  }

  static async #fromDir(
    dir: string,
    options: CertificateAuthorityOptions,
    requireAll: boolean,
  ): Promise<CertificateAuthority> {
    const paths = {
      caCert: join(dir, CA_FILES.caCert),
      caKey: join(dir, CA_FILES.caKey),
      rootCert: join(dir, CA_FILES.rootCert),
      certChain: join(dir, CA_FILES.certChain),
    };
    const read = async (path: string, required: boolean) => {
      const text = await readOptional(path);
      if (text === undefined && required)
        throw missingFile(path, `it is part of the plug-in CA layout in ${dir}`);
      return text;
    };
    const [caCertPem, caKeyPem, rootCertPem, certChainPem] = await Promise.all([
      read(paths.caCert, true),
      read(paths.caKey, true),
      read(paths.rootCert, requireAll),
      read(paths.certChain, requireAll),
    ]);
    return CertificateAuthority.fromPem(
      {
        caCertPem: caCertPem!,
        caKeyPem: caKeyPem!,
        ...(rootCertPem !== undefined ? { rootCertPem } : {}),
        ...(certChainPem !== undefined ? { certChainPem } : {}),
      },
      options,
      { kind: requireAll ? "plug-in" : undefined, sources: paths },
    );
  }

  /**
   * A CA from PEM text in the plug-in layout's roles. Without `rootCertPem` the signing
   * certificate must be self-signed (it is then the root). `sources` name the inputs in errors.
   */
  static fromPem(
    pems: { caCertPem: string; caKeyPem: string; rootCertPem?: string; certChainPem?: string },
    options: CertificateAuthorityOptions = {},
    meta: {
      kind?: CertificateAuthorityKind | undefined;
      sources?: Partial<Record<keyof typeof CA_FILES, string>>;
    } = {},
  ): CertificateAuthority {
    const now = (options.now ?? Date.now)();
    const src = {
      caCert: meta.sources?.caCert ?? CA_FILES.caCert,
      caKey: meta.sources?.caKey ?? CA_FILES.caKey,
      rootCert: meta.sources?.rootCert ?? CA_FILES.rootCert,
      certChain: meta.sources?.certChain ?? CA_FILES.certChain,
    };
    const signingCert = parseCerts(pems.caCertPem, src.caCert)[0];
    if (signingCert === undefined) throw badFile(src.caCert, "holds no PEM certificate");
    const key = loadPrivateKey(pems.caKeyPem, src.caKey);
    if (!keyMatches(key.privateKey, signingCert.publicKey)) {
      throw badFile(
        src.caKey,
        `does not match the certificate in ${src.caCert} (${subjectOf(signingCert)}); the key and certificate must be a pair`,
      );
    }
    if (!signingCert.ca) {
      throw badFile(
        src.caCert,
        `${subjectOf(signingCert)} is not a CA certificate (basicConstraints CA:TRUE is missing), so it cannot sign`,
      );
    }
    const keyUsage = new x509.X509Certificate(signingCert.raw).getExtension(
      x509.KeyUsagesExtension,
    );
    if (keyUsage !== null && (keyUsage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
      throw badFile(
        src.caCert,
        `${subjectOf(signingCert)} has a keyUsage without keyCertSign, so it cannot sign certificates`,
      );
    }
    const v = validityAt(
      { notBefore: signingCert.validFromDate, notAfter: signingCert.validToDate },
      now,
    );
    if (v.state !== "valid")
      throw badFile(src.caCert, `the CA certificate ${subjectOf(signingCert)} is ${v.message}`);

    const selfSigned = isSelfSigned(signingCert);
    const roots =
      pems.rootCertPem !== undefined
        ? parseCerts(pems.rootCertPem, src.rootCert)
        : selfSigned
          ? [signingCert]
          : [];
    if (roots.length === 0) {
      throw pems.rootCertPem !== undefined
        ? badFile(src.rootCert, "holds no PEM certificate")
        : missingFile(src.rootCert, `${src.caCert} is not self-signed, so the root must be given`);
    }
    const isRoot = (c: X509Certificate) => roots.some((r) => r.raw.equals(c.raw));
    // cert-chain.pem conventionally repeats ca-cert.pem first and the root last; keep only what
    // lies strictly between them.
    const chainCerts =
      pems.certChainPem !== undefined ? parseCerts(pems.certChainPem, src.certChain) : [];
    const intermediates = chainCerts.filter((c) => !c.raw.equals(signingCert.raw) && !isRoot(c));

    let signingRoot: X509Certificate | undefined;
    if (isRoot(signingCert)) {
      signingRoot = signingCert;
    } else {
      const path = [signingCert, ...intermediates];
      for (let i = 0; i + 1 < path.length; i++) {
        const problem = issuedBy(path[i]!, path[i + 1]!);
        if (problem !== undefined) {
          throw badFile(
            src.certChain,
            `does not form a chain: ${subjectOf(path[i]!)} is ${problem}`,
          );
        }
      }
      const top = path[path.length - 1]!;
      const problems: string[] = [];
      for (const root of roots) {
        const problem = issuedBy(top, root);
        if (problem === undefined) {
          signingRoot = root;
          break;
        }
        problems.push(`${subjectOf(root)}: ${problem}`);
      }
      if (signingRoot === undefined) {
        const blame =
          intermediates.length > 0 || pems.certChainPem !== undefined ? src.certChain : src.caCert;
        const end = isSelfSigned(top)
          ? `the root ${subjectOf(top)}, which is not in ${src.rootCert}`
          : `${subjectOf(top)} (issuer "${dnText(top.issuer)}"), which no certificate in ${src.rootCert} issued (${problems.join("; ")})`;
        throw badFile(
          blame,
          `the chain from ${src.caCert} ends at ${end}; check the files come from the same PKI`,
        );
      }
    }
    for (const c of [...intermediates, signingRoot]) {
      const cv = validityAt({ notBefore: c.validFromDate, notAfter: c.validToDate }, now);
      if (cv.state !== "valid") {
        throw badFile(
          c === signingRoot ? src.rootCert : src.certChain,
          `${subjectOf(c)} is ${cv.message}`,
        );
      }
    }

    const extra = (options.extraTrustedRoots ?? []).flatMap((p, i) =>
      parseCerts(p, `extraTrustedRoots[${i}]`),
    );
    const allRoots: X509Certificate[] = [signingRoot];
    for (const r of [...roots, ...extra]) {
      if (!allRoots.some((a) => a.raw.equals(r.raw))) allRoots.push(r);
    }
    const kind = meta.kind ?? (selfSigned ? "self-signed" : "plug-in");
    return new CertificateAuthority(
      { kind, key, signingCert, intermediates, signingRoot, roots: allRoots },
      options,
    );
  }

  /** PEM of the certificate that signs workload certificates. */
  get signingCertificatePem(): string {
    return derToPem(this.#material.signingCert.raw, "CERTIFICATE");
  }

  /** PEM of the root the signing certificate chains to (last element of every chain). */
  get rootPem(): string {
    return derToPem(this.#material.signingRoot.raw, "CERTIFICATE");
  }

  /** Every trusted root, one PEM per element, signing root first: the bundle served to workloads. */
  roots(): string[] {
    return this.#material.roots.map((r) => derToPem(r.raw, "CERTIFICATE"));
  }

  /** The certificates sent after the leaf: signing certificate, intermediates, root (deduplicated). */
  chainAfterLeaf(): string[] {
    const { signingCert, intermediates, signingRoot } = this.#material;
    const certs = [signingCert, ...intermediates];
    if (!signingRoot.raw.equals(signingCert.raw)) certs.push(signingRoot);
    return certs.map((c) => derToPem(c.raw, "CERTIFICATE"));
  }

  /**
   * Signs a workload CSR for `identity` and returns the chain, one PEM certificate per element,
   * leaf first and root last. Throws `AmbientError` with code `CA_BAD_CSR` (the CA service answers
   * InvalidArgument) or `CA_BAD_IDENTITY`.
   */
  async sign(csrPem: string, options: SignOptions): Promise<string[]> {
    const id = toIdentity(options.identity);
    if (!id.ok) throw new AmbientError("CA_BAD_IDENTITY", id.reason);
    const csr = await parseCsr(csrPem);
    if (!csr.ok) throw new AmbientError("CA_BAD_CSR", csr.reason);
    const keyProblem = checkCertifiableKey(csr.value.publicKey);
    if (keyProblem !== undefined)
      throw new AmbientError("CA_BAD_CSR", `the CSR's key cannot be certified: ${keyProblem}`);

    const now = this.#now();
    const ttl = this.effectiveTtlSeconds(options.ttlSeconds);
    const publicKeyPem = csr.value.publicKey.export({ type: "spki", format: "pem" }).toString();
    return this.issue({
      publicKeyPem,
      uris: [formatIdentity(id.value)],
      notBefore: new Date(now - CLOCK_SKEW_GRACE_SECONDS * 1000),
      notAfter: new Date(now + ttl * 1000),
    });
  }

  /**
   * A new CA whose signing certificate this CA issues (an intermediate, as when istiod runs with a
   * plug-in intermediate from a shared root). Chains it signs are leaf, intermediate, ...this CA's
   * chain, root. Mostly for tests of multi-level chains; `ttlSeconds` defaults to one year.
   */
  async createIntermediate(
    options: CertificateAuthorityOptions & { commonName?: string; ttlSeconds?: number } = {},
  ): Promise<CertificateAuthority> {
    const { privateKeyPem } = await generateKey(options.keyAlgorithm ?? "ecdsa-p256");
    const key = loadPrivateKey(privateKeyPem, "the new intermediate key");
    const now = this.#now();
    const wanted = now + (options.ttlSeconds ?? 365 * 24 * 3600) * 1000;
    const notAfter = Math.min(wanted, this.#material.signingCert.validToDate.getTime());
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: [
        { O: [this.#issuerName.getField("O")[0] ?? DEFAULT_TRUST_DOMAIN] },
        { CN: [options.commonName ?? "Ambient intermediate CA"] },
      ],
      issuer: this.#issuerName,
      notBefore: new Date(now - CLOCK_SKEW_GRACE_SECONDS * 1000),
      notAfter: new Date(notAfter),
      publicKey: key.cryptoKeys.publicKey,
      signingKey: this.#material.key.cryptoKeys.privateKey,
      signingAlgorithm: this.#material.key.signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(key.cryptoKeys.publicKey),
        ...(this.#authorityKeyId !== undefined
          ? [new x509.AuthorityKeyIdentifierExtension(this.#authorityKeyId)]
          : []),
      ],
    });
    const certPem = derToPem(new Uint8Array(cert.rawData), "CERTIFICATE");
    return CertificateAuthority.fromPem(
      {
        caCertPem: certPem,
        caKeyPem: privateKeyPem,
        rootCertPem: this.roots().join(""),
        certChainPem: [certPem, ...this.chainAfterLeaf()].join(""),
      },
      { ...options, now: options.now ?? this.#now },
      { kind: "plug-in" },
    );
  }

  /** The lifetime `sign` uses for a requested TTL: default when absent or <= 0, capped at the max. */
  effectiveTtlSeconds(requested: number | undefined): number {
    const ttl = requested === undefined || !(requested > 0) ? this.#defaultTtl : requested;
    return Math.min(ttl, this.#maxTtl);
  }

  /**
   * Issues a leaf for a public key directly (no CSR, no TTL policy): for test PKIs and tools that
   * need expired, future or SAN-less certificates. notAfter is still capped at the signing
   * certificate's, since a leaf cannot outlive its issuer's validity usefully.
   */
  async issue(request: IssueRequest): Promise<string[]> {
    const now = this.#now();
    const notBefore = request.notBefore ?? new Date(now - CLOCK_SKEW_GRACE_SECONDS * 1000);
    const signerEnd = this.#material.signingCert.validToDate;
    const wanted = request.notAfter ?? new Date(now + this.#defaultTtl * 1000);
    const notAfter = wanted.getTime() > signerEnd.getTime() ? signerEnd : wanted;
    const names: { type: "url" | "dns" | "ip"; value: string }[] = [
      ...(request.uris ?? []).map((value) => ({ type: "url" as const, value })),
      ...(request.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
      ...(request.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
    ];
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
    ];
    // The subject is empty, so RFC 5280 requires the SAN to be critical.
    if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, true));
    if (this.#authorityKeyId !== undefined) {
      extensions.push(new x509.AuthorityKeyIdentifierExtension(this.#authorityKeyId));
    }
    const publicKey = new x509.PublicKey(spkiDer(request.publicKeyPem));
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      // No SAN at all would leave the certificate nameless; give it a CN then (test-only case).
      ...(names.length === 0 ? { subject: "CN=no-identity" } : {}),
      issuer: this.#issuerName,
      notBefore,
      notAfter,
      publicKey,
      signingKey: this.#material.key.cryptoKeys.privateKey,
      signingAlgorithm: this.#material.key.signingAlgorithm,
      extensions,
    });
    return [derToPem(new Uint8Array(leaf.rawData), "CERTIFICATE"), ...this.chainAfterLeaf()];
  }
}

/** A positive 128-bit serial (istiod uses 128 random bits too). */
function randomSerial(): string {
  const b = randomBytes(16);
  // Clear the top bit so the DER INTEGER is positive; set a low bit of the first byte so it is
  // never a redundant leading zero.
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString("hex");
}

function spkiDer(pem: string): Uint8Array {
  const key = pem.includes("PRIVATE KEY") ? loadPrivateKey(pem).publicKey : undefined;
  if (key !== undefined) return key.export({ type: "spki", format: "der" });
  const [block] = [
    ...pem.matchAll(/-----BEGIN PUBLIC KEY-----([\s\S]*?)-----END PUBLIC KEY-----/g),
  ];
  if (block === undefined)
    throw new AmbientError("IDENTITY_BAD_KEY", "expected a PEM PUBLIC KEY (SPKI)");
  return Buffer.from((block[1] ?? "").replace(/\s+/g, ""), "base64");
}

async function createRoot(
  options: CertificateAuthorityOptions,
): Promise<{ certPem: string; keyPem: string }> {
  const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const tdProblem = checkTrustDomain(trustDomain);
  if (tdProblem !== undefined) throw new AmbientError("CA_BAD_TRUST_DOMAIN", tdProblem);
  const { privateKeyPem } = await generateKey(options.keyAlgorithm ?? "ecdsa-p256");
  const key = loadPrivateKey(privateKeyPem, "the new root key");
  const now = (options.now ?? Date.now)();
  const ttl = options.rootTtlSeconds ?? DEFAULT_ROOT_TTL_SECONDS;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [
      { O: [trustDomain] },
      ...(options.rootCommonName !== undefined ? [{ CN: [options.rootCommonName] }] : []),
    ],
    keys: key.cryptoKeys,
    signingAlgorithm: key.signingAlgorithm,
    notBefore: new Date(now - CLOCK_SKEW_GRACE_SECONDS * 1000),
    notAfter: new Date(now + ttl * 1000),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(key.cryptoKeys.publicKey),
    ],
  });
  return { certPem: derToPem(new Uint8Array(cert.rawData), "CERTIFICATE"), keyPem: privateKeyPem };
}

function isSelfSigned(cert: X509Certificate): boolean {
  return cert.subject === cert.issuer && cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

function parseCerts(text: string, source: string): X509Certificate[] {
  return splitPemCertificates(text).map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch (cause) {
      throw badFile(
        source,
        `certificate ${i + 1} cannot be parsed: ${(cause as Error).message}`,
        cause,
      );
    }
  });
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (cause) {
    if (errnoCode(cause) === "ENOENT") return undefined;
    throw new AmbientError("CA_FILE", `cannot read ${path}: ${(cause as Error).message}`, {
      cause,
    });
  }
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, path);
  } catch (cause) {
    throw new AmbientError("CA_PERSIST", `cannot write ${path}: ${(cause as Error).message}`, {
      cause,
    });
  }
}

function missingFile(path: string, why: string): AmbientError {
  return new AmbientError("CA_FILE_MISSING", `${path} is missing (${why})`);
}

function badFile(source: string, problem: string, cause?: unknown): AmbientError {
  return new AmbientError(
    "CA_FILE_INVALID",
    `${source}: ${problem}`,
    cause === undefined ? undefined : { cause },
  );
}
