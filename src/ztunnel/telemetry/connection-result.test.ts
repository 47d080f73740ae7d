import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Registry } from "prom-client";
import { LogOutput, MemorySink } from "../../lib/log/index.ts";
import { applyLocalConfig, parseLocalConfig, ProxyState, type Workload } from "../state/index.ts";
import { ConnectionResult, logConnectionFailed } from "./connection-result.ts";
import { TrafficMetrics } from "./traffic-metrics.ts";

const state = new ProxyState();
const cfg = parseLocalConfig(`
workloads:
- {uid: k//Pod/ns/a, name: a-1, namespace: ns, serviceAccount: a, workloadIps: [198.18.0.1], protocol: HBONE, workloadName: a}
- {uid: k//Pod/ns/b, name: b-1, namespace: ns, serviceAccount: b, workloadIps: [198.18.0.2], protocol: HBONE, workloadName: b}
`);
if (!cfg.ok) throw new Error(cfg.reason.join("; "));
applyLocalConfig(state, cfg.value);
const a = state.workloadByUid("k//Pod/ns/a") as Workload;
const b = state.workloadByUid("k//Pod/ns/b") as Workload;

function setup(level: "info" | "debug" = "debug") {
  const registry = new Registry();
  const sink = new MemorySink();
  const out = new LogOutput({
    spec: { defaultLevel: level, scopes: new Map() },
    format: "json",
    sink,
  });
  const metrics = TrafficMetrics.for(registry);
  const lines = () => sink.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { registry, metrics, log: out.logger("access"), lines };
}

async function value(r: Registry, name: string, match: Record<string, string>): Promise<number> {
  const m = await r.getSingleMetric(name)!.get();
  return m.values
    .filter((v) => Object.entries(match).every(([k, x]) => v.labels[k] === x))
    .reduce((s, v) => s + v.value, 0);
}

const outbound = {
  reporter: "source" as const,
  source: a,
  derivedSource: { identity: a.identity },
  destination: b,
  destinationService: undefined,
  securityPolicy: "mutual_tls" as const,
};

describe("ConnectionResult", () => {
  it("counts open, close and bytes with Istio's directions, and logs §6.3 fields", async () => {
    const { registry, metrics, log, lines } = setup();
    const r = new ConnectionResult(metrics, log, {
      src: "198.18.0.1:5000",
      dst: "198.18.0.2:15008",
      hboneTarget: "198.18.0.2:80",
      open: outbound,
    });
    assert.equal(await value(registry, "istio_tcp_connections_opened_total", {}), 1);
    r.record({ clientToServer: 100, serverToClient: 2000 });
    r.record({ clientToServer: 1, serverToClient: 1 }, "twice");
    assert.equal(
      await value(registry, "istio_tcp_connections_closed_total", { response_flags: "-" }),
      1,
    );
    assert.equal(await value(registry, "istio_tcp_received_bytes_total", {}), 100);
    assert.equal(await value(registry, "istio_tcp_sent_bytes_total", {}), 2000);
    assert.equal(await value(registry, "istio_tcp_connections_failed_total", {}), 0);

    const [opened, complete] = lines();
    assert.equal(opened?.["message"], "connection opened");
    assert.equal(opened?.["level"], "debug");
    assert.equal(complete?.["message"], "connection complete");
    assert.equal(complete?.["level"], "info");
    assert.deepEqual(
      Object.keys(complete ?? {}).filter((k) => !["time", "level", "scope", "message"].includes(k)),
      [
        "src.addr",
        "src.workload",
        "src.namespace",
        "src.identity",
        "src.cluster",
        "dst.addr",
        "dst.hbone_addr",
        "dst.workload",
        "dst.namespace",
        "dst.identity",
        "dst.cluster",
        "direction",
        "bytes_sent",
        "bytes_recv",
        "duration",
      ],
    );
    assert.equal(complete?.["src.workload"], "a-1");
    assert.equal(complete?.["src.identity"], "spiffe://cluster.local/ns/ns/sa/a");
    assert.equal(complete?.["dst.identity"], "spiffe://cluster.local/ns/ns/sa/b");
    assert.equal(complete?.["direction"], "outbound");
    // Outbound: sent = what went towards the server.
    assert.equal(complete?.["bytes_sent"], 100);
    assert.equal(complete?.["bytes_recv"], 2000);
    assert.match(String(complete?.["duration"]), /^\d+ms$/);
    assert.equal(lines().length, 2, "a second record() does nothing");
  });

  it("logs inbound bytes from the server side's point of view, and errors with their flag", async () => {
    const { registry, metrics, log, lines } = setup("info");
    const r = new ConnectionResult(metrics, log, {
      src: "198.18.0.1:5000",
      dst: "198.18.0.2:15008",
      open: { ...outbound, reporter: "destination" },
    });
    r.record(
      { clientToServer: 7, serverToClient: 9 },
      "denied by DENY policy ns/x (rule 0)",
      "DENY",
    );
    const [complete] = lines();
    assert.equal(complete?.["level"], "error");
    assert.equal(complete?.["error"], "denied by DENY policy ns/x (rule 0)");
    assert.equal(complete?.["bytes_sent"], 9);
    assert.equal(complete?.["bytes_recv"], 7);
    assert.equal(complete?.["direction"], "inbound");
    assert.equal(
      await value(registry, "istio_tcp_connections_failed_total", { response_flags: "DENY" }),
      1,
    );
    assert.equal(
      await value(registry, "istio_tcp_connections_closed_total", { response_flags: "DENY" }),
      1,
    );
    assert.equal(
      await value(registry, "istio_tcp_received_bytes_total", { response_flags: "-" }),
      7,
      "bytes keep the labels the connection opened with",
    );
  });

  it("omits the identities of plaintext connections", () => {
    const { metrics, log, lines } = setup("info");
    new ConnectionResult(metrics, log, {
      src: "198.18.0.9:1",
      dst: "198.18.0.2:80",
      open: { ...outbound, derivedSource: undefined, securityPolicy: "unknown" },
    }).record({ clientToServer: 0, serverToClient: 0 });
    const [c] = lines();
    assert.equal(c?.["src.identity"], undefined);
    assert.equal(c?.["dst.identity"], undefined);
    assert.equal(c?.["dst.hbone_addr"], undefined);
  });

  it("logConnectionFailed writes the early-failure line", () => {
    const { log, lines } = setup("info");
    logConnectionFailed(log, "1.2.3.4:5", "6.7.8.9:10", "destination", "ip mismatch");
    const [l] = lines();
    assert.equal(l?.["level"], "warn");
    assert.equal(l?.["message"], "connection failed");
    assert.equal(l?.["src.addr"], "1.2.3.4:5");
    assert.equal(l?.["dst.addr"], "6.7.8.9:10");
    assert.equal(l?.["direction"], "inbound");
    assert.equal(l?.["error"], "ip mismatch");
  });
});

describe("TrafficMetrics", () => {
  it("is registered once per registry and reuses label objects per pair", () => {
    const registry = new Registry();
    const m = TrafficMetrics.for(registry);
    assert.equal(TrafficMetrics.for(registry), m);
    assert.equal(m.labels(outbound), m.labels({ ...outbound }));
    assert.notEqual(m.labels(outbound), m.labels({ ...outbound, reporter: "destination" }));
  });

  it("tracks open sockets per reporter", async () => {
    const registry = new Registry();
    const m = TrafficMetrics.for(registry);
    m.socketOpened("source");
    m.socketOpened("source");
    m.socketClosed("source");
    m.socketOpened("destination");
    assert.equal(await value(registry, "istio_tcp_sockets_open", { reporter: "source" }), 1);
    assert.equal(await value(registry, "istio_tcp_sockets_open", { reporter: "destination" }), 1);
  });
});
