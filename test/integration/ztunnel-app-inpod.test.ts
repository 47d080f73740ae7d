/**
 * ztunnel in shared (in-pod) mode, static config and the local CA: no control plane and no
 * network. The node agent is played over an in-memory ZDS connection, the data path by a test
 * proxy factory that records what it is given and uses the ProxyInputs it receives.
 *
 * Checks: nothing is dialled (xDS/CA addresses point at a listener that counts connections),
 * readiness waits for the ZDS snapshot, the proxy gets ProxyInputs whose certificates come from
 * the local CA kept in LOCAL_CA_DIR, config_dump shows workloadState and certificates, the
 * in-pod metrics move, and a drain stops proxies gracefully while readiness says "draining" —
 * bounded by the termination deadline when a proxy never finishes.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { identitiesFromCertificate, formatIdentity } from "../../src/lib/identity/index.ts";
import { MemorySink } from "../../src/lib/log/index.ts";
import {
  MemoryPacketConn,
  decodeAck,
  decodeHello,
  encodeRequest,
  type ZdsRequest,
} from "../../src/lib/zds/index.ts";
import { ZtunnelApp, loadConfig, type ProxyInputs } from "../../src/ztunnel/index.ts";
import type { StartProxyRequest, StopMode } from "../../src/ztunnel/inpod/index.ts";

const dir = mkdtempSync(join(tmpdir(), "ztunnel-inpod-"));

const LOCAL_XDS = `
workloads:
- uid: Kubernetes//Pod/default/sleep-1
  name: sleep-1
  namespace: default
  serviceAccount: sleep
  workloadIps: [198.18.2.10]
  protocol: HBONE
  node: node-a
- uid: Kubernetes//Pod/default/echo-1
  name: echo-1
  namespace: default
  serviceAccount: echo
  workloadIps: [198.18.2.20]
  protocol: HBONE
  node: node-b
  services: {default/echo.default.svc.cluster.local: {80: 8080}}
services:
- {name: echo, namespace: default, hostname: echo.default.svc.cluster.local, vips: [/198.18.200.1], ports: {80: 8080}}
policies:
- {name: deny-all-plaintext, namespace: default, scope: NAMESPACE, action: DENY, rules: [[[{notPrincipals: [{presence: {}}]}]]]}
`;

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

/** The node agent's end of one ZDS connection. */
class Agent {
  readonly conn: MemoryPacketConn;
  constructor(conn: MemoryPacketConn) {
    this.conn = conn;
  }
  async hello(): Promise<void> {
    const p = await this.conn.receive();
    assert.ok(p !== null);
    assert.ok(decodeHello(p).ok);
  }
  async request(req: ZdsRequest, fds: number[] = []): Promise<string> {
    const bytes = encodeRequest(req);
    assert.ok(bytes.ok);
    await this.conn.send(bytes.value, fds);
    const p = await this.conn.receive();
    assert.ok(p !== null, "ztunnel answered");
    const ack = decodeAck(p);
    assert.ok(ack.ok);
    return ack.value.error;
  }
}

interface Started {
  readonly request: StartProxyRequest;
  readonly inputs: ProxyInputs;
  readonly stops: StopMode[];
  /** Resolves the pending stop(). */
  finishStop: () => void;
}

function testFactory(options: { neverStops?: boolean } = {}) {
  const started: Started[] = [];
  return {
    started,
    startInpodProxy: (inputs: ProxyInputs, request: StartProxyRequest) => {
      const s: Started = { request, inputs, stops: [], finishStop: () => {} };
      started.push(s);
      return Promise.resolve({
        stop(mode: StopMode) {
          s.stops.push(mode);
          if (options.neverStops === true) return new Promise<void>(() => {});
          return new Promise<void>((resolve) => {
            s.finishStop = resolve;
          });
        },
        connections: () => ({ open: 0 }),
      });
    },
  };
}

function startApp(opts: {
  factory: ReturnType<typeof testFactory>;
  agentConns: MemoryPacketConn[];
  canary: number;
  sink: MemorySink;
  deadline?: string;
}) {
  const config = loadConfig(
    {
      LOCAL_XDS: LOCAL_XDS,
      FAKE_CA: "true",
      LOCAL_CA_DIR: join(dir, "ca"),
      // Would be dialled if static mode used the network: they point at the canary.
      XDS_ADDRESS: `https://127.0.0.1:${opts.canary}`,
      CA_ADDRESS: `https://127.0.0.1:${opts.canary}`,
      NODE_NAME: "node-a",
      POD_NAME: "ztunnel-a",
      CONNECTION_TERMINATION_DEADLINE: opts.deadline ?? "2s",
      ADMIN_ADDRESS: "127.0.0.1:0",
      METRICS_ADDRESS: "127.0.0.1:0",
      READINESS_ADDRESS: "127.0.0.1:0",
    },
    { fileExists: () => false },
  );
  let handed = 0;
  return ZtunnelApp.start({
    config,
    logSink: opts.sink,
    proxies: { startInpodProxy: opts.factory.startInpodProxy },
    zdsConnect: () => {
      const [ztunnelEnd, agentEnd] = MemoryPacketConn.pair();
      if (handed++ > 0) throw new Error("the test agent accepts one connection");
      opts.agentConns.push(agentEnd);
      return ztunnelEnd;
    },
  });
}

describe("ztunnel in-pod mode with static config and the local CA", () => {
  let canary: Server;
  let canaryPort = 0;
  let dialled = 0;

  before(async () => {
    canary = createServer((s) => {
      dialled++;
      s.destroy();
    });
    await new Promise<void>((r) => canary.listen(0, "127.0.0.1", r));
    canaryPort = (canary.address() as { port: number }).port;
  });

  after(() => {
    canary.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves pods from the node agent and drains them gracefully", async (t) => {
    const sink = new MemorySink();
    const factory = testFactory();
    const conns: MemoryPacketConn[] = [];
    const app = await startApp({ factory, agentConns: conns, canary: canaryPort, sink });
    t.after(() => app.shutdown("test over"));
    const ready = `http://127.0.0.1:${app.addresses.readiness.port}/healthz/ready`;
    const admin = `http://127.0.0.1:${app.addresses.admin.port}`;
    const metrics = `http://127.0.0.1:${app.addresses.metrics.port}/metrics`;

    await until(() => conns.length === 1, "ztunnel to connect to the agent");
    const agent = new Agent(conns[0]!);
    await agent.hello();
    const before = await get(ready);
    assert.equal(before.status, 503);
    assert.match(before.body, /^not ready, pending: (certificates, )?inpod\n/);
    assert.match(before.body, /- inpod: waiting for the node agent's snapshot/);

    const info = { name: "sleep-1", namespace: "default", serviceAccount: "sleep" };
    const fd = openSync("/proc/self/ns/net", "r");
    assert.equal(await agent.request({ kind: "add", uid: "pod-uid-1", info }, [fd]), "");
    assert.equal(await agent.request({ kind: "snapshot-sent" }), "");
    await until(async () => (await get(ready)).status === 200, "ready after the snapshot");

    // The proxy got the one ProxyInputs bundle: config slice, state, certificates, registry.
    assert.equal(factory.started.length, 1);
    const s = factory.started[0]!;
    assert.equal(s.request.uid, "pod-uid-1");
    assert.deepEqual(s.request.workloadInfo, info);
    assert.equal(s.inputs.config.nodeName, "node-a");
    assert.equal(s.inputs.config.terminationDeadlineMs, 2000);
    const local = s.inputs.state.findLocalWorkload(info);
    assert.equal(local?.uid, "Kubernetes//Pod/default/sleep-1");
    const cert = await s.inputs.certificates.certificate(local.identity);
    const leaf = new X509Certificate(cert.chainPem[0]!);
    assert.deepEqual(identitiesFromCertificate(leaf).map(formatIdentity), [
      "spiffe://cluster.local/ns/default/sa/sleep",
    ]);
    assert.ok(
      leaf.verify(new X509Certificate(cert.rootsPem[0]!).publicKey),
      "signed by the local CA",
    );
    assert.ok(existsSync(join(dir, "ca", "ca-key.pem")), "the local CA is kept in LOCAL_CA_DIR");
    assert.deepEqual(s.inputs.certificates.roots(), cert.rootsPem);

    const dump = JSON.parse((await get(`${admin}/config_dump`)).body) as Record<string, unknown>;
    assert.deepEqual(dump["workloadState"], {
      "pod-uid-1": { state: "Up", info, connections: { open: 0 } },
    });
    assert.deepEqual(
      (dump["workloads"] as { uid: string }[]).map((w) => w.uid),
      ["Kubernetes//Pod/default/echo-1", "Kubernetes//Pod/default/sleep-1"],
    );
    assert.deepEqual(
      (dump["certificates"] as { identity: string; state: string }[]).map((c) => [
        c.identity,
        c.state,
      ]),
      [["spiffe://cluster.local/ns/default/sa/sleep", "Available"]],
    );
    assert.equal((dump["staticConfig"] as { workloads: unknown[] }).workloads.length, 2);
    const m = (await get(metrics)).body;
    assert.match(m, /^workload_manager_active_proxy_count 1$/m);
    assert.match(m, /^workload_manager_proxies_started_total 1$/m);
    assert.match(m, /^workload_manager_pending_proxy_count 0$/m);

    // Drain: readiness goes false while the proxy finishes; it is stopped gracefully.
    const done = app.shutdown("SIGTERM");
    await until(() => s.stops.length === 1, "the proxy to be told to stop");
    assert.deepEqual(s.stops, ["graceful"]);
    const draining = await get(ready);
    assert.equal(draining.status, 503);
    assert.match(draining.body, /draining/);
    s.finishStop();
    await done;
    await app.closed;
    await assert.rejects(fetch(ready), "the servers are closed");
    assert.ok(sink.lines.some((l) => /ztunnel stopped reason=SIGTERM/.test(l)));
    assert.equal(dialled, 0, "static mode with the local CA never dialled the network");
  });

  it("a proxy that never stops does not keep ztunnel from exiting after the deadline", async () => {
    const sink = new MemorySink();
    const factory = testFactory({ neverStops: true });
    const conns: MemoryPacketConn[] = [];
    const app = await startApp({
      factory,
      agentConns: conns,
      canary: canaryPort,
      sink,
      deadline: "300ms",
    });
    await until(() => conns.length === 1, "ztunnel to connect to the agent");
    const agent = new Agent(conns[0]!);
    await agent.hello();
    const info = { name: "sleep-1", namespace: "default", serviceAccount: "sleep" };
    const fd = openSync("/proc/self/ns/net", "r");
    assert.equal(await agent.request({ kind: "add", uid: "pod-uid-2", info }, [fd]), "");
    assert.equal(await agent.request({ kind: "snapshot-sent" }), "");
    await app.shutdown("SIGTERM");
    assert.deepEqual(factory.started[0]?.stops, ["graceful"]);
    assert.ok(
      sink.lines.some((l) => l.includes("proxies did not stop within the termination deadline")),
    );
    assert.equal(dialled, 0);
  });
});

describe("ztunnel in dedicated mode", () => {
  it("starts the one proxy after the config is in, is ready only then, stops it on drain", async () => {
    const started: { workloadInfo: unknown; inputs: ProxyInputs }[] = [];
    const stops: StopMode[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const config = loadConfig(
      {
        PROXY_MODE: "dedicated",
        PROXY_WORKLOAD_INFO: "default/sleep-1/sleep",
        LOCAL_XDS,
        FAKE_CA: "true",
        NODE_NAME: "node-a",
        ADMIN_ADDRESS: "127.0.0.1:0",
        METRICS_ADDRESS: "127.0.0.1:0",
        READINESS_ADDRESS: "127.0.0.1:0",
      },
      { fileExists: () => false },
    );
    const app = await ZtunnelApp.start({
      config,
      logSink: new MemorySink(),
      proxies: {
        startDedicatedProxy: async (inputs, options) => {
          started.push({ workloadInfo: options.workloadInfo, inputs });
          await gate;
          return {
            stop: (mode) => {
              stops.push(mode);
              return Promise.resolve();
            },
          };
        },
      },
    });
    const ready = `http://127.0.0.1:${app.addresses.readiness.port}/healthz/ready`;
    await until(() => started.length === 1, "the dedicated proxy to be started");
    assert.deepEqual(started[0]?.workloadInfo, {
      namespace: "default",
      name: "sleep-1",
      serviceAccount: "sleep",
    });
    assert.equal(app.inpod, undefined, "no in-pod manager in dedicated mode");
    await until(async () => !(await get(ready)).body.includes("certificates"), "certificates");
    const waiting = await get(ready);
    assert.equal(waiting.status, 503);
    assert.match(waiting.body, /pending: proxy\n/);
    release();
    await until(async () => (await get(ready)).status === 200, "ready");
    await app.shutdown("SIGTERM");
    assert.deepEqual(stops, ["graceful"]);
  });
});
