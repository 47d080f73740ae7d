import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { createCsr, parseIdentity, type Identity } from "../../lib/identity/index.ts";
import { createTestPki, type TestPki } from "../../testing/pki.ts";
import { certificateFromCaResponse } from "./chain.ts";

function id(s: string): Identity {
  const r = parseIdentity(s);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

describe("certificateFromCaResponse", () => {
  let pki: TestPki;
  const alice = id("spiffe://cluster.local/ns/a/sa/alice");
  before(async () => {
    pki = await createTestPki();
  });

  it("reads leaf first, root last (istiod's answer)", async () => {
    const { csrPem, privateKeyPem } = await createCsr(alice);
    const chain = await pki.ca.sign(csrPem, { identity: alice });
    const cert = certificateFromCaResponse({ identity: alice, privateKeyPem, certChain: chain });
    assert.deepEqual(cert.identity, alice);
    assert.deepEqual(cert.rootsPem, [pki.rootPem]);
    assert.deepEqual(cert.chainPem, chain.slice(0, -1), "the root is not part of the chain");
  });

  it("takes roots from root_cert when the CA sends them separately", async () => {
    const { csrPem, privateKeyPem } = await createCsr(alice);
    const chain = await pki.ca.sign(csrPem, { identity: alice });
    const cert = certificateFromCaResponse({
      identity: alice,
      privateKeyPem,
      certChain: chain.slice(0, -1),
      rootCerts: [pki.rootPem],
    });
    assert.deepEqual(cert.rootsPem, [pki.rootPem]);
  });

  it("splits several roots concatenated in the last element", async () => {
    const other = await pki.ca.createIntermediate();
    const { csrPem, privateKeyPem } = await createCsr(alice);
    const chain = await pki.ca.sign(csrPem, { identity: alice });
    const roots = pki.rootPem + other.signingCertificatePem;
    const cert = certificateFromCaResponse({
      identity: alice,
      privateKeyPem,
      certChain: [...chain.slice(0, -1), roots],
    });
    assert.equal(cert.rootsPem.length, 2);
  });

  it("refuses a leaf for another identity, a lone leaf, and an empty answer", async () => {
    const { csrPem, privateKeyPem } = await createCsr(alice);
    const bob = id("spiffe://cluster.local/ns/a/sa/bob");
    const chain = await pki.ca.sign(csrPem, { identity: bob });
    assert.throws(
      () => certificateFromCaResponse({ identity: alice, privateKeyPem, certChain: chain }),
      /leaf certificate is for spiffe:\/\/cluster.local\/ns\/a\/sa\/bob, but spiffe:\/\/cluster.local\/ns\/a\/sa\/alice was requested/,
    );
    assert.throws(
      () => certificateFromCaResponse({ identity: alice, privateKeyPem, certChain: [chain[0]!] }),
      /only a leaf/,
    );
    assert.throws(
      () => certificateFromCaResponse({ identity: alice, privateKeyPem, certChain: [] }),
      /no certificate/,
    );
  });
});
