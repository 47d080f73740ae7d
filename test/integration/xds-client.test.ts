/**
 * XdsClient against XdsServer over real gRPC + TLS on 127.0.0.1: first sync and readiness,
 * incremental updates and removals reaching the handler, a NACK naming only the bad resource,
 * on-demand lookups, backoff while the server is down, reconnect and resync after a server
 * restart, certificate checks, termination reasons and message metrics.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { status } from "@grpc/grpc-js";
import type { Metadata } from "@grpc/grpc-js";
import { fail, ok } from "../../src/lib/errors.ts";
import { AggregatedDiscoveryService } from "../../src/lib/gen/envoy/service/discovery/v3/discovery_pb.ts";
import type { DeltaDiscoveryRequest } from "../../src/lib/gen/envoy/service/discovery/v3/discovery_pb.ts";
import { AuthorizationSchema } from "../../src/lib/gen/istio/security/authorization_pb.ts";
import { AddressSchema } from "../../src/lib/gen/istio/workload/workload_pb.ts";
import type { Address } from "../../src/lib/gen/istio/workload/workload_pb.ts";
import { addService, createGrpcServer } from "../../src/lib/grpc/index.ts";
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  XdsClient,
  buildProxyNode,
} from "../../src/lib/xds/index.ts";
import type {
  ClientNackEvent,
  MessageEvent,
  NackEvent,
  PushEvent,
  ResourceInput,
  TerminationEvent,
  TypeHandler,
  XdsClientOptions,
} from "../../src/lib/xds/index.ts";
import {
  SERVER_NAME,
  bind,
  memoryLogger,
  serverTls,
  service,
  startServer,
  workload,
} from "./xds-harness.ts";
import type { RunningServer } from "./xds-harness.ts";

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.reverse()) c();
});

const node = buildProxyNode({
  instanceIp: "198.18.0.2",
  podName: "ztunnel-a",
  podNamespace: "istio-system",
  nodeName: "node-a",
});

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** An Address handler keeping a map; refuses services whose hostname is empty. */
function addressHandler(): {
  handler: TypeHandler<typeof AddressSchema>;
  state: Map<string, Address>;
  versions: Map<string, string>;
} {
  const state = new Map<string, Address>();
  const versions = new Map<string, string>();
  return {
    state,
    versions,
    handler: {
      schema: AddressSchema,
      apply(batch) {
        const refused = [];
        for (const u of batch.updates) {
          const a = u.resource;
          if (a.type.case === "service" && a.type.value.hostname === "") {
            refused.push({ name: u.name, reason: "service without hostname" });
            continue;
          }
          state.set(u.name, a);
          versions.set(u.name, u.version);
        }
        for (const name of batch.removed) {
          state.delete(name);
          versions.delete(name);
        }
        return refused;
      },
    },
  };
}

function client(
  port: number,
  options: Partial<XdsClientOptions> & Pick<XdsClientOptions, "handlers">,
) {
  const { logger } = memoryLogger();
  const c = new XdsClient({
    address: `https://127.0.0.1:${port}`,
    node,
    logger,
    backoff: { jitter: 0 },
    ...options,
  });
  cleanups.push(() => c.close());
  return c;
}

async function tlsOptions() {
  const tls = await serverTls();
  return { rootCertsPem: tls.rootPem, altHostname: SERVER_NAME };
}

async function server(...args: Parameters<typeof startServer<string, { node?: string }>>) {
  const s = await startServer<string, { node?: string }>(...args);
  cleanups.push(() => s.stop());
  return s;
}

/** A port nothing listens on (bound once, then released). */
async function freePort(): Promise<number> {
  const g = createGrpcServer();
  const port = await bind(g, 0, await serverTls());
  g.forceShutdown();
  return port;
}

const hostname = (a: Address | undefined) =>
  a?.type.case === "service" ? a.type.value.hostname : undefined;

describe("XdsClient: wildcard", () => {
  it("syncs, becomes ready, applies changes and removals; auth metadata on the call; message metrics", async () => {
    const seen: Metadata[] = [];
    const pushes: PushEvent[] = [];
    const s = await server({
      authenticate: (ctx) => {
        seen.push(ctx.metadata);
        return Promise.resolve(ok("ztunnel"));
      },
      observer: { pushed: (e) => pushes.push(e) },
    });
    s.xds.upsert(ADDRESS_TYPE_URL, [service("a", "1"), service("b", "1")]);
    s.xds.flush();
    const { handler, state } = addressHandler();
    const messages: MessageEvent[] = [];
    const c = client(s.port, {
      handlers: [handler],
      tls: await tlsOptions(),
      token: () => "token-1",
      clusterId: "cluster-x",
      headers: { "x-extra": "yes" },
      observer: { message: (e) => messages.push(e) },
    });
    assert.equal(c.isReady, false);
    c.start();
    await c.ready;
    assert.equal(c.isReady, true);
    assert.deepEqual([...state.keys()].sort(), ["ns/a", "ns/b"]);
    assert.equal(hostname(state.get("ns/a")), "a.ns.svc.cluster.local");

    const md = seen[0]!;
    assert.deepEqual(md.get("authorization"), ["Bearer token-1"]);
    assert.deepEqual(md.get("clusterid"), ["cluster-x"]);
    assert.deepEqual(md.get("x-extra"), ["yes"]);
    const proxy = s.xds.connections()[0]!.proxy!;
    assert.equal(
      proxy.id,
      "ztunnel~198.18.0.2~ztunnel-a.istio-system~istio-system.svc.cluster.local",
    );
    assert.equal(proxy.nodeName, "node-a");

    s.xds.upsert(ADDRESS_TYPE_URL, [service("b", "2", { aliases: ["/198.18.5.5"] })]);
    await until(() => c.debug().types[0]!.held === 2 && pushes.length === 2, "the update");
    assert.equal(pushes[1]!.resources, 1, "only the changed resource was sent");
    s.xds.remove(ADDRESS_TYPE_URL, ["ns/a"]);
    await until(() => !state.has("ns/a"), "the removal");

    assert.equal(messages.length, 3);
    assert.ok(messages.every((m) => m.typeUrl === ADDRESS_TYPE_URL && m.bytes > 0));
    assert.deepEqual(
      messages.map((m) => [m.resources, m.removed]),
      [
        [2, 0],
        [1, 0],
        [0, 1],
      ],
    );
    assert.equal(
      messages.reduce((n, m) => n + m.bytes, 0),
      pushes.reduce((n, p) => n + p.bytes, 0),
      "bytes counted by the client = bytes the server wrote",
    );
  });

  it("NACKs only the bad resource of a batch, applies the rest; the server does not resend it until fixed", async () => {
    const serverNacks: NackEvent[] = [];
    const pushes: PushEvent[] = [];
    const s = await server({
      observer: { nacked: (e) => serverNacks.push(e), pushed: (e) => pushes.push(e) },
    });
    s.xds.upsert(ADDRESS_TYPE_URL, [service("a", "1")]);
    const { handler, state, versions } = addressHandler();
    const clientNacks: ClientNackEvent[] = [];
    const c = client(s.port, {
      handlers: [handler],
      tls: await tlsOptions(),
      observer: { nacked: (e) => clientNacks.push(e) },
    });
    c.start();
    await c.ready;

    // One batch: a good update and a service without hostname (the handler refuses those).
    s.xds.upsert(ADDRESS_TYPE_URL, [service("a", "2"), serviceWithoutHostname("bad", "1")]);
    await until(() => serverNacks.length === 1, "the NACK");
    assert.deepEqual(
      serverNacks[0]!.rejected.map((r) => [r.name, r.reason]),
      [["ns/bad", "service without hostname"]],
    );
    assert.equal(clientNacks[0]!.message, "ns/bad: service without hostname");
    await until(() => versions.get("ns/a") === "2", "the good half of the batch");
    assert.equal(state.has("ns/bad"), false);
    assert.equal(c.debug().types[0]!.held, 1, "the refused resource is not counted as held");

    // Another change: the push carries only it, not the rejected one.
    const before = pushes.length;
    s.xds.upsert(ADDRESS_TYPE_URL, [service("c", "1")]);
    await until(() => state.has("ns/c"), "the next change");
    assert.equal(pushes.length, before + 1);
    assert.equal(pushes.at(-1)!.resources, 1);

    // Fixed: accepted.
    s.xds.upsert(ADDRESS_TYPE_URL, [service("bad", "2")]);
    await until(() => state.has("ns/bad"), "the fixed resource");
    // Its ACK clears the server's record of the rejection.
    await until(
      () => Object.keys(s.xds.connections()[0]!.types[0]!.rejected).length === 0,
      "the ACK",
    );
    assert.equal(serverNacks.length, 1);
  });
});

function serviceWithoutHostname(name: string, version: string): ResourceInput<{ node?: string }> {
  const address = create(AddressSchema, {
    type: { case: "service", value: { name, namespace: "ns", hostname: "" } },
  });
  return { name: `ns/${name}`, version, resource: anyPack(AddressSchema, address) };
}

describe("XdsClient: on demand", () => {
  it("subscribes to nothing, gets node-local workloads, looks up by alias: found, removed, shared", async () => {
    const pushes: PushEvent[] = [];
    const s = await server({
      observer: { pushed: (e) => pushes.push(e) },
      configure: (xds) => {
        xds.registerType({
          typeUrl: ADDRESS_TYPE_URL,
          schema: AddressSchema,
          select: (r, ctx) => ctx.wildcard || ctx.requested || r.meta?.node === ctx.proxy.nodeName,
        });
        xds.registerType({ typeUrl: AUTHORIZATION_TYPE_URL, schema: AuthorizationSchema });
      },
    });
    s.xds.upsert(ADDRESS_TYPE_URL, [
      workload("local", "1", "198.18.1.2", { meta: { node: "node-a" } }),
      workload("remote", "1", "198.18.1.6", { meta: { node: "node-z" } }),
    ]);
    const { handler, state } = addressHandler();
    const c = client(s.port, {
      onDemand: true,
      tls: await tlsOptions(),
      handlers: [handler, { schema: AuthorizationSchema, onDemand: false, apply: () => undefined }],
    });
    c.start();
    await c.ready; // Authorization's first response; Address is on demand.
    await until(() => state.has("local"), "the node-local workload");
    assert.equal(state.has("remote"), false);

    assert.equal(await c.lookup(ADDRESS_TYPE_URL, "/198.18.1.6"), "found");
    assert.equal(state.has("remote"), true, "the handler ran before the lookup resolved");

    const before = pushes.length;
    const [x, y] = await Promise.all([
      c.lookup(ADDRESS_TYPE_URL, "/198.18.9.9"),
      c.lookup(ADDRESS_TYPE_URL, "/198.18.9.9"),
    ]);
    assert.deepEqual([x, y], ["removed", "removed"]);
    assert.equal(pushes.length - before, 1, "one request, one answer for both lookups");
    assert.deepEqual(pushes.at(-1), { ...pushes.at(-1)!, resources: 0, removed: 1 });

    // Held already: answered without a round trip.
    assert.equal(await c.lookup(ADDRESS_TYPE_URL, "/198.18.1.2"), "found");
    assert.equal(pushes.length - before, 1);
    // Asking again for a name answered "removed" goes to the server again.
    s.xds.upsert(ADDRESS_TYPE_URL, [
      workload("late", "1", "198.18.9.9", { meta: { node: "node-z" } }),
    ]);
    await until(() => state.has("late"), "the standing subscription bringing the late workload");
    assert.throws(() => c.lookup(AUTHORIZATION_TYPE_URL, "ns/policy"), /not watched on demand/);
  });

  it("a lookup without a server times out; close() settles the rest", async () => {
    const c = client(await freePort(), {
      onDemand: true,
      tls: await tlsOptions(),
      handlers: [addressHandler().handler],
      backoff: { jitter: 0, initialMs: 50, maxMs: 50 },
    });
    c.start();
    assert.equal(await c.lookup(ADDRESS_TYPE_URL, "/198.18.1.1", { timeoutMs: 30 }), "timeout");
    const pending = c.lookup(ADDRESS_TYPE_URL, "/198.18.1.2", { timeoutMs: 60_000 });
    c.close();
    assert.equal(await pending, "closed");
    assert.equal(c.state, "closed");
  });
});

describe("XdsClient: connection lifecycle", () => {
  it("backs off 10 ms doubling while the server is down, then connects and becomes ready", async () => {
    const port = await freePort();
    const terminations: TerminationEvent[] = [];
    const { handler, state } = addressHandler();
    const c = client(port, {
      handlers: [handler],
      tls: await tlsOptions(),
      backoff: { jitter: 0, initialMs: 10, maxMs: 80 },
      observer: { terminated: (e) => terminations.push(e) },
    });
    c.start();
    await until(() => terminations.length >= 5, "five failed attempts");
    assert.deepEqual(
      terminations.slice(0, 5).map((t) => [t.reason, t.retryInMs]),
      [
        ["ConnectionError", 10],
        ["ConnectionError", 20],
        ["ConnectionError", 40],
        ["ConnectionError", 80],
        ["ConnectionError", 80],
      ],
    );
    assert.equal(terminations[0]!.code, status.UNAVAILABLE);
    assert.equal(c.isReady, false);

    const s = await server({ port });
    s.xds.upsert(ADDRESS_TYPE_URL, [service("a", "1")]);
    await c.ready;
    assert.equal(state.has("ns/a"), true);
    assert.equal(c.state, "connected");
  });

  it("a server restart: reconnects at once, sends what it holds, gets only the difference", async () => {
    const tokens: string[] = [];
    let n = 0;
    const authenticate = (ctx: { metadata: Metadata }) => {
      tokens.push(String(ctx.metadata.get("authorization")[0]));
      return Promise.resolve(ok("z"));
    };
    const first = await server({ authenticate });
    const port = first.port;
    first.xds.upsert(ADDRESS_TYPE_URL, [service("a", "1"), service("b", "1"), service("c", "1")]);
    const terminations: TerminationEvent[] = [];
    const { handler, state, versions } = addressHandler();
    const c = client(port, {
      handlers: [handler],
      tls: await tlsOptions(),
      token: () => `token-${++n}`,
      observer: { terminated: (e) => terminations.push(e) },
    });
    c.start();
    await c.ready;
    assert.equal(state.size, 3);

    first.stop();
    await until(() => terminations.length >= 1, "the client noticing");
    assert.ok(
      ["Complete", "Reconnect"].includes(terminations[0]!.reason),
      `an orderly server stop is not an error (${terminations[0]!.reason})`,
    );
    assert.equal(terminations[0]!.retryInMs, 10);

    // The new server has moved on: b changed, c gone, d new.
    const pushes: PushEvent[] = [];
    const second: RunningServer<string, { node?: string }> = await server({
      port,
      authenticate,
      observer: { pushed: (e) => pushes.push(e) },
    });
    second.xds.upsert(ADDRESS_TYPE_URL, [service("a", "1"), service("b", "2"), service("d", "1")]);
    second.xds.flush();
    await until(
      () => state.has("ns/d") && !state.has("ns/c") && versions.get("ns/b") === "2",
      "the resync",
    );
    const firstPush = pushes.find((p) => p.latencyMs === undefined)!;
    assert.deepEqual(
      [firstPush.resources, firstPush.removed],
      [2, 1],
      "b and d sent, c removed; a not resent",
    );
    assert.equal(tokens.at(-1), `Bearer token-${n}`, "the token is read again for the new stream");
    assert.ok(n >= 2);
  });

  it("UNAUTHENTICATED ends the stream as Error and backs off", async () => {
    const s = await server({ authenticate: () => Promise.resolve(fail("token expired")) });
    const terminations: TerminationEvent[] = [];
    const c = client(s.port, {
      handlers: [addressHandler().handler],
      tls: await tlsOptions(),
      backoff: { jitter: 0, initialMs: 10, maxMs: 1000 },
      observer: { terminated: (e) => terminations.push(e) },
    });
    c.start();
    await until(() => terminations.length >= 3, "three refusals");
    assert.deepEqual(
      terminations.slice(0, 3).map((t) => [t.reason, t.code, t.details, t.retryInMs]),
      [
        ["Error", status.UNAUTHENTICATED, "authentication failed: token expired", 10],
        ["Error", status.UNAUTHENTICATED, "authentication failed: token expired", 20],
        ["Error", status.UNAUTHENTICATED, "authentication failed: token expired", 40],
      ],
    );
  });

  it("backs off across failing streams, and starts over after a stream that worked", async () => {
    // Streams 1 and 4 answer, are ACKed, then fail; 2 and 3 fail at once; 5 is kept.
    let streams = 0;
    const grpc = createGrpcServer();
    cleanups.push(() => grpc.forceShutdown());
    addService(grpc, AggregatedDiscoveryService, {
      deltaAggregatedResources(call) {
        streams += 1;
        const n = streams;
        call.on("data", (req: DeltaDiscoveryRequest) => {
          const healthy = n === 1 || n === 4;
          if (healthy && req.responseNonce === "") {
            call.write({ typeUrl: ADDRESS_TYPE_URL, nonce: `r${n}` });
          } else if (healthy) {
            call.emit("error", { code: status.INTERNAL, details: `boom ${n} after ack` });
          } else if (n <= 3) call.emit("error", { code: status.INTERNAL, details: `boom ${n}` });
        });
        call.on("end", () => call.end());
      },
    });
    const port = await bind(grpc, 0, await serverTls());
    const terminations: TerminationEvent[] = [];
    const c = client(port, {
      handlers: [addressHandler().handler],
      tls: await tlsOptions(),
      backoff: { jitter: 0, initialMs: 10, maxMs: 1000 },
      observer: { terminated: (e) => terminations.push(e) },
    });
    c.start();
    await until(() => terminations.length >= 4 && streams >= 5, "four failed streams and a fifth");
    assert.deepEqual(
      terminations.slice(0, 4).map((t) => [t.reason, t.details, t.retryInMs]),
      [
        ["Error", "boom 1 after ack", 10],
        ["Error", "boom 2", 20],
        ["Error", "boom 3", 40],
        ["Error", "boom 4 after ack", 10],
      ],
    );
  });

  it("refuses a server certificate that names neither the host nor ALT_XDS_HOSTNAME", async () => {
    const s = await server();
    const terminations: TerminationEvent[] = [];
    const tls = await serverTls();
    const c = client(s.port, {
      handlers: [addressHandler().handler],
      tls: { rootCertsPem: tls.rootPem },
      backoff: { jitter: 0, initialMs: 1000, maxMs: 1000 },
      observer: { terminated: (e) => terminations.push(e) },
    });
    c.start();
    await until(() => terminations.length >= 1, "the TLS failure");
    assert.equal(terminations[0]!.reason, "ConnectionError");
    assert.match(terminations[0]!.details, /altnames|certificate/i);
    assert.equal(s.xds.stats().connections, 0);
  });
});

describe("XdsClient: a response of a type it does not watch", () => {
  it("answers without error detail (no NACK) and keeps the stream", async () => {
    const requests: DeltaDiscoveryRequest[] = [];
    const grpc = createGrpcServer();
    cleanups.push(() => grpc.forceShutdown());
    addService(grpc, AggregatedDiscoveryService, {
      deltaAggregatedResources(call) {
        call.on("data", (req: DeltaDiscoveryRequest) => {
          requests.push(req);
          if (requests.length === 1) {
            call.write({ typeUrl: "type.googleapis.com/example.Unknown", nonce: "u1" });
            call.write({ typeUrl: ADDRESS_TYPE_URL, nonce: "a1" });
          }
        });
        call.on("end", () => call.end());
      },
    });
    const port = await bind(grpc, 0, await serverTls());
    const c = client(port, { handlers: [addressHandler().handler], tls: await tlsOptions() });
    c.start();
    await c.ready;
    await until(() => requests.length >= 3, "both answers");
    assert.deepEqual(
      requests.slice(1).map((r) => [r.typeUrl, r.responseNonce, r.errorDetail === undefined]),
      [
        ["type.googleapis.com/example.Unknown", "u1", true],
        [ADDRESS_TYPE_URL, "a1", true],
      ],
    );
    assert.equal(c.state, "connected");
  });
});
