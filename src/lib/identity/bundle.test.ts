import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { describe, it } from "node:test";
import { createFreshPki, createTestPki } from "../../testing/pki.ts";
import {
  formatDuration,
  tlsCredentials,
  validityAt,
  verifyChain,
  workloadCertificateFromChain,
} from "./bundle.ts";
import { CertificateAuthority } from "./ca.ts";
import { createCsr } from "./csr.ts";
import { generateKey } from "./keys.ts";
import { parseIdentity } from "./spiffe.ts";

const ID = "spiffe://cluster.local/ns/default/sa/app";

describe("validityAt", () => {
  const cert = {
    notBefore: new Date("2030-01-01T00:00:00Z"),
    notAfter: new Date("2030-01-02T00:00:00Z"),
  };
  it("says which state and by how much", () => {
    assert.deepEqual(validityAt(cert, Date.parse("2030-01-01T06:30:00Z")), {
      state: "valid",
      message: "valid for another 17h 30m (until 2030-01-02T00:00:00.000Z)",
    });
    assert.deepEqual(validityAt(cert, Date.parse("2030-01-03T01:00:05Z")), {
      state: "expired",
      message: "expired 1d 1h ago (at 2030-01-02T00:00:00.000Z)",
    });
    const early = validityAt(cert, Date.parse("2029-12-31T23:58:30Z"));
    assert.equal(early.state, "not-yet-valid");
    assert.match(
      early.message,
      /^not valid yet: becomes valid in 1m 30s \(at 2030-01-01T00:00:00\.000Z\)/,
    );
    // Both ends inclusive.
    assert.equal(validityAt(cert, cert.notAfter.getTime()).state, "valid");
    assert.equal(validityAt(cert, cert.notBefore.getTime()).state, "valid");
  });

  it("formats durations with the two largest units", () => {
    assert.equal(formatDuration(250), "250ms");
    assert.equal(formatDuration(7_000), "7s");
    assert.equal(formatDuration(3_600_000), "1h");
    assert.equal(formatDuration(3_660_000), "1h 1m");
    assert.equal(formatDuration(90_061_000), "1d 1h");
  });
});

describe("verifyChain", () => {
  it("accepts a good chain and names the failing link otherwise", async () => {
    const pki = await createTestPki();
    const other = await createFreshPki();
    const good = await pki.issue(ID);
    assert.ok(verifyChain(good.chainPem, good.rootsPem).ok);
    // Without the root in the presented chain it still verifies against the roots.
    assert.ok(verifyChain(good.chainPem.slice(0, 1), good.rootsPem).ok);
    const r = verifyChain(good.chainPem.slice(0, 1), [other.rootPem]);
    assert.match(r.ok ? "" : r.reason, /the leaf \(issuer .*\) is not issued by any trusted root/);
    const swapped = verifyChain([good.chainPem[0]!, other.rootPem], [other.rootPem]);
    assert.match(swapped.ok ? "" : swapped.reason, /^the leaf: not issued by/);
    assert.match(((r) => (r.ok ? "" : r.reason))(verifyChain([], good.rootsPem)), /empty/);
  });

  it("follows intermediates and checks each certificate's validity", async () => {
    const root = await CertificateAuthority.create();
    const intermediate = await root.createIntermediate({ commonName: "Test intermediate" });
    const chain = await intermediate.sign((await createCsr(ID)).csrPem, { identity: ID });
    assert.equal(chain.length, 3);
    assert.equal(chain[2], root.rootPem);
    assert.ok(verifyChain(chain, root.roots()).ok);
    const skipped = verifyChain([chain[0]!, chain[2]], root.roots());
    assert.match(skipped.ok ? "" : skipped.reason, /^the leaf: not issued by "O=cluster\.local"/);

    // An intermediate that expired an hour ago (made with a clock set two years back): leaves it
    // issues end with it, and verification reports the expiry.
    const past = Date.now() - 2 * 365 * 24 * 3600_000;
    const oldRoot = await CertificateAuthority.create({ now: () => past });
    const oldIntermediate = await oldRoot.createIntermediate({
      ttlSeconds: 2 * 365 * 24 * 3600 - 3600,
    });
    const stale = await oldIntermediate.issue({
      publicKeyPem: (await generateKey()).publicKeyPem,
      uris: [ID],
      notBefore: new Date(past),
      notAfter: new Date(Date.now() + 3600_000),
    });
    assert.equal(
      new X509Certificate(stale[0]!).validToDate.getTime(),
      new X509Certificate(stale[1]!).validToDate.getTime(),
    );
    const r = verifyChain(stale, oldRoot.roots());
    assert.match(r.ok ? "" : r.reason, /^the leaf is expired 1h ago/);
    assert.ok(verifyChain(stale, oldRoot.roots(), { now: past + 3600_000 }).ok);
  });

  it("refuses a leaf as an issuer", async () => {
    const root = await CertificateAuthority.create();
    const { publicKeyPem, privateKeyPem } = await generateKey();
    const leaf = await root.issue({ publicKeyPem, uris: [ID] });
    assert.throws(
      () =>
        CertificateAuthority.fromPem({
          caCertPem: leaf[0]!,
          caKeyPem: privateKeyPem,
          rootCertPem: root.rootPem,
        }),
      { code: "CA_FILE_INVALID", message: /is not a CA certificate/ },
    );
  });
});

describe("workloadCertificateFromChain", () => {
  it("checks the identity and the key like ztunnel does", async () => {
    const pki = await createTestPki();
    const id = parseIdentity(ID);
    assert.ok(id.ok);
    const { csrPem, privateKeyPem } = await createCsr(ID);
    const chain = await pki.ca.sign(csrPem, { identity: ID });
    const ok = workloadCertificateFromChain({
      identity: id.value,
      privateKeyPem,
      chainPem: chain,
      rootsPem: pki.ca.roots(),
    });
    assert.ok(ok.ok, ok.ok ? "" : ok.reason);
    assert.deepEqual(ok.value.chainPem, chain);
    assert.ok(ok.value.notAfter.getTime() > Date.now());

    // A chain delivered as one multi-certificate PEM is split.
    const joined = workloadCertificateFromChain({
      identity: id.value,
      privateKeyPem,
      chainPem: [chain.join("")],
      rootsPem: pki.ca.roots(),
    });
    assert.ok(joined.ok && joined.value.chainPem.length === 2);

    const other = parseIdentity("spiffe://cluster.local/ns/default/sa/other");
    assert.ok(other.ok);
    const wrongId = workloadCertificateFromChain({
      identity: other.value,
      privateKeyPem,
      chainPem: chain,
      rootsPem: [],
    });
    assert.match(
      wrongId.ok ? "" : wrongId.reason,
      /is for spiffe:\/\/cluster\.local\/ns\/default\/sa\/app, but .*sa\/other was requested/,
    );

    const otherKey = (await createCsr(ID)).privateKeyPem;
    const wrongKey = workloadCertificateFromChain({
      identity: id.value,
      privateKeyPem: otherKey,
      chainPem: chain,
      rootsPem: [],
    });
    assert.match(wrongKey.ok ? "" : wrongKey.reason, /private key does not match/);

    const empty = workloadCertificateFromChain({
      identity: id.value,
      privateKeyPem,
      chainPem: [],
      rootsPem: [],
    });
    assert.match(empty.ok ? "" : empty.reason, /empty certificate chain/);
  });

  it("tlsCredentials presents leaf and intermediates, not the root", async () => {
    const pki = await createTestPki();
    const cert = await pki.issue(ID);
    const creds = tlsCredentials(cert);
    assert.equal(creds.cert, cert.chainPem[0]);
    assert.deepEqual(creds.ca, [pki.rootPem]);
    assert.equal(creds.key, cert.privateKeyPem);
  });
});
