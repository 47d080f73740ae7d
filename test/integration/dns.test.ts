/**
 * The DNS proxy on real UDP and TCP sockets on 127.0.0.1, queried with dns-packet and with Node's
 * own resolver (c-ares), forwarding to a fake upstream DNS server started here. Checks what a pod
 * sees: answers, flags, ids, truncation and TCP retry, SERVFAIL on upstream failure, and the
 * metric values after the queries.
 */
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import type { Socket as UdpSocket } from "node:dgram";
import { Resolver } from "node:dns/promises";
import { createServer, Socket } from "node:net";
import type { AddressInfo, Server } from "node:net";
import { after, before, describe, it } from "node:test";
import * as dnsPacket from "dns-packet";
import { Registry } from "prom-client";
import { LogOutput, MemorySink } from "../../src/lib/log/index.ts";
import { applyLocalConfig, parseLocalConfig, ProxyState } from "../../src/ztunnel/state/index.ts";
import { DnsMetrics, DnsProxy } from "../../src/ztunnel/dns/index.ts";
import type { DnsClient, DnsProxyOptions, UpstreamServer } from "../../src/ztunnel/dns/index.ts";
import { DnsTcpDecoder, frame } from "../../src/ztunnel/dns/tcp-framing.ts";

type Decoded = dnsPacket.DecodedPacket & { rcode: string };
const decode = (b: Buffer) => dnsPacket.decode(b) as Decoded;

// ------------------------------------------------------------------ fixtures

const manyVips = Array.from({ length: 100 }, (_, i) => `/198.18.60.${i + 1}`).join(", ");

const mesh = `
services:
- {name: productpage, namespace: ns1, hostname: productpage.ns1.svc.cluster.local, vips: [/198.18.9.9], ports: {9080: 9080}}
- {name: many, namespace: ns1, hostname: many.ns1.svc.cluster.local, vips: [${manyVips}]}
- {name: www.example.com, namespace: ns1, hostname: www.example.com, vips: [/198.18.1.1]}
`;

function meshState(): ProxyState {
  const cfg = parseLocalConfig(mesh);
  if (!cfg.ok) assert.fail(cfg.reason.join("\n"));
  const s = new ProxyState();
  applyLocalConfig(s, cfg.value);
  return s;
}

const client: DnsClient = {
  name: "client",
  namespace: "ns1",
  network: "",
  canonicalName: "client-app",
  canonicalRevision: "v1",
};

/** What the fake upstream answers: records per "<name> <type>", or a special behaviour. */
type Behaviour = "nxdomain" | "silent" | { a: string[] };

/** A fake upstream resolver on 127.0.0.1 (UDP + TCP on one port). */
class FakeUpstream {
  readonly seen: {
    protocol: "udp" | "tcp";
    id: number;
    name: string;
    type: string;
    edns: boolean;
  }[] = [];
  readonly #zone: Map<string, Behaviour>;
  #udp: UdpSocket | undefined;
  #tcp: Server | undefined;
  port = 0;

  constructor(zone: Record<string, Behaviour>) {
    this.#zone = new Map(Object.entries(zone));
  }

  async start(): Promise<this> {
    const tcp = createServer((s) => this.#onTcp(s));
    await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
    this.port = (tcp.address() as AddressInfo).port;
    const udp = createSocket("udp4");
    udp.on("message", (m, rinfo) => {
      const reply = this.#answer(m, "udp");
      if (reply !== undefined) udp.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => udp.bind(this.port, "127.0.0.1", r));
    this.#udp = udp;
    this.#tcp = tcp;
    return this;
  }

  get server(): UpstreamServer {
    return { address: "127.0.0.1", port: this.port };
  }

  #onTcp(s: Socket): void {
    const d = new DnsTcpDecoder();
    s.on("error", () => s.destroy());
    s.on("data", (chunk: Buffer) =>
      d.push(chunk, (m) => {
        const reply = this.#answer(m, "tcp");
        if (reply !== undefined) s.write(frame(reply));
      }),
    );
  }

  #answer(raw: Buffer, protocol: "udp" | "tcp"): Buffer | undefined {
    const q = decode(raw);
    const question = q.questions![0]!;
    const edns = (q.additionals ?? []).find((a): a is dnsPacket.OptAnswer => a.type === "OPT");
    this.seen.push({
      protocol,
      id: q.id!,
      name: question.name,
      type: question.type,
      edns: edns !== undefined,
    });
    const b = this.#zone.get(`${question.name.toLowerCase()} ${question.type}`);
    if (b === "silent") return undefined;
    const base = { type: "response" as const, id: q.id!, questions: [question] };
    if (b === undefined || b === "nxdomain") {
      return dnsPacket.encode({ ...base, flags: dnsPacket.RECURSION_AVAILABLE | 3 });
    }
    const answers: dnsPacket.Answer[] = b.a.map((ip) => ({
      name: question.name,
      type: "A",
      ttl: 300,
      data: ip,
    }));
    const full = dnsPacket.encode({ ...base, flags: dnsPacket.RECURSION_AVAILABLE, answers });
    const limit = edns ? edns.udpPayloadSize : 512;
    if (protocol === "udp" && full.length > limit) {
      return dnsPacket.encode({
        ...base,
        flags: dnsPacket.RECURSION_AVAILABLE | dnsPacket.TRUNCATED_RESPONSE,
      });
    }
    return full;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.#udp ? this.#udp.close(() => r()) : r()));
    await new Promise<void>((r) => (this.#tcp ? this.#tcp.close(() => r()) : r()));
  }
}

// ------------------------------------------------------------------ a small DNS client

let nextId = 1;

function queryPacket(
  name: string,
  type: dnsPacket.RecordType = "A",
  opts: { id?: number; edns?: number } = {},
): Buffer {
  return dnsPacket.encode({
    type: "query",
    id: opts.id ?? nextId++,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: "IN" }],
    additionals:
      opts.edns === undefined
        ? []
        : [
            {
              name: ".",
              type: "OPT",
              udpPayloadSize: opts.edns,
              extendedRcode: 0,
              ednsVersion: 0,
              flags: 0,
              flag_do: false,
              options: [],
            },
          ],
  });
}

/** Sends raw bytes over UDP; resolves with the reply, or undefined after `waitMs`. */
async function udpExchange(port: number, raw: Buffer, waitMs = 3000): Promise<Buffer | undefined> {
  const s = createSocket("udp4");
  try {
    return await new Promise<Buffer | undefined>((resolve, reject) => {
      const t = setTimeout(() => resolve(undefined), waitMs);
      s.on("message", (m) => {
        clearTimeout(t);
        resolve(m);
      });
      s.on("error", reject);
      s.send(raw, port, "127.0.0.1");
    });
  } finally {
    s.close();
  }
}

async function udpQuery(
  port: number,
  name: string,
  type: dnsPacket.RecordType = "A",
  edns?: number,
) {
  const raw = queryPacket(name, type, edns === undefined ? {} : { edns });
  const reply = await udpExchange(port, raw);
  assert.ok(reply, `no UDP reply for ${name}`);
  return { sentId: raw.readUInt16BE(0), size: reply.length, msg: decode(reply) };
}

/**
 * Opens a TCP connection, writes `chunks` (each written separately), and collects `expect`
 * replies (or until the server closes).
 */
async function tcpExchange(port: number, chunks: Buffer[], expect: number, timeoutMs = 5000) {
  const s = new Socket();
  const replies: Decoded[] = [];
  let closed = false;
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`timeout: got ${replies.length}/${expect} replies`)),
        timeoutMs,
      );
      const d = new DnsTcpDecoder();
      s.on("data", (c: Buffer) =>
        d.push(c, (m) => {
          replies.push(decode(m));
          if (replies.length === expect) {
            clearTimeout(t);
            resolve();
          }
        }),
      );
      s.on("close", () => {
        closed = true;
        clearTimeout(t);
        resolve();
      });
      s.on("error", () => {});
      s.connect(port, "127.0.0.1", () => {
        for (const c of chunks) s.write(c);
      });
    });
  } finally {
    s.destroy();
  }
  return { replies, closed };
}

async function tcpQuery(port: number, name: string, type: dnsPacket.RecordType = "A") {
  const raw = queryPacket(name, type);
  const { replies } = await tcpExchange(port, [frame(raw)], 1);
  assert.equal(replies.length, 1);
  return { sentId: raw.readUInt16BE(0), msg: replies[0]! };
}

const aData = (m: Decoded) =>
  (m.answers ?? []).filter((a) => a.type === "A").map((a) => (a as dnsPacket.StringAnswer).data);

// ------------------------------------------------------------------ setup

interface Harness {
  proxy: DnsProxy;
  port: number;
  registry: Registry;
  logs: MemorySink;
}

async function startProxy(overrides: Partial<DnsProxyOptions> = {}): Promise<Harness> {
  const registry = new Registry();
  const logs = new MemorySink();
  const out = new LogOutput({ sink: logs });
  out.setSpec({ defaultLevel: "debug", scopes: new Map() });
  const proxy = await DnsProxy.listen(
    {
      state: meshState(),
      client: () => client,
      upstreams: [],
      metrics: new DnsMetrics(registry),
      logger: out.logger("dns"),
      upstreamTimeoutMs: 300,
      ...overrides,
    },
    "127.0.0.1",
  );
  const port = proxy.addresses().udp[0]!.port;
  assert.equal(proxy.addresses().tcp[0]!.port, port);
  return { proxy, port, registry, logs };
}

/** `value` of one sample line of a metric, or 0 when absent. */
async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const json = await registry.getMetricsAsJSON();
  const m = json.find((x) => x.name === name);
  if (m === undefined) return 0;
  const values = (
    m as unknown as {
      values: { value: number; labels: Record<string, string>; metricName?: string }[];
    }
  ).values;
  const hit = values.find(
    (v) =>
      (v.metricName === undefined || v.metricName === name || v.metricName === `${name}_count`) &&
      Object.entries(labels).every(([k, val]) => v.labels[k] === val) &&
      (String(m.type) !== "histogram" || v.metricName === `${name}_count`),
  );
  return hit?.value ?? 0;
}

// ------------------------------------------------------------------ tests

describe("DNS proxy: mesh names", () => {
  let h: Harness;
  before(async () => {
    h = await startProxy();
  });
  after(async () => {
    await h.proxy.close();
  });

  it("answers a short service name over UDP: VIP, authoritative, TTL 30, same id", async () => {
    const { sentId, msg } = await udpQuery(h.port, "productpage");
    assert.equal(msg.id, sentId);
    assert.equal(msg.type, "response");
    assert.equal(msg.rcode, "NOERROR");
    assert.equal(msg.flag_aa, true);
    assert.equal(msg.flag_rd, true);
    assert.equal(msg.flag_ra, true);
    assert.deepEqual(msg.questions, [{ name: "productpage", type: "A", class: "IN" }]);
    assert.deepEqual(
      (msg.answers as dnsPacket.StringAnswer[]).map((a) => [a.name, a.type, a.ttl, a.data]),
      [["productpage", "A", 30, "198.18.9.9"]],
    );
  });

  it("answers the same over TCP", async () => {
    const { sentId, msg } = await tcpQuery(h.port, "productpage.ns1.svc.cluster.local");
    assert.equal(msg.id, sentId);
    assert.deepEqual(aData(msg), ["198.18.9.9"]);
    assert.equal(msg.flag_aa, true);
  });

  it("answers Node's resolver (c-ares), following the CNAME for a search-domain name", async () => {
    const r = new Resolver({ timeout: 2000, tries: 1 });
    r.setServers([`127.0.0.1:${h.port}`]);
    assert.deepEqual(await r.resolve4("productpage.ns1"), ["198.18.9.9"]);
    assert.deepEqual(await r.resolve4("productpage.ns1.ns1.svc.cluster.local", { ttl: true }), [
      { address: "198.18.9.9", ttl: 30 },
    ]);
    assert.deepEqual(await r.resolve4("www.example.com.ns1.svc.cluster.local"), ["198.18.1.1"]);
    // A found host without AAAA records: empty NOERROR, which c-ares reports as ENODATA.
    await assert.rejects(
      r.resolve6("productpage"),
      (e: NodeJS.ErrnoException) => e.code === "ENODATA",
    );
  });

  it("adds the CNAME when a search domain was stripped", async () => {
    const { msg } = await udpQuery(h.port, "productpage.ns1.ns1.svc.cluster.local");
    assert.deepEqual(
      (msg.answers as dnsPacket.StringAnswer[]).map((a) => `${a.type} ${a.name} ${a.data}`),
      [
        "CNAME productpage.ns1.ns1.svc.cluster.local productpage.ns1",
        "A productpage.ns1 198.18.9.9",
      ],
    );
  });

  it("truncates over UDP without EDNS (TC, ≤ 512 bytes) and gives everything over TCP", async () => {
    const udp = await udpQuery(h.port, "many");
    assert.equal(udp.msg.flag_tc, true);
    assert.ok(udp.size <= 512, `${udp.size} bytes`);
    const kept = aData(udp.msg).length;
    assert.ok(kept > 0 && kept < 100, `${kept} records kept`);
    const tcp = await tcpQuery(h.port, "many");
    assert.equal(tcp.msg.flag_tc, false);
    assert.equal(aData(tcp.msg).length, 100);
    assert.deepEqual(
      [...aData(tcp.msg)].sort(),
      Array.from({ length: 100 }, (_, i) => `198.18.60.${i + 1}`).sort(),
    );
  });

  it("honours the EDNS size over UDP", async () => {
    const udp = await udpQuery(h.port, "many", "A", 4096);
    assert.equal(udp.msg.flag_tc, false);
    assert.equal(aData(udp.msg).length, 100);
    assert.ok(udp.size > 512);
    const small = await udpQuery(h.port, "many", "A", 1232);
    assert.ok(small.size <= 1232);
    assert.equal(small.msg.flag_tc, true);
  });

  it("a real client gets all 100 records (TCP retry or EDNS)", async () => {
    const r = new Resolver({ timeout: 2000, tries: 1 });
    r.setServers([`127.0.0.1:${h.port}`]);
    assert.equal((await r.resolve4("many.ns1")).length, 100);
  });

  it("answers several queries pipelined on one TCP connection, written at once or byte by byte", async () => {
    const names = ["productpage", "www.example.com", "many", "productpage.ns1"];
    const packets = names.map((n) => queryPacket(n));
    const ids = packets.map((p) => p.readUInt16BE(0)).sort();
    const all = Buffer.concat(packets.map(frame));
    const together = await tcpExchange(h.port, [all], names.length);
    assert.deepEqual(together.replies.map((r) => r.id!).sort(), ids);
    const bytes = Array.from(all, (b) => Buffer.from([b]));
    const oneByOne = await tcpExchange(h.port, bytes, names.length);
    assert.deepEqual(oneByOne.replies.map((r) => r.id!).sort(), ids);
    assert.equal(
      oneByOne.replies.find((r) => r.id === packets[0]!.readUInt16BE(0))?.answers?.length,
      1,
    );
  });

  it("answers FORMERR to malformed queries and keeps serving", async () => {
    const noQuestion = dnsPacket.encode({ type: "query", id: 4321, questions: [] });
    const formerr = await udpExchange(h.port, noQuestion);
    assert.ok(formerr);
    assert.equal(decode(formerr).rcode, "FORMERR");
    assert.equal(decode(formerr).id, 4321);
    // Shorter than a header and responses: no reply at all.
    assert.equal(await udpExchange(h.port, Buffer.from([1, 2, 3]), 300), undefined);
    const resp = dnsPacket.encode({
      type: "response",
      id: 9,
      questions: [{ name: "a", type: "A" }],
    });
    assert.equal(await udpExchange(h.port, resp, 300), undefined);
    // Random garbage of all sizes: never a crash, the proxy still answers.
    let seed = 7;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    for (let i = 0; i < 300; i++) {
      const b = Buffer.alloc(rnd(200));
      for (let j = 0; j < b.length; j++) b[j] = rnd(256);
      if (b.length > 2) b[2] = (b[2] as number) & 0x7f;
      await udpExchange(h.port, b, 20);
    }
    assert.deepEqual(aData((await udpQuery(h.port, "productpage")).msg), ["198.18.9.9"]);
  });

  it("closes a TCP connection that sends a zero-length message or a non-query", async () => {
    const zero = await tcpExchange(h.port, [Buffer.from([0, 0])], 1);
    assert.equal(zero.closed, true);
    assert.equal(zero.replies.length, 0);
    const resp = dnsPacket.encode({
      type: "response",
      id: 9,
      questions: [{ name: "a", type: "A" }],
    });
    const nonQuery = await tcpExchange(h.port, [frame(resp)], 1);
    assert.equal(nonQuery.closed, true);
    assert.equal(nonQuery.replies.length, 0);
  });

  it("resolves hosts for SOCKS5 through the same path", async () => {
    assert.deepEqual(await h.proxy.lookupHost("productpage", 4), {
      ok: true,
      addresses: ["198.18.9.9"],
    });
    assert.deepEqual(await h.proxy.lookupHost("productpage", 6), {
      ok: false,
      reason: "not-found",
      detail: "no AAAA record for productpage",
    });
    const bad = await h.proxy.lookupHost("a..b", 4);
    assert.equal(bad.ok, false);
  });

  it("logs one debug access line per query", async () => {
    h.logs.lines.length = 0;
    await udpQuery(h.port, "productpage");
    const line = h.logs.lines.find((l) => l.includes("dns request"));
    assert.ok(line, h.logs.lines.join(""));
    assert.match(
      line,
      /src\.workload=client src\.namespace=ns1 query=A domain=productpage result=success endpoints=1/,
    );
  });
});

describe("DNS proxy: forwarding", () => {
  let upstream: FakeUpstream;
  let h: Harness;
  before(async () => {
    upstream = await new FakeUpstream({
      "upstream.example.com A": { a: ["198.18.5.5"] },
      "big.example.com A": { a: Array.from({ length: 60 }, (_, i) => `198.18.70.${i + 1}`) },
      "slow.example.com A": "silent",
    }).start();
    h = await startProxy({ upstreams: () => [upstream.server] });
  });
  after(async () => {
    await h.proxy.close();
    await upstream.stop();
  });

  it("forwards unknown names and relays the answer with the client's id", async () => {
    upstream.seen.length = 0;
    const { sentId, msg } = await udpQuery(h.port, "upstream.example.com");
    assert.equal(msg.id, sentId);
    assert.equal(msg.flag_aa, false, "not authoritative: the upstream's answer");
    assert.deepEqual(aData(msg), ["198.18.5.5"]);
    assert.equal((msg.answers![0] as dnsPacket.StringAnswer).ttl, 300, "relayed unchanged");
    assert.equal(upstream.seen.length, 1);
    assert.equal(upstream.seen[0]!.name, "upstream.example.com");
    assert.equal(upstream.seen[0]!.protocol, "udp");
  });

  it("relays NXDOMAIN", async () => {
    const { msg } = await udpQuery(h.port, "nothing.example.com");
    assert.equal(msg.rcode, "NXDOMAIN");
    const r = new Resolver({ timeout: 2000, tries: 1 });
    r.setServers([`127.0.0.1:${h.port}`]);
    await assert.rejects(
      r.resolve4("nothing.example.com"),
      (e: NodeJS.ErrnoException) => e.code === "ENOTFOUND",
    );
  });

  it("forwards record types it does not answer, even for mesh names", async () => {
    upstream.seen.length = 0;
    const { msg } = await udpQuery(h.port, "productpage.ns1.svc.cluster.local", "MX");
    assert.equal(msg.rcode, "NXDOMAIN");
    assert.deepEqual(
      upstream.seen.map((s) => `${s.name} ${s.type}`),
      ["productpage.ns1.svc.cluster.local MX"],
    );
  });

  it("a truncated upstream answer reaches a UDP client truncated; a TCP client gets it in full", async () => {
    upstream.seen.length = 0;
    const udp = await udpQuery(h.port, "big.example.com");
    assert.equal(udp.msg.flag_tc, true);
    const tcp = await tcpQuery(h.port, "big.example.com");
    assert.equal(tcp.msg.id, tcp.sentId);
    assert.equal(tcp.msg.flag_tc, false);
    assert.equal(aData(tcp.msg).length, 60);
    assert.deepEqual(
      upstream.seen.map((s) => s.protocol),
      ["udp", "udp", "tcp"],
    );
  });

  it("sends the upstream a fresh id, not the client's", async () => {
    upstream.seen.length = 0;
    const ids = new Set<number>();
    for (let i = 0; i < 5; i++) {
      const raw = queryPacket("upstream.example.com", "A", { id: 77 });
      const reply = await udpExchange(h.port, raw);
      assert.equal(decode(reply!).id, 77);
    }
    for (const s of upstream.seen) ids.add(s.id);
    assert.ok(ids.size > 1, `upstream ids ${[...ids].join(",")}`);
  });

  it("answers SERVFAIL when the upstream does not answer in time", async () => {
    const t0 = performance.now();
    const { sentId, msg } = await udpQuery(h.port, "slow.example.com");
    assert.equal(msg.id, sentId);
    assert.equal(msg.rcode, "SERVFAIL");
    assert.deepEqual(msg.questions, [{ name: "slow.example.com", type: "A", class: "IN" }]);
    // Two attempts of 300 ms each.
    assert.ok(performance.now() - t0 >= 550);
    const tcp = await tcpQuery(h.port, "slow.example.com");
    assert.equal(tcp.msg.rcode, "SERVFAIL");
  });

  it("counts requests, upstream requests, failures and durations", async () => {
    const registry = h.registry;
    const labels = (type: string, protocol: string) => ({
      request_query_type: type,
      request_protocol: protocol,
      source_canonical_service: "client-app",
      source_canonical_revision: "v1",
    });
    const before = {
      req: await metricValue(registry, "istio_dns_requests_total", labels("a", "udp")),
      up: await metricValue(registry, "istio_dns_upstream_requests_total", labels("a", "udp")),
      fail: await metricValue(registry, "istio_dns_upstream_failures_total", labels("a", "udp")),
      dur: await metricValue(
        registry,
        "istio_dns_upstream_request_duration_seconds",
        labels("a", "udp"),
      ),
      mx: await metricValue(registry, "istio_dns_requests_total", labels("mx", "tcp")),
    };
    await udpQuery(h.port, "productpage"); // local answer
    await udpQuery(h.port, "upstream.example.com"); // forwarded
    await udpQuery(h.port, "slow.example.com"); // forwarded, fails
    await tcpQuery(h.port, "x.example.com", "MX"); // forwarded over TCP
    assert.equal(
      await metricValue(registry, "istio_dns_requests_total", labels("a", "udp")),
      before.req + 3,
    );
    assert.equal(
      await metricValue(registry, "istio_dns_upstream_requests_total", labels("a", "udp")),
      before.up + 2,
    );
    assert.equal(
      await metricValue(registry, "istio_dns_upstream_failures_total", labels("a", "udp")),
      before.fail + 1,
    );
    assert.equal(
      await metricValue(
        registry,
        "istio_dns_upstream_request_duration_seconds",
        labels("a", "udp"),
      ),
      before.dur + 2,
    );
    assert.equal(
      await metricValue(registry, "istio_dns_requests_total", labels("mx", "tcp")),
      before.mx + 1,
    );
    const text = await registry.metrics();
    assert.match(
      text,
      /istio_dns_upstream_requests_total\{request_query_type="mx",request_protocol="tcp",source_canonical_service="client-app",source_canonical_revision="v1"\} 1/,
    );
    assert.match(
      text,
      /istio_dns_upstream_request_duration_seconds_bucket\{le="5",request_query_type="a"/,
    );
  });
});

describe("DNS proxy: failure modes", () => {
  it("SERVFAIL with no upstream configured", async () => {
    const h = await startProxy({ upstreams: [] });
    try {
      const { msg } = await udpQuery(h.port, "anything.example.com");
      assert.equal(msg.rcode, "SERVFAIL");
      assert.equal(
        await metricValue(h.registry, "istio_dns_upstream_failures_total", {
          request_query_type: "a",
        }),
        1,
      );
    } finally {
      await h.proxy.close();
    }
  });

  it("SERVFAIL when the upstream port is closed (ICMP refused), without waiting for the timeout", async () => {
    const probe = createSocket("udp4");
    await new Promise<void>((r) => probe.bind(0, "127.0.0.1", r));
    const closedPort = probe.address().port;
    await new Promise<void>((r) => probe.close(() => r()));
    const h = await startProxy({
      upstreams: [{ address: "127.0.0.1", port: closedPort }],
      upstreamTimeoutMs: 5000,
    });
    try {
      const t0 = performance.now();
      const { msg } = await udpQuery(h.port, "anything.example.com");
      assert.equal(msg.rcode, "SERVFAIL");
      assert.ok(performance.now() - t0 < 2000);
    } finally {
      await h.proxy.close();
    }
  });

  it("tries the next upstream when the first does not answer", async () => {
    const dead = await new FakeUpstream({ "x.example.com A": "silent" }).start();
    const live = await new FakeUpstream({ "x.example.com A": { a: ["198.18.8.8"] } }).start();
    const h = await startProxy({ upstreams: [dead.server, live.server] });
    try {
      assert.deepEqual(aData((await udpQuery(h.port, "x.example.com")).msg), ["198.18.8.8"]);
      assert.equal(dead.seen.length, 1);
      assert.equal(live.seen.length, 1);
    } finally {
      await h.proxy.close();
      await dead.stop();
      await live.stop();
    }
  });

  it("SERVFAIL while the client workload is unknown, counted with unknown source", async () => {
    const h = await startProxy({ client: () => undefined });
    try {
      const { msg } = await udpQuery(h.port, "productpage");
      assert.equal(msg.rcode, "SERVFAIL");
      assert.equal(
        await metricValue(h.registry, "istio_dns_requests_total", {
          request_query_type: "a",
          source_canonical_service: "unknown",
          source_canonical_revision: "unknown",
        }),
        1,
      );
    } finally {
      await h.proxy.close();
    }
  });

  it("closes idle TCP connections", async () => {
    const h = await startProxy({ tcpIdleTimeoutMs: 200 });
    try {
      const t0 = performance.now();
      const r = await tcpExchange(h.port, [], 1, 3000);
      assert.equal(r.closed, true);
      assert.ok(performance.now() - t0 >= 150);
    } finally {
      await h.proxy.close();
    }
  });

  it("serves sockets handed to it (in-pod style) and closes them on close()", async () => {
    const registry = new Registry();
    const tcp = createServer();
    await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
    const port = (tcp.address() as AddressInfo).port;
    const udp = createSocket("udp4");
    await new Promise<void>((r) => udp.bind(port, "127.0.0.1", r));
    const proxy = new DnsProxy({
      state: meshState(),
      client: async () => {
        await new Promise((r) => setTimeout(r, 5));
        return client;
      },
      upstreams: [],
      metrics: new DnsMetrics(registry),
      logger: new LogOutput({ sink: new MemorySink() }).logger("dns"),
    });
    proxy.attachUdp(udp);
    proxy.attachTcp(tcp);
    assert.deepEqual(aData((await udpQuery(port, "productpage")).msg), ["198.18.9.9"]);
    assert.deepEqual(aData((await tcpQuery(port, "productpage")).msg), ["198.18.9.9"]);
    await proxy.close();
    assert.equal(tcp.listening, false);
    assert.throws(() => udp.address());
  });

  it("two proxies share one registry's metrics", () => {
    const registry = new Registry();
    const a = new DnsMetrics(registry);
    const b = new DnsMetrics(registry);
    assert.equal(a.requests, b.requests);
    assert.equal(a.upstreamDuration, b.upstreamDuration);
  });
});
