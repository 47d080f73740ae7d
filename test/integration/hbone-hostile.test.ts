/**
 * Hostile HBONE peers: garbage instead of TLS or HTTP/2, oversized header lists, a flood of
 * streams beyond the advertised limit, rapid stream resets, and a peer that never reads. After
 * each: the server is up, other tunnels work, and memory is back near where it was.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import * as net from "node:net";
import { afterEach, before, describe, it } from "node:test";
import * as v8 from "node:v8";
import * as vm from "node:vm";
import type { InboundDecision, InboundRequest } from "../../src/lib/hbone/index.ts";
import {
  Cleanup,
  FLAG,
  FRAME,
  FrameCollector,
  H2_PREFACE,
  app,
  connectingHook,
  echo,
  h2Frame,
  hpackBlock,
  mesh,
  rawTls,
  readAll,
  settingsFrame,
  waitFor,
  type Mesh,
} from "./hbone-fixtures.ts";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/** Live JS heap plus Buffers, after full collections. */
function usedBytes(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

const MB = 1024 * 1024;
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const CONTINUATION = 9;
const SETTINGS_INITIAL_WINDOW_SIZE = 4;

/** A normal tunnel through the mesh works (after an attack). */
async function stillServes(m: Mesh, upstreamPort: number): Promise<void> {
  const t = await m.client.connect({
    source: m.clientId,
    expected: [m.serverId],
    destination: `127.0.0.1:${m.port}`,
    authority: `127.0.0.1:${upstreamPort}`,
  });
  const reply = readAll(t.stream);
  t.stream.end("still here");
  assert.equal(await reply, "still here");
}

/** A raw peer with a valid client certificate that has sent the preface and SETTINGS. */
async function rawPeer(m: Mesh, settings: readonly (readonly [number, number])[] = []) {
  const s = await rawTls(m.port, m.clientCert, [m.pki.rootPem], cleanup);
  const frames = new FrameCollector();
  s.on("data", (d: Buffer) => frames.push(d));
  s.on("error", () => {});
  s.write(Buffer.concat([H2_PREFACE, settingsFrame(settings)]));
  return { s, frames };
}

function connectHeaders(stream: number, authority: string, endStream = false): Buffer {
  return h2Frame(
    FRAME.HEADERS,
    FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0),
    stream,
    hpackBlock([
      [":method", "CONNECT"],
      [":authority", authority],
    ]),
  );
}

describe("HBONE server under hostile peers", () => {
  before(() => {
    // Warm up everything a first tunnel allocates once (PKI, modules, JIT) before baselines.
    gc();
  });

  it("drops garbage sent instead of TLS, and garbage sent instead of the HTTP/2 preface", async () => {
    const upstream = await app(cleanup, echo);
    const m = await mesh(cleanup);
    await stillServes(m, upstream.port);
    const baseline = usedBytes();
    for (let i = 0; i < 20; i++) {
      const s = net.connect({ host: "127.0.0.1", port: m.port });
      s.on("error", () => {});
      await once(s, "connect");
      s.resume();
      s.write(randomBytes(64 * 1024));
      await once(s, "close");
    }
    for (let i = 0; i < 20; i++) {
      const s = await rawTls(m.port, m.clientCert, [m.pki.rootPem], cleanup);
      s.on("error", () => {});
      s.resume();
      s.write(Buffer.concat([Buffer.from("GET / HTTP/1.1\r\n\r\n"), randomBytes(16 * 1024)]));
      await once(s, "close");
    }
    await waitFor(() => m.server.stats().sockets === 1, "the garbage connections to close");
    await stillServes(m, upstream.port);
    const growth = usedBytes() - baseline;
    assert.ok(growth < 10 * MB, `memory grew by ${(growth / MB).toFixed(1)} MB`);
  });

  it("refuses header lists beyond the limit without calling the hook", async () => {
    const upstream = await app(cleanup, echo);
    const seen: string[] = [];
    const m = await mesh(cleanup, {
      hook: connectingHook((req) => {
        seen.push(req.rawAuthority);
        return undefined;
      }),
    });
    const baseline = usedBytes();
    // 1. One 100 KiB header (the server accepts 64 KiB), split into HEADERS + CONTINUATIONs.
    const big = await rawPeer(m);
    const block = hpackBlock([
      [":method", "CONNECT"],
      [":authority", "127.0.0.1:1"],
      ["x-padding", "a".repeat(100 * 1024)],
    ]);
    const frames: Buffer[] = [];
    for (let off = 0; off < block.length; off += 16 * 1024) {
      const last = off + 16 * 1024 >= block.length;
      frames.push(
        h2Frame(
          off === 0 ? FRAME.HEADERS : CONTINUATION,
          last ? FLAG.END_HEADERS : 0,
          1,
          block.subarray(off, off + 16 * 1024),
        ),
      );
    }
    big.s.write(Buffer.concat(frames));
    // 2. Many small headers (more pairs than the server takes).
    const many = await rawPeer(m);
    const pairs: [string, string][] = [
      [":method", "CONNECT"],
      [":authority", "127.0.0.1:2"],
    ];
    for (let i = 0; i < 2000; i++) pairs.push([`x-h${i}`, "v"]);
    const manyBlock = hpackBlock(pairs);
    const manyFrames: Buffer[] = [];
    for (let off = 0; off < manyBlock.length; off += 16 * 1024) {
      const last = off + 16 * 1024 >= manyBlock.length;
      manyFrames.push(
        h2Frame(
          off === 0 ? FRAME.HEADERS : CONTINUATION,
          last ? FLAG.END_HEADERS : 0,
          1,
          manyBlock.subarray(off, off + 16 * 1024),
        ),
      );
    }
    many.s.write(Buffer.concat(manyFrames));
    // Each is answered with RST_STREAM or GOAWAY, or its connection is closed.
    for (const peer of [big, many]) {
      await waitFor(
        () =>
          peer.s.destroyed ||
          peer.frames.frames.some((f) => f.type === FRAME.RST_STREAM || f.type === FRAME.GOAWAY),
        "the oversized header list to be refused",
      );
    }
    assert.deepEqual(seen, []);
    big.s.destroy();
    many.s.destroy();
    await stillServes(m, upstream.port);
    const growth = usedBytes() - baseline;
    assert.ok(growth < 10 * MB, `memory grew by ${(growth / MB).toFixed(1)} MB`);
  });

  it("resets a CONNECT carrying :scheme or :path without calling the hook", async () => {
    const upstream = await app(cleanup, echo);
    const seen: string[] = [];
    const m = await mesh(cleanup, {
      hook: connectingHook((req) => {
        seen.push(req.rawAuthority);
        return undefined;
      }),
    });
    const peer = await rawPeer(m);
    peer.s.write(
      h2Frame(
        FRAME.HEADERS,
        FLAG.END_HEADERS,
        1,
        hpackBlock([
          [":method", "CONNECT"],
          [":scheme", "https"],
          [":path", "/"],
          [":authority", `127.0.0.1:${upstream.port}`],
        ]),
      ),
    );
    await waitFor(
      () =>
        peer.s.destroyed ||
        peer.frames.frames.some(
          (f) => (f.type === FRAME.RST_STREAM && f.stream === 1) || f.type === FRAME.GOAWAY,
        ),
      "the malformed CONNECT to be reset",
    );
    assert.deepEqual(seen, []);
    await stillServes(m, upstream.port);
  });

  it("refuses streams beyond the advertised 200 and survives rapid resets", async () => {
    const upstream = await app(cleanup, echo);
    let inHook = 0;
    let maxInHook = 0;
    let calls = 0;
    const held: (() => void)[] = [];
    const m = await mesh(cleanup, {
      hook: (req: InboundRequest): Promise<InboundDecision> | InboundDecision => {
        if (req.rawAuthority !== "198.18.0.1:1") return connectingHook()(req);
        calls++;
        inHook++;
        maxInHook = Math.max(maxInHook, inHook);
        // Hold the decision until the test lets go, so streams stay open.
        return new Promise<InboundDecision>((resolve) => {
          const release = (): void => {
            inHook--;
            resolve({ kind: "refuse", status: 401, reason: "test" });
          };
          held.push(release);
          req.signal.addEventListener("abort", release, { once: true });
        });
      },
    });
    const baseline = usedBytes();
    // 1. 1,000 CONNECT streams at once on one connection.
    const flood = await rawPeer(m);
    const burst: Buffer[] = [];
    for (let i = 0; i < 1000; i++) burst.push(connectHeaders(1 + 2 * i, "198.18.0.1:1"));
    flood.s.write(Buffer.concat(burst));
    await waitFor(
      () =>
        flood.s.destroyed ||
        flood.frames.frames.some((f) => f.type === FRAME.RST_STREAM || f.type === FRAME.GOAWAY),
      "streams beyond the limit to be refused",
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(maxInHook <= 200, `${maxInHook} streams open at once, above the advertised 200`);
    assert.ok(m.server.stats().streams <= 200);
    for (const release of held.splice(0)) release();
    flood.s.destroy();

    // 2. Rapid reset: open and cancel 5,000 streams as fast as possible.
    const rapid = await rawPeer(m);
    const pairs: Buffer[] = [];
    const cancel = Buffer.alloc(4);
    cancel.writeUInt32BE(8);
    for (let i = 0; i < 5000; i++) {
      const sid = 1 + 2 * i;
      pairs.push(connectHeaders(sid, "198.18.0.1:1"), h2Frame(FRAME.RST_STREAM, 0, sid, cancel));
    }
    rapid.s.write(Buffer.concat(pairs));
    await new Promise((r) => setTimeout(r, 500));
    for (const release of held.splice(0)) release();
    rapid.s.destroy();
    await waitFor(() => m.server.stats().streams === 0, "all hostile streams to end");
    assert.ok(calls > 0);
    await stillServes(m, upstream.port);
    const growth = usedBytes() - baseline;
    assert.ok(growth < 20 * MB, `memory grew by ${(growth / MB).toFixed(1)} MB`);
  });

  it("does not buffer without bound for a peer that never reads", async () => {
    const echoApp = await app(cleanup, echo);
    // An app that sends as fast as its socket lets it, for as long as the test runs.
    let produced = 0;
    let stop = false;
    const chunk = Buffer.alloc(256 * 1024, 7);
    const firehose = await app(cleanup, (s) => {
      const pump = (): void => {
        while (!stop && !s.destroyed) {
          produced += chunk.length;
          if (!s.write(chunk)) {
            s.once("drain", pump);
            return;
          }
        }
      };
      pump();
    });
    // A short keepalive: a peer that vanishes while the server's writes are stalled is only
    // noticed by the unanswered PING (the same holds for ztunnel).
    const m = await mesh(cleanup, {
      server: { tuning: { keepaliveIntervalMs: 250, keepaliveTimeoutMs: 500 } },
    });
    await stillServes(m, echoApp.port);
    const baseline = usedBytes();
    // The peer opens every window as wide as HTTP/2 allows, asks for the firehose, then stops
    // reading its socket.
    const max = 2 ** 31 - 1;
    const peer = await rawPeer(m, [[SETTINGS_INITIAL_WINDOW_SIZE, max]]);
    const inc = Buffer.alloc(4);
    inc.writeUInt32BE(max - 65535);
    peer.s.write(
      Buffer.concat([
        h2Frame(FRAME.WINDOW_UPDATE, 0, 0, inc),
        connectHeaders(1, `127.0.0.1:${firehose.port}`),
      ]),
    );
    await waitFor(() => produced > 0, "the firehose to start");
    peer.s.pause();
    let peak = 0;
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      const m2 = process.memoryUsage();
      peak = Math.max(peak, m2.heapUsed + m2.external);
    }
    const producedWhileStalled = produced;
    // Kernel socket buffers on three loopback hops plus a few stream buffers: tens of MB at most,
    // while an unbounded proxy would have taken gigabytes in three seconds.
    assert.ok(
      producedWhileStalled < 128 * MB,
      `the app could push ${(producedWhileStalled / MB).toFixed(0)} MB into a peer that reads nothing`,
    );
    assert.ok(
      peak - baseline < 100 * MB,
      `memory peaked ${((peak - baseline) / MB).toFixed(1)} MB above baseline`,
    );
    stop = true;
    peer.s.destroy();
    await waitFor(() => m.server.stats().streams === 0, "the stalled tunnel to end");
    await stillServes(m, echoApp.port);
    const growth = usedBytes() - baseline;
    assert.ok(growth < 10 * MB, `memory stayed ${(growth / MB).toFixed(1)} MB above baseline`);
  });
});
