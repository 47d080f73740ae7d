import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import * as http2 from "node:http2";
import * as net from "node:net";
import { after, describe, it } from "node:test";
import { copyBidirectional, type CopyHandle, type CopyOptions, type CopyResult } from "./copy.ts";

const cleanups: (() => void)[] = [];

/** A tiny async queue: values pushed by event handlers, awaited by the test. */
class Queue<T> {
  readonly #values: T[] = [];
  readonly #waiters: ((v: T) => void)[] = [];
  push(v: T): void {
    const w = this.#waiters.shift();
    if (w) w(v);
    else this.#values.push(v);
  }
  next(): Promise<T> {
    if (this.#values.length > 0) return Promise.resolve(this.#values.shift()!);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}
after(() => {
  for (const c of cleanups.reverse()) c();
});

async function listen(server: net.Server | http2.Http2Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

function connect(port: number): Promise<net.Socket> {
  const s = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true, noDelay: true });
  return once(s, "connect").then(() => s);
}

/** Reads everything until EOF; resolves the bytes' SHA-256 and count. */
function drainAll(s: net.Socket | http2.Http2Stream): Promise<{ sha: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  s.on("data", (d: Buffer) => {
    hash.update(d);
    bytes += d.length;
  });
  return once(s, "end").then(() => ({ sha: hash.digest("hex"), bytes }));
}

/**
 * client → [proxy: copy(accepted, upstream)] → backend. `backend` handles the far end; the
 * proxy's copy result is resolved by the returned promise.
 */
async function tcpProxy(
  backend: (s: net.Socket) => void,
  onUpstream?: (up: net.Socket) => void,
): Promise<{
  port: number;
  results: Promise<CopyResult>[];
  handles: Queue<CopyHandle>;
}> {
  const backendServer = net.createServer({ allowHalfOpen: true }, backend);
  const backendPort = await listen(backendServer);
  const results: Promise<CopyResult>[] = [];
  const handles = new Queue<CopyHandle>();
  const proxy = net.createServer({ allowHalfOpen: true }, (down) => {
    const up = net.connect({ port: backendPort, host: "127.0.0.1", allowHalfOpen: true });
    results.push(
      new Promise((resolve) => {
        handles.push(copyBidirectional(down, up, resolve));
      }),
    );
    onUpstream?.(up);
  });
  return { port: await listen(proxy), results, handles };
}

describe("copyBidirectional between TCP sockets", () => {
  it("copies 32 MiB each way intact and counts bytes per direction", async () => {
    const size = 32 * 1024 * 1024;
    const up = randomBytes(size);
    const down = randomBytes(size);
    const backendGot: Promise<{ sha: string; bytes: number }>[] = [];
    const { port, results } = await tcpProxy((s) => {
      backendGot.push(drainAll(s));
      s.end(down);
    });
    const client = await connect(port);
    const clientGot = drainAll(client);
    client.end(up);
    const got = await clientGot;
    assert.equal(got.bytes, size);
    assert.equal(got.sha, createHash("sha256").update(down).digest("hex"));
    const atBackend = await backendGot[0]!;
    assert.equal(atBackend.sha, createHash("sha256").update(up).digest("hex"));
    const r = await results[0]!;
    assert.equal(r.sent, size);
    assert.equal(r.received, size);
    assert.equal(r.resetBy, undefined);
    assert.equal(r.error, undefined);
  });

  it("propagates a half-close: the client shuts its writes and still reads the reply", async () => {
    const { port, results } = await tcpProxy((s) => {
      const chunks: Buffer[] = [];
      s.on("data", (d: Buffer) => chunks.push(d));
      // The backend answers only after the client's FIN arrived.
      s.on("end", () => s.end(`got ${Buffer.concat(chunks).toString()}`));
    });
    const client = await connect(port);
    const reply = drainAll(client);
    const chunks: Buffer[] = [];
    client.on("data", (d: Buffer) => chunks.push(d));
    client.end("question");
    await reply;
    assert.equal(Buffer.concat(chunks).toString(), "got question");
    const r = await results[0]!;
    assert.equal(r.sent, "question".length);
    assert.equal(r.received, "got question".length);
    assert.equal(r.resetBy, undefined);
  });

  it("propagates a half-close the other way: the backend shuts first, client keeps sending", async () => {
    const { port, results } = await tcpProxy((s) => {
      s.end("hello first");
      const chunks: Buffer[] = [];
      s.on("data", (d: Buffer) => chunks.push(d));
      s.on("end", () => {
        assert.equal(Buffer.concat(chunks).toString(), "late data after your FIN");
      });
    });
    const client = await connect(port);
    const chunks: Buffer[] = [];
    client.on("data", (d: Buffer) => chunks.push(d));
    await once(client, "end");
    assert.equal(Buffer.concat(chunks).toString(), "hello first");
    client.end("late data after your FIN");
    const r = await results[0]!;
    assert.equal(r.sent, "late data after your FIN".length);
    assert.equal(r.received, "hello first".length);
    assert.equal(r.resetBy, undefined);
  });

  it("maps a TCP reset on one side to a TCP reset on the other, reported as a reset", async () => {
    const backends = new Queue<net.Socket>();
    const { port, results } = await tcpProxy((s) => {
      s.on("error", () => {});
      backends.push(s);
    });
    const client = await connect(port);
    const backendSocket = await backends.next();
    const clientError = once(client, "error");
    backendSocket.resetAndDestroy();
    const [err] = (await clientError) as [NodeJS.ErrnoException];
    assert.equal(err.code, "ECONNRESET");
    const r = await results[0]!;
    assert.equal(r.resetBy, "upstream");
    assert.equal(r.error, undefined);
  });

  it("applies backpressure: a reader that stops reading stops the writer", async () => {
    let backendSocket: net.Socket | undefined;
    const { port, results } = await tcpProxy((s) => {
      backendSocket = s;
      s.pause(); // never reads
      s.on("error", () => {});
    });
    const client = await connect(port);
    client.on("error", () => {});
    const chunk = Buffer.alloc(64 * 1024);
    let written = 0;
    const deadline = Date.now() + 1500;
    // Write until the socket refuses more and stays full for 300 ms, bounded in time.
    while (Date.now() < deadline) {
      if (client.write(chunk)) {
        written += chunk.length;
        continue;
      }
      written += chunk.length;
      const drained = await Promise.race([
        once(client, "drain").then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 300)),
      ]);
      if (!drained) break;
    }
    // Everything the client pushed sits in kernel buffers and at most a few stream buffers;
    // the proxy did not keep reading into memory.
    assert.ok(written < 64 * 1024 * 1024, `wrote ${written} bytes without backpressure`);
    assert.ok(backendSocket !== undefined);
    // The stalled copy ends when a side fails: the backend resets, the proxy's pending write
    // fails, and the reset travels to the client.
    const clientErr = once(client, "error");
    backendSocket.resetAndDestroy();
    await clientErr;
    const r = await results[0]!;
    assert.ok(r.sent <= written);
    assert.equal(r.resetBy, "upstream");
  });

  it("reports a failure that is not a disconnect as an error", async () => {
    const { port, results, handles } = await tcpProxy(
      (s) => s.on("error", () => {}),
      (up) => up.on("connect", () => up.destroy(new Error("idle timeout"))),
    );
    const client = await connect(port);
    client.on("error", () => {});
    await handles.next();
    const r = await results[0]!;
    assert.equal(r.error?.message, "idle timeout");
    assert.equal(r.resetBy, "upstream");
  });

  it("abort() resets both sides and reports the reason", async () => {
    const backends = new Queue<net.Socket>();
    const { port, results, handles } = await tcpProxy((s) => {
      s.on("error", () => {});
      backends.push(s);
    });
    const client = await connect(port);
    const backend = await backends.next();
    const handle = await handles.next();
    const clientErr = once(client, "error");
    const backendErr = once(backend, "error");
    handle.abort(new Error("policy revoked"));
    const [e1] = (await clientErr) as [NodeJS.ErrnoException];
    const [e2] = (await backendErr) as [NodeJS.ErrnoException];
    assert.equal(e1.code, "ECONNRESET");
    assert.equal(e2.code, "ECONNRESET");
    const r = await results[0]!;
    assert.equal(r.error?.message, "policy revoked");
    assert.ok(handle.done);
  });
});

describe("copyBidirectional between TCP and an HTTP/2 stream", () => {
  /**
   * app client → [proxy: copy(accepted TCP, h2 CONNECT stream)] → h2 server handler.
   * Plain-text HTTP/2 is enough to exercise stream semantics.
   */
  async function h2Proxy(
    handler: (stream: http2.ServerHttp2Stream) => void,
    options: CopyOptions = {},
  ): Promise<{
    port: number;
    results: Promise<CopyResult>[];
  }> {
    const h2server = http2.createServer();
    h2server.on("stream", (stream) => {
      stream.respond({ ":status": 200 });
      handler(stream);
    });
    const h2port = await listen(h2server);
    const session = http2.connect(`http://127.0.0.1:${h2port}`);
    cleanups.push(() => session.destroy());
    const results: Promise<CopyResult>[] = [];
    const proxy = net.createServer({ allowHalfOpen: true }, (down) => {
      const stream = session.request({ ":method": "CONNECT", ":authority": "127.0.0.1:1" });
      results.push(
        new Promise((resolve) => {
          stream.once("response", () => copyBidirectional(down, stream, resolve, options));
        }),
      );
    });
    return { port: await listen(proxy), results };
  }

  it("copies 16 MiB each way with half-close in both directions", async () => {
    const size = 16 * 1024 * 1024;
    const up = randomBytes(size);
    const down = randomBytes(size);
    const serverGot: Promise<{ sha: string; bytes: number }>[] = [];
    const { port, results } = await h2Proxy((stream) => {
      serverGot.push(drainAll(stream));
      stream.end(down);
    });
    const client = await connect(port);
    const got = drainAll(client);
    client.end(up);
    assert.equal((await got).sha, createHash("sha256").update(down).digest("hex"));
    assert.equal((await serverGot[0]!).sha, createHash("sha256").update(up).digest("hex"));
    const r = await results[0]!;
    assert.deepEqual([r.sent, r.received, r.resetBy, r.error], [size, size, undefined, undefined]);
  });

  it("maps an app TCP reset to RST_STREAM at the peer", async () => {
    const peerCodes = new Queue<number | undefined>();
    const { port, results } = await h2Proxy((stream) => {
      stream.on("error", () => {});
      stream.on("close", () => peerCodes.push(stream.rstCode));
      stream.write("ready");
    });
    const client = await connect(port);
    await once(client, "data");
    client.resetAndDestroy();
    assert.equal(await peerCodes.next(), http2.constants.NGHTTP2_CANCEL);
    const r = await results[0]!;
    assert.equal(r.resetBy, "downstream");
    assert.equal(r.error, undefined);
  });

  it("maps RST_STREAM from the peer to a TCP reset of the app socket", async () => {
    const { port, results } = await h2Proxy((stream) => {
      stream.write("ready");
      stream.once("data", () => stream.close(http2.constants.NGHTTP2_CANCEL));
    });
    const client = await connect(port);
    await once(client, "data");
    const err = once(client, "error");
    client.write("go");
    const [e] = (await err) as [NodeJS.ErrnoException];
    assert.equal(e.code, "ECONNRESET");
    const r = await results[0]!;
    assert.equal(r.resetBy, "upstream");
    assert.equal(r.error, undefined);
  });

  it("delivers data the stream buffered before the copy started", async () => {
    const h2server = http2.createServer();
    h2server.on("stream", (stream) => {
      stream.respond({ ":status": 200 });
      stream.end("early bytes");
    });
    const h2port = await listen(h2server);
    const session = http2.connect(`http://127.0.0.1:${h2port}`);
    cleanups.push(() => session.destroy());
    const stream = session.request({ ":method": "CONNECT", ":authority": "127.0.0.1:1" });
    await once(stream, "response");
    // Let the DATA and END_STREAM arrive and sit in the stream's buffer.
    await new Promise((r) => setTimeout(r, 50));
    const sink = net.createServer({ allowHalfOpen: true });
    const sinkPort = await listen(sink);
    const accepted = once(sink, "connection");
    const up = await connect(sinkPort);
    const [peer] = (await accepted) as [net.Socket];
    const got = new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      peer.on("data", (d: Buffer) => chunks.push(d));
      peer.on("end", () => {
        resolve(Buffer.concat(chunks).toString());
        peer.end();
      });
    });
    const done = new Promise<CopyResult>((resolve) => copyBidirectional(stream, up, resolve));
    stream.end();
    assert.equal(await got, "early bytes");
    assert.equal((await done).sent, "early bytes".length);
  });
  it("with a larger high-water mark and coalesced writes, still moves 16 MiB each way intact", async () => {
    const size = 16 * 1024 * 1024;
    const up = randomBytes(size);
    const down = randomBytes(size);
    const serverGot: Promise<{ sha: string; bytes: number }>[] = [];
    const { port, results } = await h2Proxy(
      (stream) => {
        serverGot.push(drainAll(stream));
        stream.end(down);
      },
      { highWaterMark: 1024 * 1024, coalesce: true },
    );
    const client = await connect(port);
    const got = drainAll(client);
    client.end(up);
    assert.equal((await got).sha, createHash("sha256").update(down).digest("hex"));
    assert.equal((await serverGot[0]!).sha, createHash("sha256").update(up).digest("hex"));
    const r = await results[0]!;
    assert.deepEqual([r.sent, r.received, r.resetBy, r.error], [size, size, undefined, undefined]);
  });

  it("bounds what it buffers by the high-water mark when the far end stops reading", async () => {
    const hwm = 2 * 1024 * 1024;
    let serverStream: http2.ServerHttp2Stream | undefined;
    const { port, results } = await h2Proxy(
      (stream) => {
        serverStream = stream;
        stream.pause(); // never reads: its window fills, then the proxy's stream buffer
        stream.on("error", () => {});
      },
      { highWaterMark: hwm },
    );
    const client = await connect(port);
    client.on("error", () => {});
    const chunk = Buffer.alloc(256 * 1024);
    let written = 0;
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline) {
      written += chunk.length;
      if (client.write(chunk)) continue;
      const drained = await Promise.race([
        once(client, "drain").then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 300)),
      ]);
      if (!drained) break;
    }
    // HTTP/2 windows (64 KiB here), the high-water mark and a few socket buffers: bounded.
    assert.ok(written < 64 * 1024 * 1024, `wrote ${written} bytes without backpressure`);
    assert.ok(serverStream !== undefined);
    serverStream.close(http2.constants.NGHTTP2_CANCEL);
    const r = await results[0]!;
    assert.ok(r.sent <= written);
    assert.equal(r.resetBy, "upstream");
  });
});
