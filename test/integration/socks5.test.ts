/**
 * The SOCKS5 front end on a real listener: `curl --socks5` / `--socks5-hostname` through a test
 * outbound callback that connects directly to a local HTTP server, domain targets resolved by
 * the real DNS proxy from mesh state, and raw-socket clients for the error replies, chunking,
 * pipelined data and the handshake timeout.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createServer as createHttpServer } from "node:http";
import type { Server as HttpServer } from "node:http";
import { connect, Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Registry } from "prom-client";
import { LogOutput, MemorySink } from "../../src/lib/log/index.ts";
import { applyLocalConfig, parseLocalConfig, ProxyState } from "../../src/ztunnel/state/index.ts";
import { DnsMetrics, DnsProxy } from "../../src/ztunnel/dns/index.ts";
import { Socks5Server, SOCKS5_REPLY } from "../../src/ztunnel/proxy/socks5/index.ts";
import type {
  Socks5Destination,
  Socks5Info,
  Socks5Options,
  Socks5Outbound,
} from "../../src/ztunnel/proxy/socks5/index.ts";

/** Runs curl; resolves with exit code, stdout and stderr (never rejects on a non-zero exit). */
function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("curl", ["-sS", "--max-time", "10", ...args], (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** What the outbound callback was handed. */
interface Handed {
  destination: Socks5Destination;
  hostname: string | undefined;
  leftover: string;
  replied: boolean;
}

/** The test's outbound flow: connect straight to the destination and copy both ways. */
function directOutbound(handed: Handed[]): Socks5Outbound {
  return (socket: Socket, destination: Socks5Destination, leftover: Buffer, info: Socks5Info) => {
    handed.push({
      destination,
      hostname: info.hostname,
      leftover: leftover.toString("latin1"),
      replied: info.replied,
    });
    socket.on("error", () => socket.destroy());
    const upstream = connect({ host: destination.ip, port: destination.port, allowHalfOpen: true });
    upstream.on("error", (err) => {
      info.fail(err);
      upstream.destroy();
    });
    upstream.on("connect", () => {
      info.succeed();
      if (leftover.length > 0) upstream.write(leftover);
      socket.pipe(upstream);
      upstream.pipe(socket);
    });
    socket.on("close", () => upstream.destroy());
    upstream.on("close", () => socket.destroy());
  };
}

const mesh = `
services:
- {name: echo, namespace: ns1, hostname: echo.ns1.svc.cluster.local, vips: [/127.0.0.1]}
- {name: v6only, namespace: ns1, hostname: v6only.ns1.svc.cluster.local, vips: ["/::1"]}
`;

interface Harness {
  socks: Socks5Server;
  port: number;
  handed: Handed[];
  logs: MemorySink;
}

let http: HttpServer;
let httpPort = 0;
const httpSeen: string[] = [];
let dns: DnsProxy;

async function startSocks(
  overrides: Partial<Socks5Options> = {},
  host = "127.0.0.1",
): Promise<Harness> {
  const handed: Handed[] = [];
  const logs = new MemorySink();
  const out = new LogOutput({ sink: logs });
  out.setSpec({ defaultLevel: "debug", scopes: new Map() });
  const socks = await Socks5Server.listen(
    {
      resolve: (hostname, family) => dns.lookupHost(hostname, family),
      outbound: directOutbound(handed),
      logger: out.logger("socks5"),
      ...overrides,
    },
    host,
  );
  return { socks, port: socks.address()!.port, handed, logs };
}

/** A raw client: writes `chunks` (with a pause between), returns all bytes until close or `waitMs`. */
async function raw(
  port: number,
  chunks: Buffer[],
  opts: { waitMs?: number; host?: string; gapMs?: number } = {},
): Promise<{ bytes: string; closed: boolean }> {
  const s = new Socket();
  const got: Buffer[] = [];
  let closed = false;
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, opts.waitMs ?? 2000);
    s.on("data", (c: Buffer) => got.push(c));
    s.on("error", () => {});
    s.on("close", () => {
      closed = true;
      clearTimeout(t);
      resolve();
    });
    const writeAll = async () => {
      for (const c of chunks) {
        if (s.destroyed) break;
        s.write(c);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
    };
    s.connect(port, opts.host ?? "127.0.0.1", () => void writeAll());
  });
  s.destroy();
  return { bytes: Buffer.concat(got).toString("hex"), closed };
}

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");
const reply = (code: number) => `05${code.toString(16).padStart(2, "0")}0001000000000000`;
const portHex = (p: number) => p.toString(16).padStart(4, "0");

before(async () => {
  http = createHttpServer((req, res) => {
    httpSeen.push(`${req.method} ${req.url} host=${req.headers.host}`);
    res.end(`hello from ${req.url}`);
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  httpPort = (http.address() as AddressInfo).port;
  const cfg = parseLocalConfig(mesh);
  if (!cfg.ok) assert.fail(cfg.reason.join("\n"));
  const state = new ProxyState();
  applyLocalConfig(state, cfg.value);
  dns = new DnsProxy({
    state,
    client: () => ({ namespace: "ns1", network: "" }),
    upstreams: [],
    metrics: new DnsMetrics(new Registry()),
    logger: new LogOutput({ sink: new MemorySink() }).logger("dns"),
  });
});

after(async () => {
  await dns.close();
  await new Promise<void>((r) => http.close(() => r()));
});

describe("SOCKS5 with curl", () => {
  let h: Harness;
  before(async () => {
    h = await startSocks();
  });
  after(async () => {
    await h.socks.close();
  });

  it("curl --socks5 to an IP target reaches the HTTP server", async () => {
    h.handed.length = 0;
    const r = await curl(["--socks5", `127.0.0.1:${h.port}`, `http://127.0.0.1:${httpPort}/ip`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "hello from /ip");
    assert.deepEqual(h.handed, [
      {
        destination: { ip: "127.0.0.1", port: httpPort, family: 4 },
        hostname: undefined,
        leftover: "",
        replied: true,
      },
    ]);
  });

  it("curl --socks5-hostname resolves a mesh name through the DNS proxy", async () => {
    h.handed.length = 0;
    const r = await curl([
      "--socks5-hostname",
      `127.0.0.1:${h.port}`,
      `http://echo:${httpPort}/name`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "hello from /name");
    assert.deepEqual(
      h.handed.map((x) => [x.destination, x.hostname]),
      [[{ ip: "127.0.0.1", port: httpPort, family: 4 }, "echo"]],
    );
    // The FQDN and name.namespace forms resolve too.
    for (const name of ["echo.ns1", "echo.ns1.svc.cluster.local"]) {
      const again = await curl([
        "--socks5-hostname",
        `127.0.0.1:${h.port}`,
        `http://${name}:${httpPort}/x`,
      ]);
      assert.equal(again.code, 0, again.stderr);
    }
  });

  it("a name with no A record is refused with host unreachable (4)", async () => {
    h.handed.length = 0;
    const r = await curl([
      "--socks5-hostname",
      `127.0.0.1:${h.port}`,
      `http://v6only:${httpPort}/`,
    ]);
    assert.equal(r.code, 97, `curl exit ${r.code}: ${r.stderr}`);
    assert.equal(h.handed.length, 0);
    const sent = await raw(h.port, [
      hex("05 01 00"),
      hex(`05 01 00 03 06 ${Buffer.from("v6only").toString("hex")} 0050`),
    ]);
    assert.equal(sent.bytes, "0500" + reply(SOCKS5_REPLY.hostUnreachable));
    assert.equal(sent.closed, true);
  });

  it("a name the resolver fails on gets general failure (1)", async () => {
    // Not a mesh name and no upstream: the DNS proxy answers SERVFAIL.
    const name = Buffer.from("elsewhere.example").toString("hex");
    const sent = await raw(h.port, [hex("05 01 00"), hex(`05 01 00 03 11 ${name} 0050`)]);
    assert.equal(sent.bytes, "0500" + reply(SOCKS5_REPLY.generalFailure));
  });
});

describe("SOCKS5 with raw clients", () => {
  let h: Harness;
  before(async () => {
    h = await startSocks({ handshakeTimeoutMs: 500 });
  });
  after(async () => {
    await h.socks.close();
  });

  const connectReq = () => hex(`05 01 00 01 7f000001 ${portHex(httpPort)}`);

  it("the handshake fed one byte at a time works", async () => {
    h.handed.length = 0;
    const all = Buffer.concat([
      hex("05 01 00"),
      connectReq(),
      Buffer.from("GET /bytes HTTP/1.0\r\n\r\n"),
    ]);
    const bytes = Array.from(all, (b) => Buffer.from([b]));
    const r = await raw(h.port, bytes, { gapMs: 2 });
    const text = Buffer.from(r.bytes, "hex").toString("latin1");
    assert.ok(r.bytes.startsWith("0500" + reply(0)), r.bytes);
    assert.match(text, /hello from \/bytes/);
  });

  it("greeting, request and data in one write: the data is handed over as leftover", async () => {
    h.handed.length = 0;
    const all = Buffer.concat([
      hex("05 01 00"),
      connectReq(),
      Buffer.from("GET /pipelined HTTP/1.0\r\n\r\n"),
    ]);
    const r = await raw(h.port, [all]);
    assert.match(Buffer.from(r.bytes, "hex").toString("latin1"), /hello from \/pipelined/);
    assert.equal(h.handed[0]?.leftover, "GET /pipelined HTTP/1.0\r\n\r\n");
  });

  it("a non-SOCKS5 greeting is closed without a reply", async () => {
    const r = await raw(h.port, [Buffer.from("GET / HTTP/1.1\r\n\r\n")]);
    assert.deepEqual(r, { bytes: "", closed: true });
    const v4 = await raw(h.port, [hex("04 01 0050 7f000001 00")]);
    assert.deepEqual(v4, { bytes: "", closed: true });
  });

  it("no acceptable method: 05 FF and close", async () => {
    assert.deepEqual(await raw(h.port, [hex("05 01 02")]), { bytes: "05ff", closed: true });
    assert.deepEqual(await raw(h.port, [hex("05 00")]), { bytes: "05ff", closed: true });
  });

  it("BIND and UDP ASSOCIATE: command not supported (7) and close", async () => {
    for (const cmd of ["02", "03"]) {
      const r = await raw(h.port, [hex("05 01 00"), hex(`05 ${cmd} 00 01 7f000001 0050`)]);
      assert.deepEqual(r, { bytes: "0500" + reply(7), closed: true }, `command ${cmd}`);
    }
  });

  it("an unknown address type: 8; an oversized domain: 4", async () => {
    assert.deepEqual(await raw(h.port, [hex("05 01 00 05 01 00 09 00")]), {
      bytes: "0500" + reply(8),
      closed: true,
    });
    const long = Buffer.from("a".repeat(255)).toString("hex");
    assert.deepEqual(await raw(h.port, [hex(`05 01 00 05 01 00 03 ff ${long} 0050`)]), {
      bytes: "0500" + reply(4),
      closed: true,
    });
  });

  it("garbage after a valid greeting gets a reply and close, never a crash", async () => {
    let seed = 11;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    for (let i = 0; i < 30; i++) {
      const g = Buffer.alloc(4 + rnd(40));
      for (let j = 0; j < g.length; j++) g[j] = rnd(256);
      g[1] = g[1]! === 1 ? 2 : g[1]!; // never a valid CONNECT
      const r = await raw(h.port, [hex("05 01 00"), g], { waitMs: 1500 });
      assert.equal(r.closed, true, `garbage ${g.toString("hex")}`);
    }
    const ok = await curl([
      "--socks5",
      `127.0.0.1:${h.port}`,
      `http://127.0.0.1:${httpPort}/still-up`,
    ]);
    assert.equal(ok.stdout, "hello from /still-up");
  });

  it("a stalled handshake is closed at the timeout", async () => {
    const t0 = performance.now();
    const r = await raw(h.port, [hex("05 01")], { waitMs: 3000 });
    assert.deepEqual(r, { bytes: "", closed: true });
    assert.ok(performance.now() - t0 >= 450);
    assert.ok(h.logs.lines.some((l) => l.includes("SOCKS5 handshake timed out")));
  });
});

describe("SOCKS5 options", () => {
  it("replyBeforeConnect=false reports the upstream failure: connection refused (5)", async () => {
    const h = await startSocks({ replyBeforeConnect: false });
    try {
      const closed = await new Promise<number>((resolve) => {
        const srv = createHttpServer();
        srv.listen(0, "127.0.0.1", () => {
          const p = (srv.address() as AddressInfo).port;
          srv.close(() => resolve(p));
        });
      });
      const r = await raw(h.port, [
        hex("05 01 00"),
        hex(`05 01 00 01 7f000001 ${portHex(closed)}`),
      ]);
      assert.deepEqual(r, { bytes: "0500" + reply(SOCKS5_REPLY.connectionRefused), closed: true });
      const ok = await curl([
        "--socks5",
        `127.0.0.1:${h.port}`,
        `http://127.0.0.1:${httpPort}/deferred`,
      ]);
      assert.equal(ok.stdout, "hello from /deferred");
      // Handed over before any reply; curl got its success reply from info.succeed().
      assert.equal(h.handed.at(-1)?.replied, false);
    } finally {
      await h.socks.close();
    }
  });

  it("checkTarget can refuse a target: not allowed (2)", async () => {
    const h = await startSocks({
      checkTarget: (d) => (d.port === 15001 ? SOCKS5_REPLY.notAllowed : undefined),
    });
    try {
      const r = await raw(h.port, [hex("05 01 00"), hex("05 01 00 01 7f000001 3a99")]);
      assert.deepEqual(r, { bytes: "0500" + reply(2), closed: true });
      assert.equal(h.handed.length, 0);
    } finally {
      await h.socks.close();
    }
  });

  it("an IPv6 client's domain lookups ask for AAAA, an IPv4 client's for A", async () => {
    const asked: [string, number][] = [];
    const h = await startSocks(
      {
        resolve: (hostname, family) => {
          asked.push([hostname, family]);
          return dns.lookupHost(hostname, family);
        },
      },
      "::1",
    );
    try {
      const r = await curl(["--socks5-hostname", `[::1]:${h.port}`, `http://v6only:${httpPort}/`]);
      // v6only resolves to ::1, where nothing listens on httpPort: the connection fails after
      // the success reply, so curl gets an empty reply or a reset.
      assert.notEqual(r.code, 97, r.stderr);
      assert.deepEqual(asked, [["v6only", 6]]);
      assert.deepEqual(
        h.handed.map((x) => x.destination),
        [{ ip: "::1", port: httpPort, family: 6 }],
      );
    } finally {
      await h.socks.close();
    }
    const h4 = await startSocks({
      resolve: (hostname, family) => {
        asked.push([hostname, family]);
        return dns.lookupHost(hostname, family);
      },
    });
    try {
      asked.length = 0;
      const r = await curl([
        "--socks5-hostname",
        `127.0.0.1:${h4.port}`,
        `http://echo:${httpPort}/four`,
      ]);
      assert.equal(r.stdout, "hello from /four");
      assert.deepEqual(asked, [["echo", 4]]);
    } finally {
      await h4.socks.close();
    }
  });
});
