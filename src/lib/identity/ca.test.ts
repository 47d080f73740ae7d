import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { verifyChain } from "./bundle.ts";
import { CertificateAuthority, CLOCK_SKEW_GRACE_SECONDS } from "./ca.ts";
import { createCsr } from "./csr.ts";
import { identitiesFromCertificate, formatIdentity } from "./spiffe.ts";

const ID = "spiffe://cluster.local/ns/default/sa/client";

function openssl(args: string[], cwd: string, input?: string): string {
  return execFileSync("openssl", args, {
    cwd,
    encoding: "utf8",
    input: input ?? "",
    stdio: ["pipe", "pipe", "pipe"],
  });
}

/** `openssl verify` of a leaf against a root, with intermediates as untrusted; returns its output. */
function opensslVerify(
  dir: string,
  chain: readonly string[],
  purpose: "sslclient" | "sslserver",
): string {
  writeFileSync(join(dir, "v-leaf.pem"), chain[0]!);
  writeFileSync(join(dir, "v-root.pem"), chain[chain.length - 1]!);
  const args = ["verify", "-x509_strict", "-purpose", purpose, "-CAfile", "v-root.pem"];
  if (chain.length > 2) {
    writeFileSync(join(dir, "v-intermediates.pem"), chain.slice(1, -1).join(""));
    args.push("-untrusted", "v-intermediates.pem");
  }
  args.push("v-leaf.pem");
  return openssl(args, dir);
}

/** Istio's cacerts layout made with openssl: an RSA root and an intermediate signing CA. */
function makePluginDir(
  dir: string,
  intermediate: "ec" | "rsa",
  subject = "/O=Istio/CN=Root CA",
): void {
  openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "root-key.pem",
      "-out",
      "root-cert.pem",
      "-days",
      "3650",
      "-subj",
      subject,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  if (intermediate === "rsa") {
    // PKCS#1 ("BEGIN RSA PRIVATE KEY"), as older Istio tooling writes it.
    openssl(["genrsa", "-traditional", "-out", "ca-key.pem", "2048"], dir);
  } else {
    // SEC1 ("BEGIN EC PRIVATE KEY").
    openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca-key.pem"], dir);
  }
  openssl(
    [
      "req",
      "-new",
      "-key",
      "ca-key.pem",
      "-out",
      "ca.csr",
      "-subj",
      "/O=Istio/CN=Intermediate CA/L=cluster1",
    ],
    dir,
  );
  writeFileSync(
    join(dir, "ca.ext"),
    [
      "basicConstraints=critical,CA:TRUE,pathlen:0",
      "keyUsage=critical,digitalSignature,keyCertSign,cRLSign",
      "subjectKeyIdentifier=hash",
      "authorityKeyIdentifier=keyid",
      "",
    ].join("\n"),
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      "ca.csr",
      "-CA",
      "root-cert.pem",
      "-CAkey",
      "root-key.pem",
      "-CAcreateserial",
      "-out",
      "ca-cert.pem",
      "-days",
      "730",
      "-extfile",
      "ca.ext",
    ],
    dir,
  );
  writeFileSync(
    join(dir, "cert-chain.pem"),
    readFileSync(join(dir, "ca-cert.pem"), "utf8") +
      readFileSync(join(dir, "root-cert.pem"), "utf8"),
  );
}

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), "amb-identity-ca-"));
});
after(() => {
  rmSync(tmp, { recursive: true, force: true });
});
let n = 0;
function subdir(): string {
  const d = join(tmp, `d${n++}`);
  execFileSync("mkdir", ["-p", d]);
  return d;
}

describe("self-signed CA", () => {
  it("signs a CSR into a chain openssl verifies, leaf first and root last", async () => {
    const ca = await CertificateAuthority.create();
    assert.equal(ca.kind, "self-signed");
    const { csrPem } = await createCsr(ID);
    const chain = await ca.sign(csrPem, { identity: ID });
    assert.equal(chain.length, 2);
    for (const pem of chain) {
      assert.equal(pem.match(/BEGIN CERTIFICATE/g)?.length, 1, "one certificate per element");
      assert.ok(pem.endsWith("-----END CERTIFICATE-----\n"), "each element ends with a newline");
    }
    assert.equal(chain[1], ca.rootPem);
    const dir = subdir();
    assert.match(opensslVerify(dir, chain, "sslclient"), /v-leaf\.pem: OK/);
    assert.match(opensslVerify(dir, chain, "sslserver"), /v-leaf\.pem: OK/);
  });

  it("issues a workload leaf as istiod does", async () => {
    const ca = await CertificateAuthority.create();
    const before = Date.now();
    const chain = await ca.sign((await createCsr(ID)).csrPem, { identity: ID });
    const text = openssl(["x509", "-noout", "-text"], tmp, chain[0]);
    assert.match(text, /Subject: *\n/);
    assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:FALSE/);
    assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment\n/);
    assert.match(
      text,
      /X509v3 Extended Key Usage: *\n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/,
    );
    assert.match(
      text,
      /X509v3 Subject Alternative Name: critical\n\s+URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/client\n/,
    );
    const leaf = new X509Certificate(chain[0]!);
    // Backdated for clock skew.
    const skew = (before - leaf.validFromDate.getTime()) / 1000;
    assert.ok(
      skew >= CLOCK_SKEW_GRACE_SECONDS - 2 && skew <= CLOCK_SKEW_GRACE_SECONDS + 2,
      `backdated ${skew}s`,
    );
    // Random serials.
    const other = new X509Certificate(
      (await ca.sign((await createCsr(ID)).csrPem, { identity: ID }))[0]!,
    );
    assert.notEqual(leaf.serialNumber, other.serialNumber);
    assert.ok(leaf.serialNumber.length >= 30, `serial ${leaf.serialNumber}`);
  });

  it("certifies the identity it is told, ignoring what the CSR asks for", async () => {
    const ca = await CertificateAuthority.create();
    const csrPem = openssl(
      [
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "/dev/null",
        "-subj",
        "/CN=admin",
        "-addext",
        "subjectAltName=URI:spiffe://cluster.local/ns/kube-system/sa/admin,DNS:evil.example",
      ],
      tmp,
    );
    const chain = await ca.sign(csrPem, { identity: ID });
    const leaf = new X509Certificate(chain[0]!);
    assert.equal(leaf.subjectAltName, `URI:${ID}`);
    assert.equal(leaf.subject ?? "", "");
    assert.deepEqual(identitiesFromCertificate(leaf).map(formatIdentity), [ID]);
  });

  it("uses the default TTL, honours a shorter one and caps a longer one", async () => {
    const ca = await CertificateAuthority.create({ maxTtlSeconds: 48 * 3600 });
    const csrPem = (await createCsr(ID)).csrPem;
    const lifetime = async (ttlSeconds?: number) => {
      const chain = await ca.sign(csrPem, {
        identity: ID,
        ...(ttlSeconds !== undefined ? { ttlSeconds } : {}),
      });
      const leaf = new X509Certificate(chain[0]!);
      return (
        (leaf.validToDate.getTime() - leaf.validFromDate.getTime()) / 1000 -
        CLOCK_SKEW_GRACE_SECONDS
      );
    };
    const near = (actual: number, expected: number) =>
      assert.ok(Math.abs(actual - expected) <= 2, `lifetime ${actual}s, expected ${expected}s`);
    near(await lifetime(), 24 * 3600);
    near(await lifetime(0), 24 * 3600);
    near(await lifetime(-5), 24 * 3600);
    near(await lifetime(3600), 3600);
    near(await lifetime(30 * 24 * 3600), 48 * 3600);
    assert.equal(ca.effectiveTtlSeconds(1e9), 48 * 3600);
  });

  it("follows an injected clock", async () => {
    const t = Date.UTC(2030, 0, 1);
    const ca = await CertificateAuthority.create({ now: () => t });
    const chain = await ca.sign((await createCsr(ID)).csrPem, { identity: ID, ttlSeconds: 600 });
    const leaf = new X509Certificate(chain[0]!);
    assert.equal(leaf.validFromDate.getTime(), t - CLOCK_SKEW_GRACE_SECONDS * 1000);
    assert.equal(leaf.validToDate.getTime(), t + 600_000);
  });

  it("rejects bad CSRs and identities with stable codes", async () => {
    const ca = await CertificateAuthority.create();
    await assert.rejects(ca.sign("not a csr", { identity: ID }), { code: "CA_BAD_CSR" });
    await assert.rejects(ca.sign((await createCsr(ID)).csrPem, { identity: "spiffe://x/ns/a" }), {
      code: "CA_BAD_IDENTITY",
    });
    const weak = openssl(
      ["req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout", "/dev/null", "-subj", "/CN=x"],
      tmp,
    );
    await assert.rejects(ca.sign(weak, { identity: ID }), {
      code: "CA_BAD_CSR",
      message: /RSA key of 1024 bits is too small/,
    });
  });

  it("can use an RSA root", async () => {
    const ca = await CertificateAuthority.create({ keyAlgorithm: "rsa-2048" });
    const chain = await ca.sign((await createCsr(ID)).csrPem, { identity: ID });
    assert.match(openssl(["x509", "-noout", "-text"], tmp, chain[1]), /Public-Key: \(2048 bit\)/);
    assert.match(opensslVerify(subdir(), chain, "sslserver"), /OK/);
  });
});

describe("loadOrCreate", () => {
  it("creates the root once and reuses it on the next start", async () => {
    const dir = join(subdir(), "ca");
    const first = await CertificateAuthority.loadOrCreate(dir, { trustDomain: "example.org" });
    const second = await CertificateAuthority.loadOrCreate(dir, { trustDomain: "example.org" });
    assert.equal(second.rootPem, first.rootPem);
    assert.equal(second.kind, "self-signed");
    assert.equal(statSync(join(dir, "ca-key.pem")).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(dir, "root-cert.pem"), "utf8"), first.rootPem);
    assert.match(new X509Certificate(first.rootPem).subject, /O=example\.org/);
    // A certificate from the first instance verifies against the second's roots.
    const chain = await first.sign((await createCsr(ID)).csrPem, { identity: ID });
    assert.ok(verifyChain(chain, second.roots()).ok);
  });

  it("refuses to replace a half-present CA, naming the missing file", async () => {
    const dir = subdir();
    await CertificateAuthority.loadOrCreate(dir);
    unlinkSync(join(dir, "ca-cert.pem"));
    await assert.rejects(CertificateAuthority.loadOrCreate(dir), {
      code: "CA_FILE_MISSING",
      message: new RegExp(`${join(dir, "ca-cert.pem")} is missing`),
    });
  });
});

describe("plug-in CA (Istio cacerts made with openssl)", () => {
  for (const kind of ["ec", "rsa"] as const) {
    it(`signs with a ${kind.toUpperCase()} intermediate; openssl verifies leaf -> intermediate -> root`, async () => {
      const dir = subdir();
      makePluginDir(dir, kind);
      const ca = await CertificateAuthority.fromPluginFiles(dir);
      assert.equal(ca.kind, "plug-in");
      const chain = await ca.sign((await createCsr(ID)).csrPem, { identity: ID });
      assert.equal(chain.length, 3);
      assert.equal(new X509Certificate(chain[1]!).subject.includes("Intermediate CA"), true);
      assert.equal(chain[2], readFileSync(join(dir, "root-cert.pem"), "utf8"));
      assert.deepEqual(ca.roots(), [chain[2]]);
      assert.match(opensslVerify(dir, chain, "sslclient"), /v-leaf\.pem: OK/);
      assert.match(opensslVerify(dir, chain, "sslserver"), /v-leaf\.pem: OK/);
      assert.ok(verifyChain(chain, ca.roots()).ok);
    });
  }

  it("rejects a key that does not match ca-cert.pem, naming ca-key.pem", async () => {
    const dir = subdir();
    makePluginDir(dir, "ec");
    openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca-key.pem"], dir);
    await assert.rejects(CertificateAuthority.fromPluginFiles(dir), {
      code: "CA_FILE_INVALID",
      message: new RegExp(
        `^${join(dir, "ca-key.pem")}: does not match the certificate in ${join(dir, "ca-cert.pem")}`,
      ),
    });
  });

  it("rejects a chain that does not verify to root-cert.pem, naming cert-chain.pem", async () => {
    // root-cert.pem from another PKI: cert-chain.pem ends at a root that is not trusted.
    const dir = subdir();
    const other = subdir();
    makePluginDir(dir, "ec");
    makePluginDir(other, "ec", "/O=Other/CN=Other Root");
    writeFileSync(join(dir, "root-cert.pem"), readFileSync(join(other, "root-cert.pem")));
    await assert.rejects(CertificateAuthority.fromPluginFiles(dir), {
      code: "CA_FILE_INVALID",
      message: new RegExp(
        `^${join(dir, "cert-chain.pem")}: the chain from ${join(dir, "ca-cert.pem")} ends at the root "O=Istio, CN=Root CA", which is not in ${join(dir, "root-cert.pem")}`,
      ),
    });
  });

  it("rejects a broken cert-chain.pem and a missing file by name", async () => {
    const dir = subdir();
    const other = subdir();
    makePluginDir(dir, "ec");
    makePluginDir(other, "ec");
    // An intermediate from another PKI between ca-cert.pem and the root.
    writeFileSync(
      join(dir, "cert-chain.pem"),
      readFileSync(join(dir, "ca-cert.pem"), "utf8") +
        readFileSync(join(other, "ca-cert.pem"), "utf8"),
    );
    await assert.rejects(CertificateAuthority.fromPluginFiles(dir), {
      message: new RegExp(`^${join(dir, "cert-chain.pem")}: does not form a chain`),
    });
    // cert-chain.pem with only ca-cert.pem while root-cert.pem is from another PKI.
    writeFileSync(join(dir, "cert-chain.pem"), readFileSync(join(dir, "ca-cert.pem")));
    writeFileSync(join(dir, "root-cert.pem"), readFileSync(join(other, "root-cert.pem")));
    await assert.rejects(CertificateAuthority.fromPluginFiles(dir), {
      message: /which no certificate in .*root-cert\.pem issued/,
    });
    unlinkSync(join(dir, "cert-chain.pem"));
    await assert.rejects(CertificateAuthority.fromPluginFiles(dir), {
      code: "CA_FILE_MISSING",
      message: new RegExp(`${join(dir, "cert-chain.pem")} is missing`),
    });
  });

  it("rejects a ca-cert.pem that is not a CA", async () => {
    const dir = subdir();
    openssl(
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca-cert.pem",
        "-days",
        "30",
        "-subj",
        "/CN=leaf",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
      ],
      dir,
    );
    writeFileSync(join(dir, "root-cert.pem"), readFileSync(join(dir, "ca-cert.pem")));
    writeFileSync(join(dir, "cert-chain.pem"), "");
    await assert.rejects(CertificateAuthority.fromPluginFiles(dir), {
      message: new RegExp(`^${join(dir, "ca-cert.pem")}: "CN=leaf" is not a CA certificate`),
    });
  });
});

describe("intermediates", () => {
  it("createIntermediate signs chains openssl verifies through the intermediate", async () => {
    const root = await CertificateAuthority.create();
    const intermediate = await root.createIntermediate({ commonName: "cluster1 intermediate" });
    assert.equal(intermediate.kind, "plug-in");
    const chain = await intermediate.sign((await createCsr(ID)).csrPem, { identity: ID });
    assert.equal(chain.length, 3);
    assert.match(opensslVerify(subdir(), chain, "sslserver"), /v-leaf\.pem: OK/);
  });

  it("loadOrCreate uses plug-in files already in the directory", async () => {
    const dir = subdir();
    makePluginDir(dir, "ec");
    const ca = await CertificateAuthority.loadOrCreate(dir);
    assert.equal(ca.kind, "plug-in");
    assert.equal(ca.rootPem, readFileSync(join(dir, "root-cert.pem"), "utf8"));
  });
});

describe("multiple roots", () => {
  it("serves every root in root-cert.pem and extraTrustedRoots, signing root first and last in chains", async () => {
    const dir = subdir();
    const old = subdir();
    makePluginDir(dir, "ec");
    makePluginDir(old, "ec", "/O=Istio/CN=Old Root");
    const current = readFileSync(join(dir, "root-cert.pem"), "utf8");
    const oldRoot = readFileSync(join(old, "root-cert.pem"), "utf8");
    // Istio's root rotation: root-cert.pem holds the old and the new root.
    writeFileSync(join(dir, "root-cert.pem"), oldRoot + current);
    const extra = await CertificateAuthority.create();
    const ca = await CertificateAuthority.fromPluginFiles(dir, {
      extraTrustedRoots: [extra.rootPem, current],
    });
    assert.deepEqual(ca.roots(), [current, oldRoot, extra.rootPem]);
    const chain = await ca.sign((await createCsr(ID)).csrPem, { identity: ID });
    assert.equal(chain[chain.length - 1], current);
    // A workload holding all roots accepts certificates from either PKI.
    const fromOld = await extra.sign((await createCsr(ID)).csrPem, { identity: ID });
    assert.ok(verifyChain(chain, ca.roots()).ok);
    assert.ok(verifyChain(fromOld, ca.roots()).ok);
    assert.equal(verifyChain(fromOld, [current]).ok, false);
  });
});
