/**
 * HBONE connection lifecycles: graceful drain (GOAWAY, in-flight tunnels finish, forced close at
 * the deadline), HTTP/2 keepalive, certificate rotation, listeners ztunnel creates itself (fd,
 * handed-over sockets), per-connection certificates, and the client's dialer and connect timeout.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import * as net from "node:net";
import * as tls from "node:tls";
import { afterEach, describe, it } from "node:test";
import {
  HboneClient,
  HboneError,
  HboneServer,
  type DialTarget,
} from "../../src/lib/hbone/index.ts";
import { formatIdentity, parseIdentity } from "../../src/lib/identity/index.ts";
import { closeFd, createNetnsSocket } from "../../src/lib/net/index.ts";
import { secureContextOptions } from "../../src/lib/hbone/tls.ts";
import { createTestPki } from "../../src/testing/pki.ts";
import {
  CLIENT_ID,
  Cleanup,
  FLAG,
  FRAME,
  FrameCollector,
  H2_PREFACE,
  SERVER_ID,
  app,
  connectingHook,
  echo,
  listen,
  mesh,
  rawTls,
  readAll,
  settingsFrame,
  waitFor,
} from "./hbone-fixtures.ts";

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function id(s: string) {
  const r = parseIdentity(s);
  assert.ok(r.ok);
  return r.value;
}

describe("HBONE drain", () => {
  it("sends GOAWAY, lets the in-flight tunnel finish, then resolves", async () => {
    const upstream = await app(cleanup, echo);
    const m = await mesh(cleanup);
    const t = await m.client.connect({
      source: m.clientId,
      expected: [m.serverId],
      destination: `127.0.0.1:${m.port}`,
      authority: `127.0.0.1:${upstream.port}`,
    });
    const reply = readAll(t.stream);
    t.stream.write("before drain;");
    let drained = false;
    const drain = m.server.drain(10_000).then(() => {
      drained = true;
    });
    // The client saw GOAWAY: the connection left its pool, the tunnel is still open.
    await waitFor(() => m.client.stats().connections === 0, "the client to retire the connection");
    assert.equal(drained, false);
    t.stream.end("after drain");
    assert.equal(await reply, "before drain;after drain");
    await drain;
    assert.equal(m.server.stats().connections, 0);
    // New tunnels are not accepted any more.
    const err = await m.client
      .connect({
        source: m.clientId,
        expected: [m.serverId],
        destination: `127.0.0.1:${m.port}`,
        authority: `127.0.0.1:${upstream.port}`,
      })
      .catch((e: unknown) => e);
    assert.ok(err instanceof HboneError);
    assert.equal(err.code, "HBONE_CONNECT_FAILED");
  });

  it("force-closes tunnels still open at the deadline", async () => {
    const upstream = await app(cleanup, () => {});
    const m = await mesh(cleanup);
    const t = await m.client.connect({
      source: m.clientId,
      expected: [m.serverId],
      destination: `127.0.0.1:${m.port}`,
      authority: `127.0.0.1:${upstream.port}`,
    });
    t.stream.on("error", () => {});
    const closed = once(t.stream, "close");
    const started = Date.now();
    await m.server.drain(300);
    const took = Date.now() - started;
    await closed;
    assert.ok(took >= 250, `drain returned after ${took} ms, before the deadline`);
    assert.equal(m.server.stats().connections, 0);
    // The app behind the server lost its connection too.
    await waitFor(() => upstream.sockets.every((s) => s.destroyed), "the app socket to close");
  });
});

describe("HBONE keepalive", () => {
  it("tears down a connection whose peer stops answering PINGs, keeps one that answers", async () => {
    const m = await mesh(cleanup, {
      server: { tuning: { keepaliveIntervalMs: 100, keepaliveTimeoutMs: 200 } },
    });
    // A raw peer: preface and SETTINGS, then silence (no PING ACK).
    const raw = await rawTls(m.port, m.clientCert, [m.pki.rootPem], cleanup);
    const frames = new FrameCollector();
    raw.on("data", (d: Buffer) => frames.push(d));
    raw.on("error", () => {});
    raw.write(Buffer.concat([H2_PREFACE, settingsFrame([])]));
    // A well-behaved client (Node answers PINGs) on the same server.
    const upstream = await app(cleanup, echo);
    const t = await m.client.connect({
      source: m.clientId,
      expected: [m.serverId],
      destination: `127.0.0.1:${m.port}`,
      authority: `127.0.0.1:${upstream.port}`,
    });
    const started = Date.now();
    await once(raw, "close");
    const took = Date.now() - started;
    assert.ok(
      frames.frames.some((f) => f.type === FRAME.PING && (f.flags & FLAG.ACK) === 0),
      "the server sent PINGs",
    );
    assert.ok(took < 2000, `torn down after ${took} ms`);
    // The answering client is still connected and its tunnel works.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(m.server.stats().connections, 1);
    const reply = readAll(t.stream);
    t.stream.end("alive");
    assert.equal(await reply, "alive");
  });
});

describe("HBONE client keepalive", () => {
  it("drops a pooled connection whose server stops answering PINGs", async () => {
    const pki = await createTestPki();
    const serverCert = await pki.issue(SERVER_ID);
    // A TLS + h2 peer that sends its SETTINGS and then never answers anything.
    let pings = 0;
    const silent = tls.createServer({
      ...secureContextOptions(serverCert),
      ALPNProtocols: ["h2"],
      requestCert: true,
    });
    silent.on("secureConnection", (s: tls.TLSSocket) => {
      const frames = new FrameCollector();
      let preface = H2_PREFACE.length; // the client's preface comes before its first frame
      s.on("data", (d: Buffer) => {
        const skip = Math.min(preface, d.length);
        preface -= skip;
        frames.push(d.subarray(skip));
        pings = frames.frames.filter((f) => f.type === FRAME.PING).length;
      });
      s.on("error", () => {});
      s.write(settingsFrame([]));
    });
    const port = await listen(silent, cleanup);
    const client = new HboneClient({
      certificates: () => pki.issue(CLIENT_ID),
      tuning: { keepaliveIntervalMs: 100, keepaliveTimeoutMs: 200 },
    });
    cleanup.add(() => client.close());
    const attempt = client
      .connect({
        source: id(CLIENT_ID),
        expected: [id(SERVER_ID)],
        destination: `127.0.0.1:${port}`,
        authority: "198.18.0.1:80",
      })
      .catch((e: unknown) => e);
    await waitFor(() => client.stats().connections === 1, "the connection to be pooled");
    await waitFor(() => client.stats().connections === 0, "the silent connection to be dropped");
    assert.ok(pings >= 1, "the client sent PINGs");
    const err = await attempt;
    assert.ok(err instanceof HboneError);
    assert.equal(err.code, "HBONE_STREAM_FAILED");
  });
});

describe("HBONE certificate rotation", () => {
  it("presents the new certificate on new connections without dropping open ones", async () => {
    const upstream = await app(cleanup, echo);
    const m = await mesh(cleanup);
    const before = await rawTls(m.port, m.clientCert, [m.pki.rootPem], cleanup);
    const oldSerial = before.getPeerX509Certificate()!.serialNumber;
    const t = await m.client.connect({
      source: m.clientId,
      expected: [m.serverId],
      destination: `127.0.0.1:${m.port}`,
      authority: `127.0.0.1:${upstream.port}`,
    });
    const reply = readAll(t.stream);
    t.stream.write("one;");
    const rotated = await m.pki.issue(SERVER_ID);
    m.server.setCertificate(rotated);
    const after = await rawTls(m.port, m.clientCert, [m.pki.rootPem], cleanup);
    const newSerial = after.getPeerX509Certificate()!.serialNumber;
    assert.notEqual(newSerial, oldSerial);
    assert.equal(newSerial, new X509Certificate(rotated.chainPem[0]!).serialNumber);
    t.stream.end("two");
    assert.equal(await reply, "one;two");
  });
});

describe("HBONE listeners and certificates chosen per connection", () => {
  it("serves a listening fd created outside Node and sockets handed over one by one", async () => {
    const pki = await createTestPki();
    const serverCert = await pki.issue(SERVER_ID);
    const clientCert = await pki.issue(CLIENT_ID);
    const upstream = await app(cleanup, echo);
    const server = new HboneServer({ certificate: serverCert, hook: connectingHook() });
    cleanup.add(() => server.close());
    // 1. A listening socket made by the native addon (as ztunnel does inside a pod's netns).
    const sock = createNetnsSocket({
      protocol: "tcp",
      family: 4,
      bind: { address: "127.0.0.1", port: 0 },
      listen: { backlog: 128 },
    });
    let adopted = false;
    cleanup.add(() => {
      if (!adopted) closeFd(sock.fd);
    });
    const addr = await server.listen({ fd: sock.fd });
    adopted = true;
    // 2. A listener the caller owns, handing each socket to handleConnection.
    const own = net.createServer((s) => server.handleConnection(s));
    const ownPort = await listen(own, cleanup);
    const client = new HboneClient({ certificates: () => clientCert });
    cleanup.add(() => client.close());
    for (const port of [addr.port, ownPort]) {
      const t = await client.connect({
        source: id(CLIENT_ID),
        expected: [id(SERVER_ID)],
        destination: `127.0.0.1:${port}`,
        authority: `127.0.0.1:${upstream.port}`,
      });
      const reply = readAll(t.stream);
      t.stream.end(`via ${port}`);
      assert.equal(await reply, `via ${port}`);
    }
    assert.equal(server.stats().accepted, 2);
  });

  it("presents the certificate of the workload owning the local address, fetched on demand", async () => {
    const pki = await createTestPki();
    const upstream = await app(cleanup, echo);
    const ids: Record<string, string> = {
      "127.0.0.1": "spiffe://cluster.local/ns/a/sa/alpha",
      "127.0.0.2": "spiffe://cluster.local/ns/b/sa/beta",
    };
    let fetched = 0;
    const server = new HboneServer({
      certificate: async (local) => {
        fetched++;
        const who = ids[local.ip];
        if (who === undefined) throw new Error(`no workload on ${local.ip}`);
        return pki.issue(who);
      },
      hook: connectingHook(),
    });
    cleanup.add(() => server.close());
    const { port } = await server.listen({ port: 0, host: "0.0.0.0" });
    const client = new HboneClient({ certificates: async () => pki.issue(CLIENT_ID) });
    cleanup.add(() => client.close());
    for (const [ip, who] of Object.entries(ids)) {
      const t = await client.connect({
        source: id(CLIENT_ID),
        expected: [id(who)],
        destination: `${ip}:${port}`,
        authority: `127.0.0.1:${upstream.port}`,
      });
      assert.equal(formatIdentity(t.peerIdentity), who);
      t.stream.end();
    }
    assert.equal(fetched, 2);
    // A local address with no workload: the connection is closed, nothing else breaks.
    const s = net.connect({ host: "127.0.0.3", port });
    s.on("error", () => {});
    await once(s, "close");
  });
});

describe("HBONE client dialing", () => {
  it("dials through the injected dialer with the pool key's source IP", async () => {
    const upstream = await app(cleanup, echo);
    const dialed: DialTarget[] = [];
    const m = await mesh(cleanup, {
      client: {
        dial: (target) => {
          dialed.push(target);
          return net.connect({ host: target.ip, port: target.port, localAddress: target.sourceIp });
        },
      },
    });
    const t = await m.client.connect({
      source: m.clientId,
      expected: [m.serverId],
      destination: `127.0.0.1:${m.port}`,
      sourceIp: "127.0.0.5",
      authority: `127.0.0.1:${upstream.port}`,
    });
    t.stream.end();
    assert.deepEqual(dialed, [{ ip: "127.0.0.1", port: m.port, sourceIp: "127.0.0.5" }]);
  });

  it("times out a TCP connect that never completes, hinting at a NetworkPolicy", async () => {
    // A listener that never accepts and has no backlog: further SYNs go unanswered.
    let blackhole: { fd: number; port: number } | undefined;
    for (let i = 0; i < 20 && blackhole === undefined; i++) {
      const port = 40000 + Math.floor(Math.random() * 20000);
      try {
        const s = createNetnsSocket({
          protocol: "tcp",
          family: 4,
          bind: { address: "127.0.0.1", port },
          listen: { backlog: 0 },
        });
        blackhole = { fd: s.fd, port };
      } catch {
        // Port in use: try another.
      }
    }
    assert.ok(blackhole !== undefined);
    cleanup.add(() => closeFd(blackhole.fd));
    // Fill the accept queue so the next connects hang in SYN_SENT.
    const fillers: net.Socket[] = [];
    for (let i = 0; i < 4; i++) {
      const f = net.connect({ host: "127.0.0.1", port: blackhole.port });
      f.on("error", () => {});
      fillers.push(f);
    }
    cleanup.add(() => fillers.forEach((f) => f.destroy()));
    await new Promise((r) => setTimeout(r, 100));
    const m = await mesh(cleanup, { client: { connectTimeoutMs: 300 } });
    const err = await m.client
      .connect({
        source: m.clientId,
        expected: [m.serverId],
        destination: `127.0.0.1:${blackhole.port}`,
        authority: "127.0.0.1:80",
      })
      .catch((e: unknown) => e);
    assert.ok(err instanceof HboneError);
    assert.equal(err.code, "HBONE_CONNECT_TIMEOUT");
    assert.match(err.message, /maybe a NetworkPolicy is blocking HBONE port/);
  });
});
