/**
 * HBONE's TLS rules, end to end on loopback: who is refused (wrong identity, expired, untrusted,
 * no certificate, other trust domain, no SPIFFE SAN, no h2, TLS 1.2), what the error says, and
 * what the client does not do (SNI, session resumption).
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import * as http2 from "node:http2";
import * as tls from "node:tls";
import { afterEach, describe, it } from "node:test";
import {
  HboneClient,
  HboneError,
  HboneServer,
  type InboundRequest,
} from "../../src/lib/hbone/index.ts";
import { secureContextOptions } from "../../src/lib/hbone/tls.ts";
import { parseIdentity, type WorkloadCertificate } from "../../src/lib/identity/index.ts";
import { createTestPki, createUntrustedPki } from "../../src/testing/pki.ts";
import {
  CLIENT_ID,
  Cleanup,
  SERVER_ID,
  app,
  connectingHook,
  echo,
  listen,
  rawTls,
  readAll,
  waitFor,
} from "./hbone-fixtures.ts";

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function id(s: string) {
  const r = parseIdentity(s);
  assert.ok(r.ok);
  return r.value;
}

/** A server presenting `serverCert`; records every request its hook sees. */
async function serverWith(serverCert: WorkloadCertificate) {
  const seen: InboundRequest[] = [];
  const server = new HboneServer({
    certificate: serverCert,
    hook: connectingHook((req) => {
      seen.push(req);
      return undefined;
    }),
  });
  const { port } = await server.listen({ port: 0, host: "127.0.0.1" });
  cleanup.add(() => server.close());
  return { server, port, seen };
}

function clientWith(
  cert: WorkloadCertificate,
  extra: { idleTimeoutMs?: number } = {},
): HboneClient {
  const client = new HboneClient({ certificates: () => cert, ...extra });
  cleanup.add(() => client.close());
  return client;
}

async function connectError(
  client: HboneClient,
  port: number,
  opts: { source?: string; expected?: string[]; authority?: string } = {},
): Promise<HboneError> {
  const err = await client
    .connect({
      source: id(opts.source ?? CLIENT_ID),
      expected: (opts.expected ?? [SERVER_ID]).map(id),
      destination: `127.0.0.1:${port}`,
      authority: opts.authority ?? "127.0.0.1:9",
    })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  assert.ok(err instanceof HboneError, `expected an HboneError, got ${String(err)}`);
  return err;
}

describe("HBONE TLS: the client checks the server", () => {
  it("refuses a server whose SAN is not expected, naming both", async () => {
    const pki = await createTestPki();
    const { port, seen } = await serverWith(await pki.issue(SERVER_ID));
    const client = clientWith(await pki.issue(CLIENT_ID));
    const expected = "spiffe://cluster.local/ns/payments/sa/ledger";
    const err = await connectError(client, port, { expected: [expected] });
    assert.equal(err.code, "HBONE_IDENTITY_MISMATCH");
    assert.ok(err.message.includes(SERVER_ID), err.message);
    assert.ok(err.message.includes(expected), err.message);
    assert.equal(seen.length, 0);
  });

  it("accepts a server presenting any one of several expected identities", async () => {
    const pki = await createTestPki();
    const upstream = await app(cleanup, echo);
    const { port } = await serverWith(await pki.issue(SERVER_ID));
    const client = clientWith(await pki.issue(CLIENT_ID));
    const t = await client.connect({
      source: id(CLIENT_ID),
      expected: [id("spiffe://cluster.local/ns/x/sa/waypoint"), id(SERVER_ID)],
      destination: `127.0.0.1:${port}`,
      authority: `127.0.0.1:${upstream.port}`,
    });
    const reply = readAll(t.stream);
    t.stream.end("ok");
    assert.equal(await reply, "ok");
  });

  it("refuses an expired server certificate", async () => {
    const pki = await createTestPki();
    const { port, seen } = await serverWith(await pki.issueExpired(SERVER_ID));
    const client = clientWith(await pki.issue(CLIENT_ID));
    const err = await connectError(client, port);
    assert.equal(err.code, "HBONE_TLS_FAILED");
    assert.match(err.message, /expired/);
    assert.equal(seen.length, 0);
  });

  it("refuses a server certificate from an untrusted root", async () => {
    const pki = await createTestPki();
    const untrusted = await createUntrustedPki();
    const { port, seen } = await serverWith(await untrusted.issue(SERVER_ID));
    const client = clientWith(await pki.issue(CLIENT_ID));
    const err = await connectError(client, port);
    assert.equal(err.code, "HBONE_TLS_FAILED");
    assert.match(err.message, /certificate/);
    assert.equal(seen.length, 0);
  });

  it("refuses a peer that does not speak h2", async () => {
    const pki = await createTestPki();
    const serverCert = await pki.issue(SERVER_ID);
    // A TLS server that negotiates no ALPN at all (not an HBONE port).
    const plain = tls.createServer(secureContextOptions(serverCert));
    plain.on("secureConnection", (s: tls.TLSSocket) => s.end());
    const port = await listen(plain, cleanup);
    const client = clientWith(await pki.issue(CLIENT_ID));
    const err = await connectError(client, port);
    assert.equal(err.code, "HBONE_ALPN");
    assert.match(err.message, /did not negotiate HTTP\/2/);
  });

  it("sends no SNI and never resumes a TLS session", async () => {
    const pki = await createTestPki();
    const serverCert = await pki.issue(SERVER_ID);
    const handshakes: { servername: string | false | null; resumed: boolean }[] = [];
    const spy = tls.createServer({
      ...secureContextOptions(serverCert),
      ALPNProtocols: ["h2"],
      requestCert: true,
    });
    spy.on("secureConnection", (s: tls.TLSSocket) => {
      handshakes.push({ servername: s.servername, resumed: s.isSessionReused() });
      const session = http2.performServerHandshake(s);
      session.on("stream", (stream) => {
        stream.respond({ ":status": 200 });
        stream.end();
      });
    });
    const port = await listen(spy, cleanup);
    const client = clientWith(await pki.issue(CLIENT_ID), { idleTimeoutMs: 100 });
    for (let i = 0; i < 2; i++) {
      const t = await client.connect({
        source: id(CLIENT_ID),
        expected: [id(SERVER_ID)],
        destination: `127.0.0.1:${port}`,
        authority: "198.18.0.1:80",
      });
      t.stream.end();
      await once(t.stream, "close");
      // Let the idle pool close the connection so the next tunnel needs a new handshake.
      await waitFor(() => client.stats().connections === 0, "the idle connection to close");
    }
    assert.equal(handshakes.length, 2);
    for (const h of handshakes) {
      assert.equal(h.servername, false);
      assert.equal(h.resumed, false);
    }
  });
});

describe("HBONE TLS: the server checks the client", () => {
  it("refuses an expired client certificate", async () => {
    const pki = await createTestPki();
    const { port, seen, server } = await serverWith(await pki.issue(SERVER_ID));
    const client = clientWith(await pki.issueExpired(CLIENT_ID));
    const err = await connectError(client, port);
    assert.equal(err.code, "HBONE_STREAM_FAILED");
    assert.match(err.message, /refused the client certificate/);
    assert.equal(seen.length, 0);
    assert.equal(server.stats().connections, 0);
  });

  it("refuses a client certificate from an untrusted root", async () => {
    const pki = await createTestPki();
    const untrusted = await createUntrustedPki();
    const { port, seen } = await serverWith(await pki.issue(SERVER_ID));
    const clientCert = await untrusted.issue(CLIENT_ID);
    // The client itself trusts the server's root; only its own certificate is foreign.
    const client = clientWith({ ...clientCert, rootsPem: [pki.rootPem] });
    const err = await connectError(client, port);
    assert.equal(err.code, "HBONE_STREAM_FAILED");
    assert.equal(seen.length, 0);
  });

  it("refuses a client without a certificate", async () => {
    const pki = await createTestPki();
    const { port, seen, server } = await serverWith(await pki.issue(SERVER_ID));
    const s = await rawTls(port, undefined, [pki.rootPem], cleanup);
    // TLS 1.3: the client finishes first; the server's refusal arrives as an alert.
    const [err] = (await once(s, "error")) as [NodeJS.ErrnoException];
    assert.match(err.code ?? "", /CERTIFICATE_REQUIRED/);
    assert.equal(seen.length, 0);
    assert.equal(server.stats().connections, 0);
  });

  it("refuses a client of another trust domain even when its root is trusted", async () => {
    const pki = await createTestPki();
    const other = await createTestPki({ trustDomain: "other.example" });
    const upstream = await app(cleanup, echo);
    const serverCert = await pki.issue(SERVER_ID);
    // The server trusts both roots (several roots, as during a root rotation).
    const { port, seen } = await serverWith({
      ...serverCert,
      rootsPem: [pki.rootPem, other.rootPem],
    });
    const foreign = await other.issue("spiffe://other.example/ns/client/sa/client");
    const foreignClient = clientWith({ ...foreign, rootsPem: [pki.rootPem] });
    const err = await connectError(foreignClient, port, {
      source: "spiffe://other.example/ns/client/sa/client",
    });
    assert.equal(err.code, "HBONE_STREAM_FAILED");
    assert.equal(seen.length, 0);
    // A client of the server's own trust domain is served by the same server.
    const local = clientWith(await pki.issue(CLIENT_ID));
    const t = await local.connect({
      source: id(CLIENT_ID),
      expected: [id(SERVER_ID)],
      destination: `127.0.0.1:${port}`,
      authority: `127.0.0.1:${upstream.port}`,
    });
    t.stream.end();
    assert.equal(seen.length, 1);
  });

  it("refuses a client certificate without a SPIFFE identity", async () => {
    const pki = await createTestPki();
    const { port, seen, server } = await serverWith(await pki.issue(SERVER_ID));
    const anonymous = await pki.issueWithoutIdentity();
    const s = await rawTls(port, anonymous, [pki.rootPem], cleanup);
    await once(s, "close");
    assert.equal(seen.length, 0);
    assert.equal(server.stats().connections, 0);
  });

  it("refuses a client that does not negotiate h2", async () => {
    const pki = await createTestPki();
    const { port, seen, server } = await serverWith(await pki.issue(SERVER_ID));
    const clientCert = await pki.issue(CLIENT_ID);
    const s = await rawTls(port, clientCert, [pki.rootPem], cleanup, {
      ALPNProtocols: ["http/1.1"],
    }).catch((e: unknown) => e);
    if (s instanceof tls.TLSSocket) await once(s, "close");
    assert.equal(seen.length, 0);
    assert.equal(server.stats().connections, 0);
  });

  it("refuses TLS 1.2 unless enabled, and serves it when enabled", async () => {
    const pki = await createTestPki();
    const serverCert = await pki.issue(SERVER_ID);
    const clientCert = await pki.issue(CLIENT_ID);
    const { port } = await serverWith(serverCert);
    const refused = await rawTls(port, clientCert, [pki.rootPem], cleanup, {
      maxVersion: "TLSv1.2",
    }).then(
      () => "connected",
      (e: NodeJS.ErrnoException) => e.code ?? e.message,
    );
    assert.notEqual(refused, "connected");

    const tls12 = new HboneServer({
      certificate: serverCert,
      hook: connectingHook(),
      tls: { tls12: true },
    });
    const { port: port12 } = await tls12.listen({ port: 0, host: "127.0.0.1" });
    cleanup.add(() => tls12.close());
    const s = await rawTls(port12, clientCert, [pki.rootPem], cleanup, { maxVersion: "TLSv1.2" });
    assert.equal(s.getProtocol(), "TLSv1.2");
    assert.match(s.getCipher().name, /^ECDHE-ECDSA-AES(128|256)-GCM-SHA(256|384)$/);
  });

  it("answers 400 to a method other than CONNECT and to an unparseable authority", async () => {
    const pki = await createTestPki();
    const { port, seen } = await serverWith(await pki.issue(SERVER_ID));
    const clientCert = await pki.issue(CLIENT_ID);
    const s = await rawTls(port, clientCert, [pki.rootPem], cleanup);
    const session = http2.connect(`https://127.0.0.1:${port}`, { createConnection: () => s });
    cleanup.add(() => session.destroy());
    const status = (headers: http2.OutgoingHttpHeaders) =>
      new Promise<number | undefined>((resolve, reject) => {
        const r = session.request(headers, { endStream: true });
        r.on("response", (h) => resolve(h[":status"]));
        r.on("error", reject);
        r.resume();
      });
    assert.equal(await status({ ":method": "GET", ":path": "/", ":authority": "a:1" }), 400);
    assert.equal(await status({ ":method": "POST", ":path": "/x", ":authority": "a:1" }), 400);
    assert.equal(await status({ ":method": "CONNECT", ":authority": "no-port" }), 400);
    assert.equal(await status({ ":method": "CONNECT", ":authority": "1.2.3.4:0" }), 400);
    assert.equal(seen.length, 0);
  });
});
