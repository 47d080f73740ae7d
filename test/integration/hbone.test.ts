/**
 * HBONE client ↔ server on loopback with real certificates: data integrity, half-close, pooling,
 * headers, refusals and resets.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { afterEach, describe, it } from "node:test";
import { HboneError, type InboundRequest } from "../../src/lib/hbone/index.ts";
import type { CopyHandle } from "../../src/lib/net/copy.ts";
import { formatIdentity } from "../../src/lib/identity/index.ts";
import {
  CLIENT_ID,
  Cleanup,
  SERVER_ID,
  app,
  connectTcp,
  connectingHook,
  digestUntilEnd,
  echo,
  mesh,
  outboundProxy,
  readAll,
  waitFor,
} from "./hbone-fixtures.ts";

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe("HBONE tunnel", () => {
  it("carries bytes both ways and hands the hook the peer, addresses and headers", async () => {
    const seen: InboundRequest[] = [];
    const upstream = await app(cleanup, echo);
    const m = await mesh(cleanup, {
      hook: connectingHook((req) => {
        seen.push(req);
        return undefined;
      }),
    });
    const tunnel = await m.client.connect({
      source: m.clientId,
      expected: [m.serverId],
      destination: `127.0.0.1:${m.port}`,
      authority: `127.0.0.1:${upstream.port}`,
      forwarded: { for: "198.18.0.7:40000", host: "echo.server.svc.cluster.local" },
      baggage: "k8s.namespace.name=client,service.name=curl",
    });
    assert.equal(tunnel.responseHeaders[":status"], 200);
    assert.equal(tunnel.responseHeaders["baggage"], "k8s.namespace.name=server,service.name=echo");
    assert.equal(formatIdentity(tunnel.peerIdentity), SERVER_ID);
    const reply = readAll(tunnel.stream);
    tunnel.stream.end("ping");
    assert.equal(await reply, "ping");

    const req = seen[0]!;
    assert.equal(formatIdentity(req.peerIdentity), CLIENT_ID);
    assert.equal(formatIdentity(req.localIdentity), SERVER_ID);
    assert.equal(req.peerAddress.ip, "127.0.0.1");
    assert.equal(req.localAddress.port, m.port);
    assert.deepEqual(req.authority, {
      kind: "ip",
      ip: "127.0.0.1",
      family: 4,
      port: upstream.port,
    });
    assert.deepEqual(req.forwarded, {
      for: "198.18.0.7:40000",
      host: "echo.server.svc.cluster.local",
    });
    assert.equal(req.baggage.get("service.name"), "curl");
    assert.equal(req.traceparent, tunnel.traceparent);
    assert.match(tunnel.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  });

  it("moves 100 MB each way intact (SHA-256 on both ends)", async () => {
    const size = 100 * 1000 * 1000;
    const up = randomBytes(size);
    const down = randomBytes(size);
    const atApp: Promise<{ sha: string; bytes: number }>[] = [];
    const upstream = await app(cleanup, (s) => {
      atApp.push(digestUntilEnd(s));
      s.end(down);
    });
    const m = await mesh(cleanup);
    const proxy = await outboundProxy(cleanup, m, `127.0.0.1:${upstream.port}`);
    const client = await connectTcp(proxy.port);
    const atClient = digestUntilEnd(client);
    client.end(up);
    const got = await atClient;
    assert.equal(got.bytes, size);
    assert.equal(got.sha, createHash("sha256").update(down).digest("hex"));
    const sent = await atApp[0]!;
    assert.equal(sent.bytes, size);
    assert.equal(sent.sha, createHash("sha256").update(up).digest("hex"));
    const r = await proxy.results[0]!;
    assert.equal(r.sent, size);
    assert.equal(r.received, size);
    assert.equal(r.error, undefined);
  });

  it("propagates half-close from the client: it shuts its writes and still reads the reply", async () => {
    const upstream = await app(cleanup, (s) => {
      const chunks: Buffer[] = [];
      s.on("data", (d: Buffer) => chunks.push(d));
      s.on("end", () => s.end(`you said ${Buffer.concat(chunks).toString()}`));
    });
    const m = await mesh(cleanup);
    const proxy = await outboundProxy(cleanup, m, `127.0.0.1:${upstream.port}`);
    const client = await connectTcp(proxy.port);
    const reply = readAll(client);
    client.end("hello");
    assert.equal(await reply, "you said hello");
    const r = await proxy.results[0]!;
    assert.deepEqual([r.sent, r.received, r.resetBy], [5, 14, undefined]);
  });

  it("propagates half-close from the app: it shuts first and still reads the client", async () => {
    const fromClient: Promise<string>[] = [];
    const upstream = await app(cleanup, (s) => {
      fromClient.push(readAll(s));
      s.end("server speaks first");
    });
    const m = await mesh(cleanup);
    const proxy = await outboundProxy(cleanup, m, `127.0.0.1:${upstream.port}`);
    const client = await connectTcp(proxy.port);
    assert.equal(await readAll(client), "server speaks first");
    // The client's side is still open: it can keep sending after the app's FIN.
    client.end("and the client answers after");
    assert.equal(await fromClient[0]!, "and the client answers after");
    const r = await proxy.results[0]!;
    assert.equal(r.resetBy, undefined);
  });

  it("maps resets both ways: app reset → peer sees a reset; peer reset → app socket destroyed", async () => {
    // 1. The upstream app resets: the client's app socket is reset.
    const upstream = await app(cleanup, (s) => {
      s.once("data", () => s.resetAndDestroy());
    });
    const m = await mesh(cleanup);
    const proxy = await outboundProxy(cleanup, m, `127.0.0.1:${upstream.port}`);
    const client = await connectTcp(proxy.port);
    const err = once(client, "error");
    client.write("trigger");
    const [e] = (await err) as [NodeJS.ErrnoException];
    assert.equal(e.code, "ECONNRESET");
    const r = await proxy.results[0]!;
    assert.equal(r.resetBy, "upstream");
    assert.equal(r.error, undefined);

    // 2. The client app resets: the upstream app socket is reset.
    const upstreamErr = new Promise<string | undefined>((resolve) => {
      void app(cleanup, (s) => {
        s.on("error", (er: NodeJS.ErrnoException) => resolve(er.code));
        s.on("end", () => resolve("end"));
        s.write("ready");
      }).then(async (up2) => {
        const p2 = await outboundProxy(cleanup, m, `127.0.0.1:${up2.port}`);
        const c2 = await connectTcp(p2.port);
        await once(c2, "data");
        c2.resetAndDestroy();
      });
    });
    assert.equal(await upstreamErr, "ECONNRESET");
  });

  it("pools connections: 1,000 concurrent tunnels on ≥ 10 connections with one handshake per key at first", async () => {
    const upstream = await app(cleanup, echo);
    const m = await mesh(cleanup, { server: { tuning: { maxConcurrentStreams: 1000 } } });
    const n = 1000;
    const tunnels = await Promise.all(
      Array.from({ length: n }, () =>
        m.client.connect({
          source: m.clientId,
          expected: [m.serverId],
          destination: `127.0.0.1:${m.port}`,
          authority: `127.0.0.1:${upstream.port}`,
        }),
      ),
    );
    const stats = m.client.stats();
    const connections = new Set(tunnels.map((t) => t.connectionId)).size;
    assert.equal(stats.streams, n);
    assert.ok(connections >= 10, `${connections} connections for ${n} streams`);
    assert.ok(
      connections <= 14,
      `${connections} connections for ${n} streams: far more than needed`,
    );
    assert.equal(stats.handshakes, connections);
    assert.equal(m.server.stats().connections, connections);
    // No connection carries more than 100 streams.
    const perConn = new Map<number, number>();
    for (const t of tunnels) perConn.set(t.connectionId, (perConn.get(t.connectionId) ?? 0) + 1);
    assert.ok(Math.max(...perConn.values()) <= 100);
    // Every tunnel works.
    const replies = await Promise.all(
      tunnels.map((t, i) => {
        const r = readAll(t.stream);
        t.stream.end(`#${i}`);
        return r;
      }),
    );
    replies.forEach((r, i) => assert.equal(r, `#${i}`));
  });

  it("waits for a single handshake when first requests for a key arrive together", async () => {
    const upstream = await app(cleanup, echo);
    const m = await mesh(cleanup);
    const tunnels = await Promise.all(
      Array.from({ length: 50 }, () =>
        m.client.connect({
          source: m.clientId,
          expected: [m.serverId],
          destination: `127.0.0.1:${m.port}`,
          authority: `127.0.0.1:${upstream.port}`,
        }),
      ),
    );
    assert.equal(m.client.stats().handshakes, 1);
    assert.equal(new Set(tunnels.map((t) => t.connectionId)).size, 1);
    for (const t of tunnels) t.stream.close();
    // After the streams end the connection is reused, not reopened.
    await new Promise((r) => setTimeout(r, 20));
    const again = await m.client.connect({
      source: m.clientId,
      expected: [m.serverId],
      destination: `127.0.0.1:${m.port}`,
      authority: `127.0.0.1:${upstream.port}`,
    });
    assert.equal(again.connectionId, tunnels[0]!.connectionId);
    assert.equal(m.client.stats().handshakes, 1);
    again.stream.close();
  });

  it("returns non-200 answers as typed failures with the status", async () => {
    const m = await mesh(cleanup, {
      hook: connectingHook((req) =>
        req.authority.kind === "ip" && req.authority.port === 1
          ? { kind: "refuse", status: 401, reason: "denied by policy" }
          : undefined,
      ),
    });
    const base = { source: m.clientId, expected: [m.serverId], destination: `127.0.0.1:${m.port}` };
    const denied = await m.client
      .connect({ ...base, authority: "127.0.0.1:1" })
      .catch((e: unknown) => e);
    assert.ok(denied instanceof HboneError);
    assert.equal(denied.code, "HBONE_STATUS");
    assert.equal(denied.status, 401);
    // Nothing listens on this port: the hook's upstream connect fails → 503.
    const closed = await app(cleanup, () => {});
    closed.server.close();
    await once(closed.server, "close");
    const unavailable = await m.client
      .connect({ ...base, authority: `127.0.0.1:${closed.port}` })
      .catch((e: unknown) => e);
    assert.ok(unavailable instanceof HboneError);
    assert.equal(unavailable.status, 503);
    assert.match(unavailable.message, /refused with status 503/);
    const bad = await m.client
      .connect({ ...base, authority: "198.18.0.1:99999" })
      .catch((e: unknown) => e);
    assert.ok(bad instanceof HboneError);
    assert.equal(bad.status, 400);
    // The connection survived the refusals and still serves.
    const upstream = await app(cleanup, echo);
    const ok = await m.client.connect({ ...base, authority: `127.0.0.1:${upstream.port}` });
    const reply = readAll(ok.stream);
    ok.stream.end("still fine");
    assert.equal(await reply, "still fine");
    assert.equal(m.client.stats().handshakes, 1);
  });
  it("lets the hook watch a tunnel's bytes and cut it (policy revoked)", async () => {
    const upstream = await app(cleanup, echo);
    const copies: CopyHandle[] = [];
    const m = await mesh(cleanup, {
      hook: async (req) => {
        const d = await connectingHook()(req);
        return d.kind === "accept" ? { ...d, onStart: (c: CopyHandle) => copies.push(c) } : d;
      },
    });
    const t = await m.client.connect({
      source: m.clientId,
      expected: [m.serverId],
      destination: `127.0.0.1:${m.port}`,
      authority: `127.0.0.1:${upstream.port}`,
    });
    t.stream.on("error", () => {});
    t.stream.write("12345");
    await once(t.stream, "data");
    const copy = copies[0]!;
    assert.equal(copy.sent, 5);
    assert.equal(copy.received, 5);
    const closed = once(t.stream, "close");
    copy.abort(new Error("policy changed: connection no longer allowed"));
    await closed;
    assert.equal(t.stream.rstCode, 8); // RST_STREAM(CANCEL)
    await waitFor(() => upstream.sockets.every((s) => s.destroyed), "the app socket to close");
  });
});
