import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import tls from "node:tls";
import { describe, it } from "node:test";
import {
  formatIdentity,
  identitiesFromCertificate,
  identitiesFromSubjectAltName,
  pemToDer,
  tlsCredentials,
  validityAt,
  verifyChain,
} from "../lib/identity/index.ts";
import { createFreshPki, createTestPki, createUntrustedPki } from "./pki.ts";

const CLIENT = "spiffe://cluster.local/ns/default/sa/client";
const SERVER = "spiffe://cluster.local/ns/default/sa/server";

describe("test PKI", () => {
  it("issues certificates that verify against its root and carry the identity", async () => {
    const pki = await createTestPki();
    const cert = await pki.issue(CLIENT);
    assert.equal(formatIdentity(cert.identity), CLIENT);
    assert.deepEqual(cert.rootsPem, [pki.rootPem]);
    assert.equal(cert.chainPem[cert.chainPem.length - 1], pki.rootPem);
    const v = verifyChain(cert.chainPem, cert.rootsPem);
    assert.ok(v.ok, v.ok ? "" : v.reason);
    assert.deepEqual(v.value.identities.map(formatIdentity), [CLIENT]);
    assert.equal(validityAt(cert).state, "valid");
  });

  it("shares one root per process and trust domain", async () => {
    const a = await createTestPki();
    const b = await createTestPki();
    assert.equal(a.rootPem, b.rootPem);
    const other = await createTestPki({ trustDomain: "example.org" });
    assert.notEqual(other.rootPem, a.rootPem);
    const id = (await other.issue("spiffe://example.org/ns/x/sa/y")).identity;
    assert.equal(id.trustDomain, "example.org");
    assert.notEqual((await createFreshPki()).rootPem, a.rootPem);
  });

  it("makes untrusted, expired, not-yet-valid and identity-less certificates", async () => {
    const pki = await createTestPki();
    const untrusted = await createUntrustedPki();
    assert.notEqual(untrusted.rootPem, pki.rootPem);
    const foreign = await untrusted.issue(CLIENT);
    const r = verifyChain(foreign.chainPem, pki.ca.roots());
    assert.match(r.ok ? "" : r.reason, /root that is not among the trusted roots/);

    const expired = await pki.issueExpired(CLIENT, 600);
    assert.equal(validityAt(expired).state, "expired");
    assert.match(validityAt(expired).message, /^expired 10m/);
    const ev = verifyChain(expired.chainPem, pki.ca.roots());
    assert.match(ev.ok ? "verified" : ev.reason, /^the leaf is expired 10m/);

    const future = await pki.issueNotYetValid(CLIENT, 7200);
    assert.equal(validityAt(future).state, "not-yet-valid");
    assert.match(validityAt(future).message, /becomes valid in (1h 59m|2h)/);

    const nameless = await pki.issueWithoutIdentity();
    assert.deepEqual(identitiesFromCertificate(nameless.chainPem[0]!), []);
    assert.equal(new X509Certificate(nameless.chainPem[0]!).subjectAltName, "DNS:no-identity.test");
    assert.ok(verifyChain(nameless.chainPem, pki.ca.roots()).ok);

    const odd = await pki.issueWithSans({
      uris: ["https://example.com/x", "spiffe://cluster.local/ns/a/sa/b/c"],
    });
    assert.deepEqual(identitiesFromCertificate(odd.chainPem[0]!), []);
  });

  it("reads identities from PEM, DER and parsed certificates alike", async () => {
    const pki = await createTestPki();
    const cert = await pki.issue(CLIENT);
    const pem = cert.chainPem[0]!;
    for (const form of [pem, pemToDer(pem, "CERTIFICATE")!, new X509Certificate(pem)]) {
      assert.deepEqual(identitiesFromCertificate(form).map(formatIdentity), [CLIENT]);
    }
  });

  it("works for mutual TLS in Node, and the peer's identity is read from subjectaltname", async () => {
    const pki = await createTestPki();
    const server = await pki.issue(SERVER);
    const client = await pki.issue(CLIENT);
    const srv = tls.createServer({
      ...tlsCredentials(server),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.3",
    });
    const seenByServer: string[] = [];
    srv.on("secureConnection", (s) => {
      seenByServer.push(
        ...identitiesFromSubjectAltName(s.getPeerCertificate().subjectaltname).map(formatIdentity),
      );
      s.end("hi");
    });
    srv.listen(0, "127.0.0.1");
    await once(srv, "listening");
    try {
      const port = (srv.address() as AddressInfo).port;
      const sock = tls.connect({
        ...tlsCredentials(client),
        host: "127.0.0.1",
        port,
        // Identity is checked by URI SAN, not host name (INTEROP §1.3).
        checkServerIdentity: () => undefined,
      });
      await once(sock, "secureConnect");
      const serverIds = identitiesFromSubjectAltName(sock.getPeerCertificate().subjectaltname).map(
        formatIdentity,
      );
      sock.resume();
      await once(sock, "end");
      sock.destroy();
      assert.deepEqual(serverIds, [SERVER]);
      assert.deepEqual(seenByServer, [CLIENT]);
    } finally {
      srv.close();
    }
  });
});
