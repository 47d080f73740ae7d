import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { createCsr, parseCsr } from "./csr.ts";
import { keyMatches } from "./keys.ts";
import { x509 } from "./x509.ts";

const ID = "spiffe://cluster.local/ns/default/sa/client";

describe("createCsr", () => {
  it("asks only for the URI SAN, with an empty subject and a P-256 key", async () => {
    const { csrPem, privateKeyPem } = await createCsr(ID);
    assert.match(privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    const key = createPrivateKey(privateKeyPem);
    assert.equal(key.asymmetricKeyDetails?.namedCurve, "prime256v1");

    const parsed = await parseCsr(csrPem);
    assert.ok(parsed.ok, parsed.ok ? "" : parsed.reason);
    assert.deepEqual(parsed.value.uriSans, [ID]);
    assert.deepEqual(parsed.value.otherSans, []);
    assert.equal(parsed.value.subject, "");
    assert.equal(parsed.value.keyDescription, "ECDSA P-256");
    assert.ok(keyMatches(key, parsed.value.publicKey));
  });

  it("is read the same way by openssl req", async () => {
    const { csrPem } = await createCsr(ID);
    const text = execFileSync("openssl", ["req", "-noout", "-text", "-verify"], {
      input: csrPem,
      encoding: "utf8",
      stdio: ["pipe", "pipe", "pipe"],
    });
    assert.match(text, /Subject: *\n/);
    assert.match(
      text,
      /X509v3 Subject Alternative Name: critical\n\s+URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/client\n/,
    );
    // Exactly one requested extension and one SAN entry.
    assert.equal(text.match(/X509v3 /g)?.length, 1);
    assert.doesNotMatch(text, /DNS:|IP Address:|email:/);
    assert.match(text, /ASN1 OID: prime256v1/);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  });

  it("uses a given key", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const { csrPem, privateKeyPem } = await createCsr(ID, { privateKeyPem: pem });
    assert.equal(privateKeyPem, pem);
    const parsed = await parseCsr(csrPem);
    assert.ok(parsed.ok && keyMatches(privateKey, parsed.value.publicKey));
  });

  it("refuses an invalid identity", async () => {
    await assert.rejects(createCsr("spiffe://cluster.local/ns/a"), {
      code: "IDENTITY_BAD_IDENTITY",
    });
  });
});

describe("parseCsr", () => {
  it("rejects text that is not a PEM CSR", async () => {
    const r = await parseCsr("hello");
    assert.deepEqual(
      r.ok ? "" : r.reason,
      'the CSR is not PEM: expected a "-----BEGIN CERTIFICATE REQUEST-----" block',
    );
    const garbage = await parseCsr(
      "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    );
    assert.equal(garbage.ok, false);
    assert.match(garbage.ok ? "" : garbage.reason, /cannot be decoded/);
  });

  it("rejects a CSR whose signature does not match its key", async () => {
    const { csrPem } = await createCsr(ID);
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    // Flip one bit in the signature's last byte.
    const der = new Uint8Array(csr.rawData);
    der[der.length - 1]! ^= 0x01;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(der).toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    const r = await parseCsr(tampered);
    assert.equal(r.ok, false);
    assert.match(r.ok ? "" : r.reason, /signature/);
  });

  it("reports every SAN an openssl-made CSR asks for", async () => {
    const csrPem = execFileSync(
      "openssl",
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
        "/CN=evil",
        "-addext",
        "subjectAltName=URI:spiffe://cluster.local/ns/a/sa/b,DNS:evil.example,URI:spiffe://cluster.local/ns/kube-system/sa/admin",
      ],
      { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    );
    const r = await parseCsr(csrPem);
    assert.ok(r.ok, r.ok ? "" : r.reason);
    assert.deepEqual(r.value.uriSans, [
      "spiffe://cluster.local/ns/a/sa/b",
      "spiffe://cluster.local/ns/kube-system/sa/admin",
    ]);
    assert.deepEqual(r.value.otherSans, ["dns:evil.example"]);
    assert.equal(r.value.subject, "CN=evil");
  });
});
