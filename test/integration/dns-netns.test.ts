/**
 * The DNS proxy in in-pod mode (root): a "pod" network namespace with Istio's DNS redirect rules
 * (UDP/TCP to port 53 not carrying mark 0x539 -> REDIRECT :15053, INTEROP §5.4), the in-pod
 * listeners (ztunnel/inpod) dispatching 15053 to the proxy, and an upstream resolver in a second
 * namespace across a veth.
 *
 * An application query to the upstream's address is captured by the proxy: mesh names are
 * answered locally, others forwarded upstream through sockets the netns socket factory makes
 * with mark 1337, which the rules let out. The control case forwards through unmarked sockets:
 * the rules capture the proxy's own query again and the upstream never sees it.
 *
 * Namespaces are private to this process (amb-dns-<pid>-pod / -up), 198.18.200.0/24 on a veth
 * pair between them; nothing is routed elsewhere. Everything is removed in `after`.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import type { Socket as UdpSocket } from "node:dgram";
import { Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import * as dnsPacket from "dns-packet";
import { Registry } from "prom-client";
import { closeFd, createNetnsSocket, openNetns } from "../../src/lib/net/index.ts";
import { LogOutput, MemorySink } from "../../src/lib/log/index.ts";
import { applyLocalConfig, parseLocalConfig, ProxyState } from "../../src/ztunnel/state/index.ts";
import { DnsMetrics, DnsProxy, netnsSocketFactory } from "../../src/ztunnel/dns/index.ts";
import type { UpstreamSocketFactory } from "../../src/ztunnel/dns/index.ts";
import { DnsTcpDecoder, frame } from "../../src/ztunnel/dns/tcp-framing.ts";
import { createInpodListeners } from "../../src/ztunnel/inpod/index.ts";

const run = promisify(execFile);
const sh = async (cmd: string, args: string[]) =>
  (await run(cmd, args, { timeout: 20_000 })).stdout;

const POD = `amb-dns-${process.pid}-pod`;
const UP = `amb-dns-${process.pid}-up`;
const POD_IP = "198.18.200.1";
const UPSTREAM_IP = "198.18.200.53";
const DNS_PORT = 15053;

type Decoded = dnsPacket.DecodedPacket & { rcode: string };

function udpIn(netns: number, address: string, port: number, mark?: number): UdpSocket {
  const { fd } = createNetnsSocket({
    netns,
    protocol: "udp",
    family: 4,
    bind: { address, port },
    mark,
  });
  const s = createSocket("udp4");
  // Adopting an fd binds synchronously ('listening' is emitted inside bind()).
  s.bind({ fd });
  return s;
}

/** The application over TCP: an unmarked connection from the pod to the upstream's port 53. */
async function appTcpQuery(podNs: number, name: string): Promise<Decoded | undefined> {
  const { fd } = createNetnsSocket({ netns: podNs, protocol: "tcp", family: 4 });
  const s = new Socket({ fd });
  const decoder = new DnsTcpDecoder();
  try {
    return await new Promise<Decoded | undefined>((resolve) => {
      const t = setTimeout(() => resolve(undefined), 4000);
      s.on("error", () => resolve(undefined));
      s.on("data", (c: Buffer) =>
        decoder.push(c, (m) => {
          clearTimeout(t);
          resolve(dnsPacket.decode(m) as Decoded);
        }),
      );
      s.connect(53, UPSTREAM_IP, () => {
        s.write(
          frame(dnsPacket.encode({ type: "query", id: 0x4343, questions: [{ name, type: "A" }] })),
        );
      });
    });
  } finally {
    s.destroy();
  }
}

/** The application: a UDP query from an unmarked socket in the pod, to the upstream's address. */
async function appQuery(podNs: number, name: string): Promise<Decoded | undefined> {
  const s = udpIn(podNs, "0.0.0.0", 0);
  try {
    return await new Promise<Decoded | undefined>((resolve) => {
      const t = setTimeout(() => resolve(undefined), 4000);
      s.on("message", (m) => {
        clearTimeout(t);
        resolve(dnsPacket.decode(m) as Decoded);
      });
      s.send(
        dnsPacket.encode({
          type: "query",
          id: 0x4242,
          flags: dnsPacket.RECURSION_DESIRED,
          questions: [{ name, type: "A" }],
        }),
        53,
        UPSTREAM_IP,
      );
    });
  } finally {
    s.close();
  }
}

describe("DNS proxy inside a pod network namespace", { concurrency: false }, () => {
  let podNs = -1;
  let upNs = -1;
  const upstreamSeen: string[] = [];
  let upstream: UdpSocket | undefined;

  before(async () => {
    assert.equal(
      process.getuid?.(),
      0,
      "these tests need root (network namespaces, SO_MARK, iptables)",
    );
    await sh("ip", ["netns", "add", POD]);
    await sh("ip", ["netns", "add", UP]);
    await sh("ip", ["-n", POD, "link", "set", "lo", "up"]);
    await sh("ip", ["-n", UP, "link", "set", "lo", "up"]);
    await sh("ip", [
      "-n",
      POD,
      "link",
      "add",
      "eth0",
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      UP,
    ]);
    await sh("ip", ["-n", POD, "addr", "add", `${POD_IP}/24`, "dev", "eth0"]);
    await sh("ip", ["-n", UP, "addr", "add", `${UPSTREAM_IP}/24`, "dev", "eth0"]);
    await sh("ip", ["-n", POD, "link", "set", "eth0", "up"]);
    await sh("ip", ["-n", UP, "link", "set", "eth0", "up"]);
    // Istio's in-pod DNS capture (nat OUTPUT), as istio-cni installs it.
    const ipt = (args: string[]) => sh("ip", ["netns", "exec", POD, "iptables", "-w", ...args]);
    await ipt([
      "-t",
      "nat",
      "-A",
      "OUTPUT",
      "-p",
      "udp",
      "--dport",
      "53",
      "!",
      "-o",
      "lo",
      "-m",
      "mark",
      "!",
      "--mark",
      "0x539/0xfff",
      "-j",
      "REDIRECT",
      "--to-ports",
      String(DNS_PORT),
    ]);
    await ipt([
      "-t",
      "nat",
      "-A",
      "OUTPUT",
      "-p",
      "tcp",
      "--dport",
      "53",
      "!",
      "-d",
      "127.0.0.1/32",
      "-m",
      "mark",
      "!",
      "--mark",
      "0x539/0xfff",
      "-j",
      "REDIRECT",
      "--to-ports",
      String(DNS_PORT),
    ]);
    podNs = openNetns(`/run/netns/${POD}`);
    upNs = openNetns(`/run/netns/${UP}`);

    // The upstream resolver, in its own namespace.
    const up = udpIn(upNs, UPSTREAM_IP, 53);
    up.on("message", (m, rinfo) => {
      const q = dnsPacket.decode(m);
      const question = q.questions![0]!;
      upstreamSeen.push(question.name);
      up.send(
        dnsPacket.encode({
          type: "response",
          id: q.id!,
          flags: dnsPacket.RECURSION_AVAILABLE,
          questions: [question],
          answers: [{ name: question.name, type: "A", ttl: 60, data: "198.18.5.5" }],
        }),
        rinfo.port,
        rinfo.address,
      );
    });
    upstream = up;
  });

  after(async () => {
    if (upstream) await new Promise<void>((r) => upstream!.close(() => r()));
    if (podNs >= 0) closeFd(podNs);
    if (upNs >= 0) closeFd(upNs);
    await sh("ip", ["netns", "del", POD]).catch(() => "");
    await sh("ip", ["netns", "del", UP]).catch(() => "");
  });

  async function startProxy(factory: UpstreamSocketFactory, maxForwardsInFlight?: number) {
    const cfg = parseLocalConfig(`
services:
- {name: productpage, namespace: ns1, hostname: productpage.ns1.svc.cluster.local, vips: [/198.18.9.9]}
`);
    if (!cfg.ok) assert.fail(cfg.reason.join("\n"));
    const state = new ProxyState();
    applyLocalConfig(state, cfg.value);
    const proxy = new DnsProxy({
      state,
      client: () => ({ namespace: "ns1", network: "" }),
      upstreams: [{ address: UPSTREAM_IP, port: 53 }],
      socketFactory: factory,
      metrics: new DnsMetrics(new Registry()),
      logger: new LogOutput({ sink: new MemorySink() }).logger("dns"),
      upstreamTimeoutMs: 500,
      upstreamAttempts: 1,
      maxForwardsInFlight,
    });
    // The in-pod listeners (15053 UDP+TCP on localhost, marked) dispatching to the proxy.
    const listeners = await createInpodListeners(podNs, {
      outbound: (c) => c.destroy(),
      inboundPlaintext: (c) => c.destroy(),
      inbound: (c) => c.destroy(),
      dns: {
        tcp: (c) => proxy.handleTcpConnection(c),
        udp: (m, r, sock) => proxy.handleUdpMessage(m, r, sock),
      },
    });
    return {
      proxy,
      close: async () => {
        await listeners.close();
        await proxy.close();
      },
    };
  }

  it("answers mesh names and forwards others through marked sockets that escape the redirect", async () => {
    const running = await startProxy(netnsSocketFactory({ netns: podNs }));
    try {
      const tcp = await appTcpQuery(podNs, "productpage");
      assert.ok(tcp, "no TCP answer for a mesh name");
      assert.equal(tcp.id, 0x4343);
      assert.deepEqual(
        tcp.answers?.map((a) => (a as dnsPacket.StringAnswer).data),
        ["198.18.9.9"],
      );

      upstreamSeen.length = 0;
      const mesh = await appQuery(podNs, "productpage");
      assert.ok(mesh, "no answer for a mesh name");
      assert.equal(mesh.id, 0x4242);
      assert.equal(mesh.flag_aa, true);
      assert.deepEqual(
        mesh.answers?.map((a) => (a as dnsPacket.StringAnswer).data),
        ["198.18.9.9"],
      );
      assert.deepEqual(upstreamSeen, [], "mesh names are not forwarded");

      const ext = await appQuery(podNs, "ext.example.com");
      assert.ok(ext, "no answer for a forwarded name");
      assert.equal(ext.id, 0x4242);
      assert.equal(ext.rcode, "NOERROR");
      assert.deepEqual(
        ext.answers?.map((a) => (a as dnsPacket.StringAnswer).data),
        ["198.18.5.5"],
      );
      assert.deepEqual(upstreamSeen, ["ext.example.com"]);
    } finally {
      await running.close();
    }
  });

  it("without the mark the proxy's own query is captured again and never reaches the upstream", async () => {
    const running = await startProxy(netnsSocketFactory({ netns: podNs, mark: 0 }), 4);
    try {
      upstreamSeen.length = 0;
      const r = await appQuery(podNs, "ext.example.com");
      assert.ok(r, "the loop ends in an answer (bounded by maxForwardsInFlight)");
      assert.equal(r.rcode, "SERVFAIL");
      assert.deepEqual(upstreamSeen, []);
    } finally {
      await running.close();
    }
  });
});
