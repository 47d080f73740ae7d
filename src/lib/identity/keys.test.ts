import assert from "node:assert/strict";
import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { checkCertifiableKey, generateKey, keyMatches, loadPrivateKey } from "./keys.ts";

describe("keys", () => {
  it("generates P-256 keys as PKCS#8 PEM by default", async () => {
    const k = await generateKey();
    assert.match(k.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.match(k.publicKeyPem, /^-----BEGIN PUBLIC KEY-----\n/);
    assert.equal(createPrivateKey(k.privateKeyPem).asymmetricKeyDetails?.namedCurve, "prime256v1");
    const other = await generateKey();
    assert.notEqual(other.privateKeyPem, k.privateKeyPem);
  });

  it("loads EC (SEC1, PKCS#8) and RSA (PKCS#1, PKCS#8) keys", () => {
    const ec = generateKeyPairSync("ec", { namedCurve: "secp384r1" }).privateKey;
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    const cases = [
      [ec.export({ type: "sec1", format: "pem" }), "ECDSA P-384", "SHA-384"],
      [ec.export({ type: "pkcs8", format: "pem" }), "ECDSA P-384", "SHA-384"],
      [rsa.export({ type: "pkcs1", format: "pem" }), "RSA 2048", undefined],
      [rsa.export({ type: "pkcs8", format: "pem" }), "RSA 2048", undefined],
    ] as const;
    for (const [pem, description, hash] of cases) {
      const k = loadPrivateKey(pem);
      assert.equal(k.description, description);
      assert.equal((k.signingAlgorithm as { hash?: string }).hash, hash);
      assert.equal(k.cryptoKeys.privateKey.type, "private");
      assert.ok(keyMatches(k.privateKey, k.publicKey));
    }
  });

  it("explains keys it cannot use, naming the source", () => {
    assert.throws(() => loadPrivateKey("nonsense", "/etc/cacerts/ca-key.pem"), {
      code: "IDENTITY_BAD_KEY",
      message: /^cannot load \/etc\/cacerts\/ca-key\.pem: it is not a PEM private key/,
    });
    const small = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({
      type: "pkcs8",
      format: "pem",
    });
    assert.throws(() => loadPrivateKey(small, "ca-key.pem"), {
      message: /ca-key\.pem: RSA key of 1024 bits is too small/,
    });
    const ed = generateKeyPairSync("ed25519").privateKey;
    assert.throws(() => loadPrivateKey(ed.export({ type: "pkcs8", format: "pem" })), {
      message: /ed25519 is not supported/,
    });
    const encrypted = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey.export({
      type: "pkcs8",
      format: "pem",
      cipher: "aes-256-cbc",
      passphrase: "x",
    });
    assert.throws(() => loadPrivateKey(encrypted), { message: /it is encrypted/ });
    assert.match(checkCertifiableKey(ed) ?? "", /ed25519 is not accepted/);
  });

  it("tells a matching key from a different one", () => {
    const a = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const b = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    assert.ok(keyMatches(a.privateKey, a.publicKey));
    assert.ok(!keyMatches(a.privateKey, b.publicKey));
  });
});
