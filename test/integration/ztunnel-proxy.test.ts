/**
 * ztunnel's data path end to end in one process (root): three enrolled pods with Istio's in-pod
 * rules and their proxies, a service with two endpoints, a client and a server outside the mesh
 * (see ztunnel-proxy-world.ts). Traffic is real: curl and sockets in the pods' namespaces.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { createSocket } from "node:dgram";
import { connect as tlsConnect } from "node:tls";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Socket } from "node:net";
import * as dnsPacket from "dns-packet";
import { parseIdentity, tlsCredentials } from "../../src/lib/identity/index.ts";
import { createNetnsSocket } from "../../src/lib/net/index.ts";
import type { parseProxyV2 } from "./ztunnel-proxy-world.ts";
import {
  ID,
  IP,
  REMOTE_HOST,
  REMOTE_VIP,
  SERVICE_HOST,
  VIP,
  World,
  expectedSha256,
  openFds,
  waitFor,
  type LogLine,
} from "./ztunnel-proxy-world.ts";

const MiB = 1 << 20;

function completes(lines: LogLine[], direction: string, hboneAddr?: string): LogLine[] {
  return lines.filter(
    (l) =>
      l.scope === "access" &&
      l.message === "connection complete" &&
      l.direction === direction &&
      (hboneAddr === undefined || l["dst.hbone_addr"] === hboneAddr),
  );
}

describe("ztunnel proxy: in-pod data path", { concurrency: false }, () => {
  const w = new World();

  before(async () => {
    await w.setup();
  });
  after(async () => {
    await w.close();
  });

  /** Waits for `n` access-log completions after `mark` matching `pred`. */
  async function waitLogs(
    mark: number,
    what: string,
    pred: (l: LogLine) => boolean,
    n = 1,
  ): Promise<LogLine[]> {
    let found: LogLine[] = [];
    await waitFor(what, () => {
      found = w.logsSince(mark).filter(pred);
      return found.length >= n;
    });
    return found;
  }

  it("carries A -> B over HBONE: bytes delivered, original source kept, B sees A's identity, §6.3 log fields", async () => {
    const mark = w.sink.lines.length;
    const apps = w.appConnections.length;
    const r = await w.curl("a", [`http://${IP.b}:8080/`]);
    assert.equal(r.code, 0, r.stderr);
    // The app in B saw the connection come from A's address (original source, IP_TRANSPARENT).
    assert.match(r.stdout, new RegExp(`^server-b peer=${IP.a.replaceAll(".", "\\.")}:\\d+\\n$`));

    const [out] = await waitLogs(
      mark,
      "outbound completion",
      (l) => completes([l], "outbound", `${IP.b}:8080`).length === 1,
    );
    const [inb] = await waitLogs(
      mark,
      "inbound completion",
      (l) => completes([l], "inbound", `${IP.b}:8080`).length === 1,
    );
    await waitFor("app connection record", () => w.appConnections.length > apps);
    const app = w.appConnections.at(-1)!;
    assert.ok(out !== undefined && inb !== undefined);

    assert.equal(out.level, "info");
    assert.match(String(out["src.addr"]), new RegExp(`^${IP.a.replaceAll(".", "\\.")}:\\d+$`));
    assert.equal(out["src.workload"], "client-a");
    assert.equal(out["src.namespace"], "zp");
    assert.equal(out["src.identity"], ID.a);
    assert.equal(out["src.cluster"], "Kubernetes");
    assert.equal(out["dst.addr"], `${IP.b}:15008`);
    assert.equal(out["dst.workload"], "server-b");
    assert.equal(out["dst.namespace"], "zp");
    assert.equal(out["dst.identity"], ID.b);
    assert.equal(out["dst.cluster"], "Kubernetes");
    assert.match(String(out["duration"]), /^\d+ms$/);

    assert.equal(inb.level, "info");
    assert.equal(inb["src.identity"], ID.a, "B saw A's SPIFFE identity from mTLS");
    assert.equal(inb["src.workload"], "client-a");
    assert.equal(inb["dst.addr"], `${IP.b}:15008`);
    assert.equal(inb["dst.identity"], ID.b);
    assert.equal(inb["dst.service"], SERVICE_HOST, "inbound guesses the service by target port");

    // Every byte accounted for, and the log's view is from each reporter's side.
    assert.equal(out["bytes_sent"], app.bytesRead);
    assert.equal(out["bytes_recv"], app.bytesWritten);
    assert.equal(inb["bytes_recv"], app.bytesRead);
    assert.equal(inb["bytes_sent"], app.bytesWritten);
  });

  it("balances the service VIP over both endpoints; metrics on both reporters match the bytes", async () => {
    const svc = { destination_service: SERVICE_HOST };
    const before = {
      srcRecv: await w.metric("istio_tcp_received_bytes_total", { reporter: "source", ...svc }),
      srcSent: await w.metric("istio_tcp_sent_bytes_total", { reporter: "source", ...svc }),
      dstRecv: await w.metric("istio_tcp_received_bytes_total", {
        reporter: "destination",
        ...svc,
      }),
      dstSent: await w.metric("istio_tcp_sent_bytes_total", { reporter: "destination", ...svc }),
      srcClosed: await w.metric("istio_tcp_connections_closed_total", {
        reporter: "source",
        ...svc,
      }),
      dstClosed: await w.metric("istio_tcp_connections_closed_total", {
        reporter: "destination",
        ...svc,
      }),
    };
    const apps = w.appConnections.length;
    const seen = { b: 0, c: 0 };
    const n = 20;
    for (let i = 0; i < n; i++) {
      const r = await w.curl("a", [`http://${VIP}/`]);
      assert.equal(r.code, 0, r.stderr);
      if (r.stdout.startsWith("server-b ")) seen.b++;
      else if (r.stdout.startsWith("server-c ")) seen.c++;
      else assert.fail(`unexpected answer ${r.stdout}`);
    }
    assert.ok(seen.b > 0 && seen.c > 0, `both endpoints get traffic (b=${seen.b}, c=${seen.c})`);

    await waitFor("all closes counted", async () => {
      const s = await w.metric("istio_tcp_connections_closed_total", {
        reporter: "source",
        ...svc,
      });
      const d = await w.metric("istio_tcp_connections_closed_total", {
        reporter: "destination",
        ...svc,
      });
      return (
        s - before.srcClosed >= n &&
        d - before.dstClosed >= n &&
        w.appConnections.length >= apps + n
      );
    });
    const conns = w.appConnections.slice(apps).filter((c) => c.port === 8080);
    assert.equal(conns.length, n);
    const read = conns.reduce((a, c) => a + c.bytesRead, 0);
    const written = conns.reduce((a, c) => a + c.bytesWritten, 0);
    const delta = async (name: string, reporter: string, was: number) =>
      (await w.metric(name, { reporter, ...svc })) - was;
    // received = client -> server, sent = server -> client, for both reporters.
    assert.equal(await delta("istio_tcp_received_bytes_total", "source", before.srcRecv), read);
    assert.equal(await delta("istio_tcp_sent_bytes_total", "source", before.srcSent), written);
    assert.equal(
      await delta("istio_tcp_received_bytes_total", "destination", before.dstRecv),
      read,
    );
    assert.equal(await delta("istio_tcp_sent_bytes_total", "destination", before.dstSent), written);

    // The label sets, as Istio writes them.
    const opened = await w.registry.getSingleMetric("istio_tcp_connections_opened_total")!.get();
    const series = (reporter: string, workload: string) =>
      opened.values.find(
        (v) =>
          v.labels["reporter"] === reporter &&
          v.labels["destination_workload"] === workload &&
          v.labels["destination_service"] === SERVICE_HOST,
      )?.labels;
    for (const [reporter, key] of [
      ["source", "b"],
      ["source", "c"],
      ["destination", "b"],
      ["destination", "c"],
    ] as const) {
      const l = series(reporter, `echo-${key}`);
      assert.ok(l !== undefined, `${reporter} series for echo-${key}`);
      assert.deepEqual(
        { ...l },
        {
          reporter,
          source_workload: "client",
          source_canonical_service: "client",
          source_canonical_revision: "v1",
          source_workload_namespace: "zp",
          source_principal: ID.a,
          source_app: "client",
          source_version: "v1",
          source_cluster: "Kubernetes",
          destination_service: SERVICE_HOST,
          destination_service_namespace: "zp",
          destination_service_name: "echo",
          destination_workload: `echo-${key}`,
          destination_canonical_service: "echo",
          destination_canonical_revision: "v1",
          destination_workload_namespace: "zp",
          destination_principal: ID[key],
          destination_app: "echo",
          destination_version: "v1",
          destination_cluster: "Kubernetes",
          request_protocol: "tcp",
          response_flags: "-",
          connection_security_policy: "mutual_tls",
          source_region: "region-1",
          source_zone: "zone-a",
          destination_region: "region-1",
          destination_zone: `zone-${key}`,
        },
      );
    }
  });

  it("moves 100 MB intact (SHA-256) and counts every byte", async () => {
    const bytes = 100 * MiB;
    const labels = { reporter: "source", destination_workload: "echo-b" };
    const sentBefore = await w.metric("istio_tcp_sent_bytes_total", labels);
    const apps = w.appConnections.length;
    const t0 = performance.now();
    const r = await w.exec("a", "sh", [
      "-c",
      `curl -sS --max-time 60 http://${IP.b}:8080/big?bytes=${bytes} | sha256sum`,
    ]);
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.split(" ")[0], expectedSha256(bytes));
    await waitFor("app record", () => w.appConnections.length > apps);
    const app = w.appConnections.at(-1)!;
    assert.ok(app.bytesWritten > bytes);
    await waitFor(
      "bytes counted",
      async () =>
        (await w.metric("istio_tcp_sent_bytes_total", labels)) - sentBefore === app.bytesWritten,
    );
    console.log(
      `# 100 MB through A -> B: ${((bytes * 8) / seconds / 1e9).toFixed(2)} Gbit/s (curl | sha256sum)`,
    );
  });

  it("ALLOW by principal admits only the named client", async () => {
    w.addPolicies(`
- name: allow-client
  namespace: zp
  scope: WorkloadSelector
  action: Allow
  rules: [[[{principals: [{exact: cluster.local/ns/zp/sa/client}]}]]]
`);
    try {
      const ok = await w.curl("a", [`http://${IP.b}:8080/`]);
      assert.equal(ok.code, 0, ok.stderr);
      const deniedBefore = await w.metric("istio_tcp_connections_failed_total", {
        reporter: "destination",
        response_flags: "DENY",
        source_principal: ID.c,
      });
      const mark = w.sink.lines.length;
      const denied = await w.curl("c", [`http://${IP.b}:8080/`]);
      assert.notEqual(denied.code, 0, "C is not the named principal");
      const [inb] = await waitLogs(
        mark,
        "B's denial",
        (l) => completes([l], "inbound", `${IP.b}:8080`).length === 1 && l["src.identity"] === ID.c,
      );
      assert.equal(inb!.level, "error");
      assert.equal(inb!["src.identity"], ID.c);
      assert.match(String(inb!["error"]), /no ALLOW policy matched \(checked zp\/allow-client\)/);
      const [out] = await waitLogs(
        mark,
        "C's failure",
        (l) =>
          completes([l], "outbound", `${IP.b}:8080`).length === 1 &&
          l["src.workload"] === "server-c",
      );
      assert.equal(out!.level, "error");
      assert.match(String(out!["error"]), /status 401/);
      assert.equal(
        (await w.metric("istio_tcp_connections_failed_total", {
          reporter: "destination",
          response_flags: "DENY",
          source_principal: ID.c,
        })) - deniedBefore,
        1,
      );
      assert.ok(
        (await w.metric("istio_tcp_connections_failed_total", {
          reporter: "source",
          response_flags: "DENY",
          source_workload: "echo-c",
        })) >= 1,
        "C's outbound counts a DENY failure too",
      );
    } finally {
      w.removePolicy("zp/allow-client");
    }
  });

  it("DENY by port refuses, and the log names the policy", async () => {
    w.addPolicies(`
- name: deny-9090
  namespace: zp
  scope: WorkloadSelector
  action: Deny
  rules: [[[{destinationPorts: [9090]}]]]
`);
    try {
      const mark = w.sink.lines.length;
      const r = await w.curl("a", [`http://${IP.b}:9090/`]);
      assert.notEqual(r.code, 0);
      const [inb] = await waitLogs(
        mark,
        "denial",
        (l) => completes([l], "inbound", `${IP.b}:9090`).length === 1,
      );
      assert.equal(inb!.level, "error");
      assert.match(String(inb!["error"]), /denied by DENY policy zp\/deny-9090/);
      const ok = await w.curl("a", [`http://${IP.b}:8080/`]);
      assert.equal(ok.code, 0, "other ports are still allowed");
    } finally {
      w.removePolicy("zp/deny-9090");
    }
    const again = await w.curl("a", [`http://${IP.b}:9090/`]);
    assert.equal(again.code, 0, "allowed again once the policy is gone");
    assert.match(again.stdout, /^server-b:9090 /);
  });

  it("closes an open connection when a policy now denies it; lists it in config_dump until then", async () => {
    const s = w.connectFrom("a", IP.b, 7000);
    s.on("error", () => {});
    await new Promise<void>((resolve) => s.once("connect", resolve));
    s.write("ping");
    const echoed = await new Promise<string>((resolve) =>
      s.once("data", (b) => resolve(b.toString())),
    );
    assert.equal(echoed, "ping");

    const local = `${s.localAddress}:${s.localPort}`;
    const inbound = w.proxy("b").connections().inbound;
    assert.ok(
      inbound.some((c) => c.actualDst === `${IP.b}:7000` && c.protocol === "HBONE"),
      JSON.stringify(inbound),
    );
    const outbound = w.proxy("a").connections().outbound;
    assert.ok(
      outbound.some(
        (c) =>
          c.src === local &&
          c.originalDst === `${IP.b}:7000` &&
          c.actualDst === `${IP.b}:15008` &&
          c.protocol === "HBONE",
      ),
      JSON.stringify(outbound),
    );

    const mark = w.sink.lines.length;
    const closed = new Promise<void>((resolve) => s.once("close", () => resolve()));
    w.addPolicies(`
- name: deny-7000
  namespace: zp
  scope: WorkloadSelector
  action: Deny
  rules: [[[{destinationPorts: [7000]}]]]
`);
    try {
      await closed;
      const [line] = await waitLogs(
        mark,
        "revocation log",
        (l) =>
          l.message === "connection closed because it is no longer allowed after a policy update",
      );
      assert.match(String(line!["reason"]), /zp\/deny-7000/);
      assert.equal(line!["src.identity"], ID.a);
      const [inb] = await waitLogs(
        mark,
        "late rejection",
        (l) => completes([l], "inbound", `${IP.b}:7000`).length === 1,
      );
      assert.equal(inb!.level, "error");
      assert.equal(inb!["error"], "connection closed due to policy change");
      assert.equal(
        w
          .proxy("b")
          .connections()
          .inbound.filter((c) => c.actualDst === `${IP.b}:7000`).length,
        0,
      );
    } finally {
      w.removePolicy("zp/deny-7000");
    }
  });

  it("plaintext from outside the mesh: allowed under PERMISSIVE, refused under STRICT", async () => {
    const mark = w.sink.lines.length;
    const ok = await w.curl("d", [`http://${IP.b}:8080/`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`^server-b peer=${IP.d.replaceAll(".", "\\.")}:`));
    const [inb] = await waitLogs(
      mark,
      "plaintext completion",
      (l) =>
        completes([l], "inbound").length === 1 &&
        l["src.addr"]?.toString().startsWith(IP.d) === true,
    );
    assert.equal(inb!["src.identity"], undefined, "no identity on plaintext");
    assert.equal(inb!["dst.addr"], `${IP.b}:8080`);
    assert.ok(
      (await w.metric("istio_tcp_connections_opened_total", {
        reporter: "destination",
        connection_security_policy: "unknown",
        destination_workload: "echo-b",
      })) >= 1,
    );

    w.addPolicies(`
- name: istio_converted_static_strict
  namespace: istio-system
  scope: WorkloadSelector
  action: Deny
  rules: [[[{notPrincipals: [{presence: {}}]}]]]
`);
    try {
      const mark2 = w.sink.lines.length;
      const refused = await w.curl("d", [`http://${IP.b}:8080/`]);
      assert.notEqual(refused.code, 0);
      const [deny] = await waitLogs(
        mark2,
        "STRICT denial",
        (l) => completes([l], "inbound").length === 1,
      );
      assert.equal(deny!.level, "error");
      assert.match(String(deny!["error"]), /istio-system\/istio_converted_static_strict/);
      const mtls = await w.curl("a", [`http://${IP.b}:8080/`]);
      assert.equal(mtls.code, 0, "mesh clients are unaffected by STRICT");
    } finally {
      w.removePolicy("istio-system/istio_converted_static_strict");
    }
  });

  it("passes traffic to a non-mesh IP through as plain TCP", async () => {
    const before = await w.metric("istio_tcp_connections_closed_total", {
      reporter: "source",
      connection_security_policy: "unknown",
      destination_workload: "unknown",
    });
    const r = await w.curl("a", [`http://${IP.e}:8080/`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^external peer=${IP.a.replaceAll(".", "\\.")}:`));
    await waitFor(
      "passthrough close counted",
      async () =>
        (await w.metric("istio_tcp_connections_closed_total", {
          reporter: "source",
          connection_security_policy: "unknown",
          destination_workload: "unknown",
        })) ===
        before + 1,
    );
  });

  it("delivers to a PROXY application tunnel from loopback, with a PROXY v2 header naming the client", async () => {
    // The app answers with raw JSON, not HTTP.
    const r = await w.curl("a", ["--http0.9", `http://${IP.w}:8080/`]);
    assert.equal(r.code, 0, r.stderr);
    const seen = JSON.parse(r.stdout) as ReturnType<typeof parseProxyV2>;
    assert.equal(seen.command, 0x21, "v2 PROXY");
    assert.equal(seen.family, 0x11, "TCP over IPv4");
    assert.match(
      seen.src,
      new RegExp(`^${IP.a.replaceAll(".", "\\.")}:\\d+$`),
      "the original client",
    );
    assert.equal(seen.dst, `${IP.w}:8080`, "the HBONE target");
    assert.equal(seen.identity, ID.a, "TLV 0xD0 carries the client's SPIFFE identity");
  });

  it("crosses networks with double HBONE through the east-west gateway", async () => {
    w.gatewaySeen.length = 0;
    const mark = w.sink.lines.length;
    const r = await w.curl("a", [`http://${REMOTE_VIP}/`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^external peer=/);
    assert.deepEqual(w.gatewaySeen, [
      {
        hop: "gateway",
        authority: `${REMOTE_HOST}:80`,
        peerIdentity: ID.a,
        forwardedNetwork: undefined,
      },
      { hop: "remote", authority: `${REMOTE_HOST}:80`, peerIdentity: ID.a, forwardedNetwork: "" },
    ]);
    const [out] = await waitLogs(
      mark,
      "outbound completion",
      (l) => completes([l], "outbound", `${REMOTE_HOST}:80`).length === 1,
    );
    assert.equal(out!.level, "info");
    assert.equal(out!["dst.addr"], `${IP.g}:15008`);
    assert.equal(out!["dst.service"], REMOTE_HOST);
    assert.deepEqual(w.proxy("a").connections().outbound, []);
  });

  it("SOCKS5 from A reaches the service (by name and by VIP)", async () => {
    const byName = await w.curl("a", [
      "--socks5-hostname",
      "127.0.0.1:15080",
      `http://${SERVICE_HOST}/`,
    ]);
    assert.equal(byName.code, 0, byName.stderr);
    assert.match(byName.stdout, /^server-[bc] peer=/);
    const byIp = await w.curl("a", ["--socks5", "127.0.0.1:15080", `http://${VIP}/`]);
    assert.equal(byIp.code, 0, byIp.stderr);
    assert.match(byIp.stdout, /^server-[bc] peer=/);
  });

  it("answers a DNS query from A for the service name with the VIP", async () => {
    for (const name of [SERVICE_HOST, "echo", "echo.zp"]) {
      const { fd } = createNetnsSocket({
        netns: w.netnsFd("a"),
        protocol: "udp",
        family: 4,
        bind: { address: "0.0.0.0", port: 0 },
      });
      const sock = createSocket("udp4");
      sock.bind({ fd });
      try {
        const answer = await new Promise<dnsPacket.DecodedPacket>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`no DNS answer for ${name}`)), 4000);
          sock.once("message", (m) => {
            clearTimeout(t);
            resolve(dnsPacket.decode(m));
          });
          // Any resolver address: the pod's rules send UDP/53 to the proxy on 15053.
          sock.send(
            dnsPacket.encode({
              type: "query",
              id: 7,
              flags: dnsPacket.RECURSION_DESIRED,
              questions: [{ name, type: "A" }],
            }),
            53,
            "198.19.171.1",
          );
        });
        const a = (answer.answers ?? [])
          .filter((x) => x.type === "A")
          .map((x) => (x as { data: unknown }).data);
        assert.deepEqual(a, [VIP], `answer for ${name}`);
      } finally {
        sock.close();
      }
    }
  });

  it("presents the pod's rotated certificate on new HBONE connections", async () => {
    const idA = parseIdentity(ID.a);
    assert.ok(idA.ok);
    const peerSerial = async (): Promise<string> => {
      const cert = await w.certificates.certificate(idA.value);
      // Straight to B's 15008 from A's namespace, marked like ztunnel's own sockets.
      const { fd } = createNetnsSocket({
        netns: w.netnsFd("a"),
        protocol: "tcp",
        family: 4,
        mark: 1337,
      });
      const raw = new Socket({ fd });
      raw.connect(15008, IP.b);
      const t = tlsConnect({
        socket: raw,
        ...tlsCredentials(cert),
        ALPNProtocols: ["h2"],
        checkServerIdentity: () => undefined,
      });
      try {
        await new Promise<void>((resolve, reject) => {
          t.once("secureConnect", resolve);
          t.once("error", reject);
        });
        return t.getPeerX509Certificate()!.serialNumber;
      } finally {
        t.destroy();
      }
    };
    const before = await peerSerial();
    const rotated = await w.certificates.rotate(ID.b);
    const after = await peerSerial();
    assert.notEqual(after, before);
    assert.equal(after, new X509Certificate(rotated.chainPem[0]!).serialNumber);
    const r = await w.curl("a", [`http://${IP.b}:8080/`]);
    assert.equal(r.code, 0, "traffic keeps flowing across the rotation");
  });

  it("graceful stop lets an in-flight transfer finish and refuses new connections", async () => {
    const bytes = 6 * MiB;
    const transfer = w.exec("a", "sh", [
      "-c",
      `curl -sS --max-time 30 "http://${IP.b}:8080/big?bytes=${bytes}&rate=${3 * MiB}" | sha256sum`,
    ]);
    await waitFor("transfer under way", () => w.proxy("a").stats().activeConnections > 0);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    const stopped = w.proxy("a").stop("graceful");
    const refused = await w.curl("a", ["--max-time", "3", `http://${IP.b}:8080/`]);
    assert.notEqual(refused.code, 0, "no new connections while draining");
    const r = await transfer;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout.split(" ")[0],
      expectedSha256(bytes),
      "in-flight transfer completed intact",
    );
    await stopped;
    assert.ok(
      performance.now() - t0 < w.config.terminationDeadlineMs,
      "drained before the deadline",
    );
    await w.startProxy("a");
    const again = await w.curl("a", [`http://${IP.b}:8080/`]);
    assert.equal(again.code, 0, again.stderr);
  });

  it("leaks no fds or tracked state after 1,000 connections", async () => {
    const gauge = () => w.metric("istio_tcp_sockets_open", { reporter: "source" });
    // Warm up the pooled HBONE connection first so it is not counted as a leak.
    const warm = await w.curl("a", [`http://${IP.b}:8080/`]);
    assert.equal(warm.code, 0);
    await waitFor("quiet", () => w.proxy("a").stats().activeConnections === 0);
    const fdsBefore = openFds();
    const socketsBefore = await gauge();
    const total = 1000;
    const parallel = 50;
    let done = 0;
    let failed = 0;
    const one = (): Promise<void> =>
      new Promise((resolve) => {
        const s = w.connectFrom("a", IP.b, 7000);
        s.on("error", () => {
          failed++;
        });
        s.once("connect", () => s.end("x"));
        s.on("data", () => {});
        s.once("close", () => {
          done++;
          resolve();
        });
      });
    let started = 0;
    const workers = Array.from({ length: parallel }, async () => {
      while (started < total) {
        started++;
        await one();
      }
    });
    await Promise.all(workers);
    assert.equal(done, total);
    assert.equal(failed, 0);
    await waitFor(
      "every connection finished on both sides",
      () =>
        w.proxy("a").stats().activeConnections === 0 &&
        w.proxy("a").stats().outboundConnections === 0 &&
        w.proxy("b").stats().inboundConnections === 0 &&
        w.proxy("b").stats().hboneServer.streams === 0,
      20_000,
    );
    await waitFor("sockets gauge back", async () => (await gauge()) === socketsBefore);
    await waitFor("fds released", () => openFds() <= fdsBefore + 4, 10_000);
  });

  it("immediate stop ends open connections at once", async () => {
    const s = w.connectFrom("a", IP.b, 7000);
    s.on("error", () => {});
    await new Promise<void>((resolve) => s.once("connect", resolve));
    s.write("hi");
    await new Promise((resolve) => s.once("data", resolve));
    const closed = new Promise<void>((resolve) => s.once("close", () => resolve()));
    await w.proxy("b").stop("immediate");
    await closed;
    assert.equal(w.proxy("b").stats().inboundConnections, 0);
    await w.startProxy("b");
    const r = await w.curl("a", [`http://${IP.b}:8080/`]);
    assert.equal(r.code, 0, r.stderr);
  });

  it("dedicated mode: a ztunnel inside the pod's own namespace serves it the same way", async () => {
    await w.proxy("a").stop("immediate");
    w.proxies.delete("a");
    const idA = parseIdentity(ID.a);
    assert.ok(idA.ok);
    const cert = await w.certificates.certificate(idA.value);
    const child = spawn(
      "ip",
      [
        "netns",
        "exec",
        w.ns("a"),
        process.execPath,
        join(import.meta.dirname, "ztunnel-proxy-dedicated-child.ts"),
      ],
      { stdio: ["pipe", "pipe", "inherit"] },
    );
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stdin.end(
      JSON.stringify({
        cert: {
          ...cert,
          notBefore: cert.notBefore.toISOString(),
          notAfter: cert.notAfter.toISOString(),
        },
        info: w.workloadInfo("a"),
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      await waitFor("dedicated proxy ready", () => out.includes("ready\n"), 15_000);
      const mark = w.sink.lines.length;
      const r = await w.curl("a", [`http://${IP.b}:8080/`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^server-b peer=/);
      const [inb] = await waitLogs(
        mark,
        "B's inbound completion",
        (l) => completes([l], "inbound", `${IP.b}:8080`).length === 1,
      );
      assert.equal(inb!["src.identity"], ID.a);
      await waitFor(
        "the dedicated proxy's own access log",
        () =>
          out.includes('"message":"connection complete"') && out.includes('"direction":"outbound"'),
      );
    } finally {
      child.kill("SIGTERM");
      assert.equal(await exited, 0, "stops gracefully on SIGTERM");
    }
  });
});
