/**
 * The Delta ADS server over real gRPC + TLS on 127.0.0.1, driven by raw streams (what any
 * client — ztunnel included — puts on the wire): first sync, incremental pushes to subscribers
 * only, removal, NACK of one resource, reconnect with known versions, alias lookups, debounce,
 * a stalled proxy, authentication, malformed input.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Client, credentials, status } from "@grpc/grpc-js";
import { create, toBinary } from "@bufbuild/protobuf";
import { fail, ok } from "../../src/lib/errors.ts";
import {
  AggregatedDiscoveryService,
  DeltaDiscoveryRequestSchema,
} from "../../src/lib/gen/envoy/service/discovery/v3/discovery_pb.ts";
import { AddressSchema } from "../../src/lib/gen/istio/workload/workload_pb.ts";
import { methodPath } from "../../src/lib/grpc/index.ts";
import { ADDRESS_TYPE_URL } from "../../src/lib/xds/index.ts";
import type { NackEvent, PushEvent, RefusedEvent } from "../../src/lib/xds/index.ts";
import {
  NODE,
  RawStream,
  SERVER_NAME,
  service,
  startServer,
  summary,
  workload,
} from "./xds-harness.ts";
import type { RunningServer } from "./xds-harness.ts";

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.reverse()) c();
});

async function server(...args: Parameters<typeof startServer<string, { node?: string }>>) {
  const s = await startServer<string, { node?: string }>(...args);
  cleanups.push(() => s.stop());
  return s;
}

function stream(s: RunningServer<string, { node?: string }>, metadata?: Record<string, string>) {
  const st = new RawStream(s.port, s.tls, metadata);
  cleanups.push(() => st.cancel());
  return st;
}

describe("xDS server: wildcard streams", () => {
  it("first sync, incremental update only to subscribers, removal", async () => {
    const pushes: PushEvent[] = [];
    const s = await server({
      observer: { pushed: (e) => pushes.push(e) },
      configure: (xds) =>
        xds.registerType({
          typeUrl: ADDRESS_TYPE_URL,
          schema: AddressSchema,
          // Workloads are per node; services go to everyone.
          select: (r, c) =>
            c.wildcard && (r.meta?.node === undefined || r.meta.node === c.proxy.nodeName),
        }),
    });
    s.xds.upsert(ADDRESS_TYPE_URL, [
      service("echo", "1", { aliases: ["/198.18.5.5"] }),
      workload("pod-a", "1", "198.18.1.5", { meta: { node: "node-a" } }),
      workload("pod-b", "1", "198.18.1.6", { meta: { node: "node-b" } }),
    ]);
    s.xds.flush();

    const a = stream(s);
    a.subscribe();
    const b = stream(s);
    b.send({
      typeUrl: ADDRESS_TYPE_URL,
      node: {
        ...NODE,
        id: "ztunnel~198.18.0.3~ztunnel-b.istio-system~istio-system.svc.cluster.local",
        metadata: { NODE_NAME: "node-b" },
      },
    });

    const a1 = await a.next();
    assert.deepEqual(summary(a1), { resources: ["ns/echo@1", "pod-a@1"], removed: [] });
    assert.deepEqual(a1.resources.find((r) => r.name === "ns/echo")?.aliases, ["/198.18.5.5"]);
    assert.equal(a1.resources[0]!.resource?.typeUrl, ADDRESS_TYPE_URL);
    a.ack(a1);
    const b1 = await b.next();
    assert.deepEqual(summary(b1), { resources: ["ns/echo@1", "pod-b@1"], removed: [] });
    b.ack(b1);

    // pod-a changes: only node-a's proxy hears of it.
    s.xds.upsert(ADDRESS_TYPE_URL, [
      workload("pod-a", "2", "198.18.1.5", { meta: { node: "node-a" } }),
    ]);
    s.xds.flush();
    const a2 = await a.next();
    assert.deepEqual(summary(a2), { resources: ["pod-a@2"], removed: [] });
    a.ack(a2);
    // A change both see: b's next response is that one, so pod-a never reached b.
    s.xds.upsert(ADDRESS_TYPE_URL, [service("echo", "2", { aliases: ["/198.18.5.5"] })]);
    s.xds.flush();
    assert.deepEqual(summary(await b.next()), { resources: ["ns/echo@2"], removed: [] });
    const a3 = await a.next();
    assert.deepEqual(summary(a3), { resources: ["ns/echo@2"], removed: [] });
    a.ack(a3);

    s.xds.remove(ADDRESS_TYPE_URL, ["pod-a"]);
    s.xds.flush();
    assert.deepEqual(summary(await a.next()), { resources: [], removed: ["pod-a"] });

    const latencies = pushes.filter((p) => p.latencyMs !== undefined);
    assert.ok(latencies.length >= 3, "pushes caused by changes report a latency");
    assert.ok(latencies.every((p) => p.latencyMs! >= 0 && p.bytes > 0));
    const debug = s.xds.connections({ versions: true }).find((c) => c.proxy?.nodeName === "node-a");
    assert.deepEqual(debug?.types[0]?.sent, { "ns/echo": "2" });
    assert.equal(debug?.proxy?.podName, "ztunnel-a");
    assert.equal(s.xds.stats().connections, 2);
  });

  it("reconnect with known versions: only the difference, removals included", async () => {
    const s = await server();
    s.xds.upsert(ADDRESS_TYPE_URL, [service("a", "1"), service("b", "1"), service("c", "1")]);
    s.xds.flush();
    const first = stream(s);
    first.subscribe();
    const r1 = await first.next();
    assert.deepEqual(summary(r1), { resources: ["ns/a@1", "ns/b@1", "ns/c@1"], removed: [] });
    first.ack(r1);
    first.close();
    await first.status;

    // While disconnected: b changes, c goes, d arrives.
    s.xds.upsert(ADDRESS_TYPE_URL, [service("b", "2"), service("d", "1")]);
    s.xds.remove(ADDRESS_TYPE_URL, ["ns/c"]);
    s.xds.flush();

    const second = stream(s);
    second.subscribe({ initialResourceVersions: { "ns/a": "1", "ns/b": "1", "ns/c": "1" } });
    assert.deepEqual(summary(await second.next()), {
      resources: ["ns/b@2", "ns/d@1"],
      removed: ["ns/c"],
    });
  });

  it("a proxy holding everything current still gets one (empty) first response", async () => {
    const s = await server();
    s.xds.upsert(ADDRESS_TYPE_URL, [service("a", "1")]);
    const st = stream(s);
    st.subscribe({ initialResourceVersions: { "ns/a": "1" } });
    assert.deepEqual(summary(await st.next()), { resources: [], removed: [] });
  });
});

describe("xDS server: NACK", () => {
  it("logs and reports the rejected resource, keeps serving, resends it only once changed", async () => {
    const nacks: NackEvent[] = [];
    const s = await server({ observer: { nacked: (e) => nacks.push(e) } });
    s.xds.upsert(ADDRESS_TYPE_URL, [
      service("good", "1"),
      service("bad", "1"),
      service("other", "1"),
    ]);
    s.xds.flush();
    const st = stream(s);
    st.subscribe();
    const r1 = await st.next();
    st.nack(r1, "ns/bad: unsupported tunnel protocol LEGACY_ISTIO_MTLS");
    // The rest stands: a later change of another resource carries just that one.
    s.xds.upsert(ADDRESS_TYPE_URL, [service("good", "2")]);
    s.xds.flush();
    const r2 = await st.next();
    assert.deepEqual(summary(r2), { resources: ["ns/good@2"], removed: [] });
    st.ack(r2);

    assert.equal(nacks.length, 1);
    assert.deepEqual(nacks[0]!.rejected, [
      { name: "ns/bad", reason: "unsupported tunnel protocol LEGACY_ISTIO_MTLS" },
    ]);
    assert.equal(nacks[0]!.nonce, r1.nonce);
    assert.equal(nacks[0]!.proxyId, NODE.id);
    assert.ok(
      s.lines.some(
        (l) => l.includes("NACK") && l.includes("unsupported tunnel protocol LEGACY_ISTIO_MTLS"),
      ),
      "the NACK is logged with its message",
    );
    const debug = s.xds.connections({ versions: true })[0]!.types[0]!;
    assert.equal(debug.rejected["ns/bad"]?.version, "1");
    assert.equal(debug.lastNack?.message, "ns/bad: unsupported tunnel protocol LEGACY_ISTIO_MTLS");
    assert.equal(s.xds.stats().byType[ADDRESS_TYPE_URL]?.nacks, 1);

    // Fixed: sent again, ACKed, no longer listed as rejected.
    s.xds.upsert(ADDRESS_TYPE_URL, [service("bad", "2")]);
    s.xds.flush();
    const r3 = await st.next();
    assert.deepEqual(summary(r3), { resources: ["ns/bad@2"], removed: [] });
    st.ack(r3);
    s.xds.upsert(ADDRESS_TYPE_URL, [service("other", "2")]);
    s.xds.flush();
    assert.deepEqual(summary(await st.next()), { resources: ["ns/other@2"], removed: [] });
    assert.deepEqual(s.xds.connections()[0]!.types[0]!.rejected, {});
  });
});

describe("xDS server: on-demand (explicit) subscriptions", () => {
  it("a lookup by alias gets the resource carrying it; an unknown name comes back removed", async () => {
    const s = await server({
      configure: (xds) =>
        xds.registerType({
          typeUrl: ADDRESS_TYPE_URL,
          schema: AddressSchema,
          select: (r, c) => c.wildcard || c.requested || r.meta?.node === c.proxy.nodeName,
        }),
    });
    s.xds.upsert(ADDRESS_TYPE_URL, [
      workload("local", "1", "198.18.1.2", { meta: { node: "node-a" } }),
      workload("pod-x", "1", "198.18.1.5", { meta: { node: "node-z" }, related: ["ns/echo"] }),
      service("echo", "1", { aliases: ["/198.18.5.5"] }),
      workload("pod-y", "1", "198.18.1.6", { meta: { node: "node-z" } }),
    ]);
    s.xds.flush();
    const st = stream(s);
    st.subscribe({ resourceNamesSubscribe: ["*"], resourceNamesUnsubscribe: ["*"] });
    const r0 = await st.next();
    assert.deepEqual(
      summary(r0),
      { resources: ["local@1"], removed: [] },
      "node-local workloads only",
    );
    st.ack(r0);

    st.send({ typeUrl: ADDRESS_TYPE_URL, resourceNamesSubscribe: ["/198.18.1.6"] });
    const r1 = await st.next();
    assert.deepEqual(summary(r1), { resources: ["pod-y@1"], removed: [] });
    assert.deepEqual(r1.resources[0]!.aliases, ["/198.18.1.6"]);
    st.ack(r1);

    st.send({ typeUrl: ADDRESS_TYPE_URL, resourceNamesSubscribe: ["/198.18.9.9"] });
    const r2 = await st.next();
    assert.deepEqual(summary(r2), { resources: [], removed: ["/198.18.9.9"] });
    st.ack(r2);

    // A VIP brings its service and the workloads behind it.
    st.send({ typeUrl: ADDRESS_TYPE_URL, resourceNamesSubscribe: ["/198.18.5.5"] });
    const r3 = await st.next();
    assert.deepEqual(summary(r3), { resources: ["ns/echo@1", "pod-x@1"], removed: [] });
    st.ack(r3);
    assert.deepEqual([...s.xds.connections()[0]!.types[0]!.subscriptions].sort(), [
      "/198.18.1.6",
      "/198.18.5.5",
      "/198.18.9.9",
    ]);
  });
});

describe("xDS server: debounce and flow control", () => {
  it("10 rapid changes make one push", async () => {
    // Changes 2 ms apart, well inside the 200 ms quiet time.
    const s = await server({ debounceMs: 200, maxDelayMs: 5000 });
    const st = stream(s);
    st.subscribe();
    const r0 = await st.next();
    st.ack(r0);
    const before = s.xds.stats().byType[ADDRESS_TYPE_URL]!.pushes;
    for (let i = 1; i <= 10; i++) {
      s.xds.upsert(ADDRESS_TYPE_URL, [service("hot", String(i))]);
      await new Promise((r) => setTimeout(r, 2));
    }
    const r1 = await st.next();
    assert.deepEqual(summary(r1), { resources: ["ns/hot@10"], removed: [] });
    st.ack(r1);
    // The next thing on the stream is the next change: nothing was pushed in between.
    s.xds.upsert(ADDRESS_TYPE_URL, [service("after", "1")]);
    s.xds.flush();
    assert.deepEqual(summary(await st.next()), { resources: ["ns/after@1"], removed: [] });
    assert.equal(s.xds.stats().byType[ADDRESS_TYPE_URL]!.pushes - before, 2);
  });

  it("a proxy that never ACKs does not delay another; its backlog stays bounded and coalesces", async () => {
    const s = await server({ debounceMs: 1000, maxDelayMs: 1000 });
    const names = Array.from({ length: 100 }, (_, i) => `n${i}`);
    s.xds.upsert(
      ADDRESS_TYPE_URL,
      names.map((n) => service(n, "0")),
    );
    s.xds.flush();
    const stalled = stream(s);
    stalled.subscribe();
    const first = await stalled.next(); // never ACKed (yet)
    assert.equal(first.resources.length, 100);
    const healthy = stream(s);
    healthy.subscribe();
    healthy.ack(await healthy.next());

    // 10,000 changes in 10 rounds of 1,000; the healthy proxy gets every round.
    let version = 0;
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 1000; i++) {
        version += 1;
        s.xds.upsert(ADDRESS_TYPE_URL, [service(names[version % 100]!, String(version))]);
      }
      s.xds.flush();
      const got = await healthy.next();
      assert.equal(got.resources.length, 100, `round ${round}: the healthy proxy is not held back`);
      healthy.ack(got);
    }
    const stalledState = s.xds
      .connections()
      .find((c) => c.types[0]?.inFlight?.nonce === first.nonce)!.types[0]!;
    assert.ok(
      stalledState.pending <= 100,
      `backlog ${stalledState.pending} bounded by the 100 names`,
    );
    assert.equal(stalled.unread, 0, "nothing more was sent to the stalled proxy");

    stalled.ack(first);
    const caughtUp = await stalled.next();
    assert.equal(caughtUp.resources.length, 100, "one coalesced response");
    const expected = new Map<string, string>();
    for (let v = 1; v <= version; v++) expected.set(`ns/${names[v % 100]}`, String(v));
    for (const r of caughtUp.resources) assert.equal(r.version, expected.get(r.name), r.name);
    stalled.ack(caughtUp);
    s.xds.upsert(ADDRESS_TYPE_URL, [service("n0", "last")]);
    s.xds.flush();
    assert.deepEqual(summary(await stalled.next()), { resources: ["ns/n0@last"], removed: [] });
  });
});

describe("xDS server: refusing streams", () => {
  it("authentication refused -> UNAUTHENTICATED with the reason; the caller reaches select", async () => {
    const refused: RefusedEvent[] = [];
    const callers: string[] = [];
    const s = await server({
      authenticate: (ctx) => {
        const auth = ctx.metadata.get("authorization")[0];
        return Promise.resolve(
          auth === "Bearer good-token"
            ? ok(`sa:${String(ctx.metadata.get("clusterid")[0])}`)
            : fail("no valid bearer token"),
        );
      },
      observer: { refused: (e) => refused.push(e) },
      configure: (xds) =>
        xds.registerType({
          typeUrl: ADDRESS_TYPE_URL,
          select: (_r, c) => {
            callers.push(c.caller);
            return true;
          },
        }),
    });
    s.xds.upsert(ADDRESS_TYPE_URL, [service("a", "1")]);
    const bad = stream(s, { authorization: "Bearer stolen" });
    bad.subscribe();
    const st = await bad.status;
    assert.equal(st.code, status.UNAUTHENTICATED);
    assert.equal(st.details, "authentication failed: no valid bearer token");
    assert.equal(refused[0]?.code, "UNAUTHENTICATED");
    assert.equal(s.xds.stats().refused, 1);

    const good = stream(s, { authorization: "Bearer good-token", clusterid: "Kubernetes" });
    good.subscribe();
    assert.deepEqual(summary(await good.next()), { resources: ["ns/a@1"], removed: [] });
    assert.deepEqual([...new Set(callers)], ["sa:Kubernetes"]);
  });

  it("a node the caller may not use -> PERMISSION_DENIED; a first request without node -> INVALID_ARGUMENT", async () => {
    const s = await server({
      authorizeProxy: (proxy) =>
        proxy.namespace === "istio-system" ? ok(undefined) : fail("namespace not allowed"),
    });
    const other = stream(s);
    other.send({
      typeUrl: ADDRESS_TYPE_URL,
      node: { id: "ztunnel~198.18.0.9~z.default~default.svc.cluster.local" },
    });
    const st1 = await other.status;
    assert.equal(st1.code, status.PERMISSION_DENIED);
    assert.match(st1.details, /namespace not allowed/);
    const anonymous = stream(s);
    anonymous.send({ typeUrl: ADDRESS_TYPE_URL });
    const st2 = await anonymous.status;
    assert.equal(st2.code, status.INVALID_ARGUMENT);
    assert.match(st2.details, /must carry node\.id/);
  });

  it("a throwing select hook ends only that proxy's stream, with INTERNAL", async () => {
    const s = await server({
      configure: (xds) =>
        xds.registerType({
          typeUrl: ADDRESS_TYPE_URL,
          select: (_r, c) => {
            if (c.proxy.nodeName === "node-bug") throw new Error("view index missing node-bug");
            return true;
          },
        }),
    });
    s.xds.upsert(ADDRESS_TYPE_URL, [service("a", "1")]);
    const buggy = stream(s);
    buggy.send({
      typeUrl: ADDRESS_TYPE_URL,
      node: {
        id: "ztunnel~198.18.0.8~z.istio-system~istio-system.svc.cluster.local",
        metadata: { NODE_NAME: "node-bug" },
      },
    });
    const fine = stream(s);
    fine.subscribe();
    const st = await buggy.status;
    assert.equal(st.code, status.INTERNAL);
    assert.equal(
      st.details,
      "control plane error while handling a request: view index missing node-bug",
    );
    assert.deepEqual(summary(await fine.next()), { resources: ["ns/a@1"], removed: [] });
    assert.ok(s.lines.some((l) => l.includes("view index missing node-bug")));
  });

  it("malformed request bytes end that stream with INTERNAL; the server keeps serving", async () => {
    const s = await server();
    s.xds.upsert(ADDRESS_TYPE_URL, [service("a", "1")]);
    const raw = new Client(
      `127.0.0.1:${s.port}`,
      credentials.createSsl(Buffer.from(s.tls.rootPem)),
      {
        "grpc.ssl_target_name_override": SERVER_NAME,
      },
    );
    cleanups.push(() => raw.close());
    const identity = (b: Buffer) => b;
    const call = raw.makeBidiStreamRequest(
      methodPath(AggregatedDiscoveryService.method.deltaAggregatedResources),
      identity,
      identity,
    );
    call.on("error", () => undefined);
    const done = new Promise<{ code: number; details: string }>((resolve) =>
      call.on("status", resolve),
    );
    const firstReply = new Promise((resolve) => call.once("data", resolve));
    call.write(
      Buffer.from(
        toBinary(
          DeltaDiscoveryRequestSchema,
          create(DeltaDiscoveryRequestSchema, { typeUrl: ADDRESS_TYPE_URL, node: NODE }),
        ),
      ),
    );
    await firstReply;
    call.write(Buffer.from("ffffffffffffffffffffff01", "hex"));
    const st = await done;
    assert.equal(st.code, status.INTERNAL);
    assert.match(
      st.details,
      /cannot decode envoy\.service\.discovery\.v3\.DeltaDiscoveryRequest \(12 bytes\)/,
    );
    // The broken stream is gone from the server's books; a new one is served.
    const deadline = Date.now() + 5000;
    while (s.xds.stats().connections > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(s.xds.stats().connections, 0);
    const fresh = stream(s);
    fresh.subscribe();
    assert.deepEqual(summary(await fresh.next()), { resources: ["ns/a@1"], removed: [] });
  });
});
