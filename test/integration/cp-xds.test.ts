/**
 * The control plane serving xDS to our XdsClient over gRPC+TLS on loopback, from a directory of
 * YAML: first sync, incremental pushes on edits and deletes, NACK reporting, reconnects with
 * known versions, on-demand lookups by VIP, node-local workloads, and surviving a restart.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { WorkloadSchema } from "../../src/lib/gen/istio/workload/workload_pb.ts";
import type { Workload } from "../../src/lib/gen/istio/workload/workload_pb.ts";
import { LogOutput, MemorySink } from "../../src/lib/log/index.ts";
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  XdsClient,
  buildProxyNode,
} from "../../src/lib/xds/index.ts";
import {
  HeldState,
  WEB_SERVICE,
  metricValue,
  podYaml,
  policyYaml,
  startPlane,
  uid,
  waitFor,
  type PlaneHandle,
} from "./cp-harness.ts";

interface ConnectionsBody {
  connections: {
    id: string;
    proxy: { node: string } | undefined;
    types: {
      type: string;
      subscriptions: string[];
      sentCount: number;
      lastAck?: { at: string };
      lastNack?: { message: string };
      rejected: Record<string, { reason: string }>;
    }[];
  }[];
}

describe("control plane xDS", () => {
  let h: PlaneHandle;
  const clients: HeldState[] = [];
  const client = (node: string, onDemand = false) => {
    const c = new HeldState(h.plane, { node, token: () => h.token(node), onDemand });
    clients.push(c);
    return c;
  };

  before(async () => {
    h = await startPlane();
  });
  after(async () => {
    for (const c of clients) c.close();
    await h.close();
  });

  it("first sync sends every Address and Authorization to a wildcard ztunnel", async () => {
    const c = client("node-a");
    await c.client.ready;
    assert.deepEqual(
      c.addressNames(),
      [WEB_SERVICE, uid("db-1"), uid("web-1"), uid("web-2")].sort(),
    );
    assert.deepEqual([...c.authorizations.keys()], ["app/allow-web"]);
    const db = c.addresses.get(uid("db-1"))!.address;
    assert.equal(db.type.case, "workload");
    if (db.type.case === "workload") {
      assert.equal(db.type.value.node, "node-b");
      assert.deepEqual(db.type.value.authorizationPolicies, ["app/allow-web"]);
    }
    c.close();
  });

  it("an edited file pushes only the changed resource; a deleted one removes it", async () => {
    const c = client("node-a");
    await c.client.ready;
    const before = c.messages.length;
    const oldPolicy = c.authorizations.get("app/allow-web")!.version;
    await h.writeFile("policy.yaml", policyYaml("cluster.local/ns/app/sa/other"));
    await waitFor(
      "the new policy version",
      () => c.authorizations.get("app/allow-web")!.version !== oldPolicy,
    );
    const pushed = c.messages.slice(before);
    assert.deepEqual(
      pushed.map((m) => [m.typeUrl, m.resources, m.removed]),
      [[AUTHORIZATION_TYPE_URL, 1, 0]],
      "one Authorization, no Address",
    );
    const rule = c.authorizations.get("app/allow-web")!.authorization.rules[0]!;
    assert.deepEqual(
      rule.clauses[0]!.matches[0]!.principals.map((p) => p.matchType.value),
      ["cluster.local/ns/app/sa/other"],
    );

    // A pod label change that moves it out of the service: only that workload (and the service
    // keeps its content: its VIP and ports do not depend on endpoints).
    const mark = c.messages.length;
    const webVersion = c.addresses.get(uid("web-2"))!.version;
    await h.writeFile("web-2.yaml", podYaml("web-2", "node-b", "198.18.10.2", "web-old", "web"));
    await waitFor("web-2 updated", () => c.addresses.get(uid("web-2"))!.version !== webVersion);
    const after = c.messages.slice(mark);
    assert.deepEqual(
      after.map((m) => [m.typeUrl, m.resources, m.removed]),
      [[ADDRESS_TYPE_URL, 1, 0]],
    );
    const w2 = c.addresses.get(uid("web-2"))!.address;
    assert.equal(w2.type.case === "workload" && Object.keys(w2.type.value.services).length, 0);

    const mark2 = c.messages.length;
    await h.removeFile("web-2.yaml");
    await waitFor("web-2 removed", () => !c.addresses.has(uid("web-2")));
    assert.deepEqual(
      c.messages.slice(mark2).map((m) => [m.typeUrl, m.resources, m.removed]),
      [[ADDRESS_TYPE_URL, 0, 1]],
    );
    // Put things back for the other tests.
    await h.writeFile("web-2.yaml", podYaml("web-2", "node-b", "198.18.10.2", "web"));
    await h.writeFile("policy.yaml", policyYaml("cluster.local/ns/app/sa/web"));
    await waitFor("web-2 back", () => c.addresses.has(uid("web-2")));
    c.close();
  });

  it("a NACK shows on /debug/connections and in pilot_total_xds_rejects", async () => {
    const c = client("node-a");
    c.refuse.set(uid("db-1"), "unsupported field");
    const conns = await waitFor("the NACK on the debug endpoint", async () => {
      const { body } = await h.getJson<ConnectionsBody>("/debug/connections");
      const mine = body.connections.filter((x) =>
        x.types.some((t) => t.type === "address" && t.lastNack !== undefined),
      );
      return mine.length > 0 ? mine : undefined;
    });
    const t = conns[0]!.types.find((x) => x.type === "address")!;
    assert.match(t.lastNack!.message, /Kubernetes\/\/Pod\/app\/db-1: unsupported field/);
    assert.equal(t.rejected[uid("db-1")]?.reason, "unsupported field");
    assert.equal(conns[0]!.proxy?.node, "node-a");
    const detail = await h.getJson<{ types: { type: string; sent: Record<string, string> }[] }>(
      `/debug/connections/${encodeURIComponent(conns[0]!.id)}`,
    );
    const sent = detail.body.types.find((x) => x.type === "address")!.sent;
    assert.ok(sent[WEB_SERVICE] !== undefined, "the debug view lists what was sent, with versions");
    const metrics = await h.getText("/metrics");
    assert.ok((metricValue(metrics.body, "pilot_total_xds_rejects", '{type="address"}') ?? 0) >= 1);
    assert.ok((metricValue(metrics.body, "pilot_xds", '{type="ztunnel"}') ?? 0) >= 1);
    // The edits of the earlier test were timed from change to push.
    assert.ok(
      (metricValue(metrics.body, "pilot_proxy_convergence_time_count", '{type="authorization"}') ??
        0) >= 1,
    );
    assert.ok(
      (metricValue(metrics.body, "ambient_xds_pushed_resources_total", '{type="address"}') ?? 0) >
        0,
    );
    c.close();
  });

  it("on-demand: a VIP lookup brings the service and its endpoints; node-local workloads always", async () => {
    const c = client("node-b", true);
    await waitFor("node-local workloads", () => c.addresses.size >= 2);
    assert.deepEqual(
      c.addressNames(),
      [uid("db-1"), uid("web-2")],
      "only node-b's workloads at first",
    );
    assert.equal(await c.client.lookup(ADDRESS_TYPE_URL, "/198.19.0.10"), "found");
    await waitFor("the service and its pods", () => c.addresses.size === 4);
    assert.deepEqual(
      c.addressNames(),
      [WEB_SERVICE, uid("db-1"), uid("web-1"), uid("web-2")].sort(),
    );
    assert.equal(await c.client.lookup(ADDRESS_TYPE_URL, "/198.18.99.99"), "removed");

    // A new pod on node-b arrives without asking; one on node-a does not.
    await h.writeFile("db-2.yaml", podYaml("db-2", "node-b", "198.18.10.4", "db"));
    await h.writeFile("db-3.yaml", podYaml("db-3", "node-a", "198.18.10.5", "db"));
    await waitFor("db-2 pushed", () => c.addresses.has(uid("db-2")));
    const wildcard = client("node-a");
    await waitFor("db-3 at a wildcard proxy", () => wildcard.addresses.has(uid("db-3")));
    assert.equal(c.addresses.has(uid("db-3")), false);
    await h.removeFile("db-2.yaml");
    await h.removeFile("db-3.yaml");
    await waitFor("db-2 gone", () => !c.addresses.has(uid("db-2")));
    c.close();
    wildcard.close();
  });

  it("debug endpoints show resources, enforcement and an index, as JSON", async () => {
    const vip = await h.getJson<{
      addresses: { count: number; resources: { name: string; resource?: unknown }[] };
    }>("/debug/resources?type=address&name=/198.19.0.10");
    assert.equal(vip.status, 200);
    assert.deepEqual(
      vip.body.addresses.resources.map((r) => r.name),
      [WEB_SERVICE],
    );
    assert.ok(vip.body.addresses.resources[0]!.resource !== undefined, "contents for one name");
    // Earlier tests add and remove pods; wait for the fixture's four addresses.
    const all = await waitFor("the fixture's resources", async () => {
      const r = await h.getJson<{
        addresses: { count: number };
        authorizations: { count: number };
      }>("/debug/resources");
      return r.body.addresses.count === 4 ? r : undefined;
    });
    assert.equal(all.body.authorizations.count, 1);
    const enforcement = await h.getJson<{ policies: { key: string; enforcedBy: string[] }[] }>(
      "/debug/enforcement",
    );
    assert.deepEqual(
      enforcement.body.policies.map((p) => [p.key, p.enforcedBy]),
      [["app/allow-web", ["ztunnel"]]],
    );
    const index = await h.getJson<{ endpoints: Record<string, string> }>("/debug");
    assert.ok("/debug/config-errors" in index.body.endpoints);
    const missing = await h.getJson<{ error: string }>("/debug/nothing");
    assert.equal(missing.status, 404);
    const stats = await h.getJson<{ byType: Record<string, { pushes: number }> }>("/debug/stats");
    assert.ok((stats.body.byType["address"]?.pushes ?? 0) > 0);
  });

  it("serves istio.workload.Workload: the workloads alone, named by uid, kept up to date", async () => {
    const held = new Map<string, { version: string; node: string; ips: number }>();
    const client = new XdsClient({
      address: `https://127.0.0.1:${h.plane.grpcPort}`,
      tls: () => ({ rootCertsPem: h.plane.rootCertPem }),
      token: () => h.token("node-a"),
      node: buildProxyNode({
        instanceIp: "198.18.0.2",
        podName: "workload-watcher",
        podNamespace: "istio-system",
        nodeName: "node-a",
      }),
      logger: new LogOutput({ sink: new MemorySink() }).logger("xds"),
      handlers: [
        {
          schema: WorkloadSchema,
          apply: ({ updates, removed }) => {
            for (const u of updates) {
              const w = u.resource as Workload;
              held.set(u.name, { version: u.version, node: w.node, ips: w.addresses.length });
            }
            for (const n of removed) held.delete(n);
          },
        },
      ],
    });
    client.start();
    try {
      await client.ready;
      await waitFor("the fixture's workloads", () => held.size === 3);
      assert.deepEqual([...held.keys()].sort(), [uid("db-1"), uid("web-1"), uid("web-2")]);
      assert.deepEqual(held.get(uid("db-1")), {
        ...held.get(uid("db-1"))!,
        node: "node-b",
        ips: 1,
      });
      await h.writeFile("db-7.yaml", podYaml("db-7", "node-b", "198.18.10.7", "db"));
      await waitFor("db-7 as a Workload", () => held.has(uid("db-7")));
      await h.removeFile("db-7.yaml");
      await waitFor("db-7 removed", () => !held.has(uid("db-7")));
    } finally {
      client.close();
    }
  });

  it("a proxy may not connect as another node's ztunnel with its token", async () => {
    const c = new HeldState(h.plane, { node: "node-b", token: () => h.token("node-a") });
    clients.push(c);
    await waitFor("a refusal", () => c.terminations > 0);
    assert.equal(c.addresses.size, 0);
    assert.ok(h.lines.some((l) => l.includes("xDS stream refused") && l.includes("node-b")));
    c.close();
  });

  it("a reconnect with known versions gets nothing again; a restart resyncs", async () => {
    const c = client("node-a");
    await c.client.ready;
    const held = new Map([...c.addresses].map(([n, v]) => [n, v.version]));
    const count = c.messages.length;
    // Ends every stream with OK: the client reconnects with initial_resource_versions.
    await h.plane.stop();
    await h.restart();
    await waitFor("a new stream", () => c.messages.length > count, 10_000);
    // Both types answered the first request, with nothing new to send.
    await waitFor("both first responses", () => c.messages.length >= count + 2, 10_000);
    const resent = c.messages.slice(count).reduce((n, m) => n + m.resources, 0);
    assert.equal(resent, 0, "versions the client held are not sent again");
    assert.deepEqual(new Map([...c.addresses].map(([n, v]) => [n, v.version])), held);

    // The restarted control plane pushes changes to the reconnected client.
    await h.writeFile("db-9.yaml", podYaml("db-9", "node-b", "198.18.10.9", "db"));
    await waitFor("db-9 after the restart", () => c.addresses.has(uid("db-9")), 10_000);
    c.close();
  });
});
