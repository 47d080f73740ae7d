/**
 * ztunnel (the whole process, in this test's process) against a control plane built here from
 * src/lib: a real XdsServer and a real IstioCertificateService backed by CertificateAuthority,
 * on one gRPC server over TLS with the test PKI, token files for authentication.
 *
 * Checks: Address + Authorization sync, a bad resource NACKed by name while the rest applies,
 * certificates fetched for local HBONE workloads with ImpersonatedIdentity (token re-read per
 * call), readiness flipping to 200 once synced and certified, /config_dump, /logging, metrics,
 * incremental removals dropping certificates, and /quitquitquit draining to a clean stop.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { status as GrpcStatus } from "@grpc/grpc-js";
import type { Server } from "@grpc/grpc-js";
import { fail, ok } from "../../src/lib/errors.ts";
import { IstioCertificateService } from "../../src/lib/gen/istio/v1/auth/ca_pb.ts";
import {
  AuthorizationSchema,
  Action,
  Scope,
} from "../../src/lib/gen/istio/security/authorization_pb.ts";
import { AddressSchema, TunnelProtocol } from "../../src/lib/gen/istio/workload/workload_pb.ts";
import {
  GrpcStatusError,
  addService,
  createGrpcServer,
  unaryHandler,
} from "../../src/lib/grpc/index.ts";
import { identitiesFromCertificate, formatIdentity } from "../../src/lib/identity/index.ts";
import { MemorySink } from "../../src/lib/log/index.ts";
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  XdsServer,
  type ResourceInput,
} from "../../src/lib/xds/index.ts";
import { createTestPki, type TestPki } from "../../src/testing/pki.ts";
import { ZtunnelApp, loadConfig } from "../../src/ztunnel/index.ts";
import { SERVER_NAME, bind, serverTls } from "./xds-harness.ts";

const dir = mkdtempSync(join(tmpdir(), "ztunnel-app-"));
const rootFile = join(dir, "root-cert.pem");
const tokenFile = join(dir, "istio-token");
const validTokens = new Set(["token-1", "token-2"]);

interface CaRequest {
  readonly authorization: string | undefined;
  readonly clusterId: string | undefined;
  readonly impersonated: unknown;
  readonly validity: bigint;
}

function workload(
  name: string,
  opts: { sa: string; node: string; ip: number[]; hbone?: boolean; services?: string[] },
): ResourceInput {
  const uid = `Kubernetes//Pod/default/${name}`;
  return {
    name: uid,
    resource: create(AddressSchema, {
      type: {
        case: "workload",
        value: {
          uid,
          name,
          namespace: "default",
          serviceAccount: opts.sa,
          node: opts.node,
          tunnelProtocol: opts.hbone === false ? TunnelProtocol.NONE : TunnelProtocol.HBONE,
          addresses: [new Uint8Array(opts.ip)],
          services: Object.fromEntries(
            (opts.services ?? []).map((s) => [
              s,
              { ports: [{ servicePort: 80, targetPort: 8080 }] },
            ]),
          ),
        },
      },
    }),
    aliases: [`/${opts.ip.join(".")}`],
  };
}

const SERVER_SVC = "default/server.default.svc.cluster.local";

function serviceResource(): ResourceInput {
  return {
    name: SERVER_SVC,
    resource: create(AddressSchema, {
      type: {
        case: "service",
        value: {
          name: "server",
          namespace: "default",
          hostname: "server.default.svc.cluster.local",
          addresses: [{ network: "", address: new Uint8Array([198, 18, 100, 1]) }],
          ports: [{ servicePort: 80, targetPort: 8080 }],
        },
      },
    }),
    aliases: ["/198.18.100.1"],
  };
}

function policyResource(): ResourceInput {
  return {
    name: "default/allow-client",
    resource: create(AuthorizationSchema, {
      name: "allow-client",
      namespace: "default",
      scope: Scope.NAMESPACE,
      action: Action.ALLOW,
      rules: [
        {
          clauses: [
            {
              matches: [
                {
                  principals: [
                    { matchType: { case: "exact", value: "cluster.local/ns/default/sa/client" } },
                  ],
                },
              ],
            },
          ],
        },
      ],
    }),
  };
}

/** A workload whose address is 3 bytes long: ztunnel must refuse it (NACK). */
function badWorkload(): ResourceInput {
  const uid = "Kubernetes//Pod/default/bad";
  return {
    name: uid,
    resource: create(AddressSchema, {
      type: {
        case: "workload",
        value: { uid, name: "bad", namespace: "default", addresses: [new Uint8Array([1, 2, 3])] },
      },
    }),
  };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function get(url: string, init?: RequestInit): Promise<{ status: number; body: string }> {
  const res = await fetch(url, init);
  return { status: res.status, body: await res.text() };
}

interface ControlPlane {
  readonly pki: TestPki;
  readonly xds: XdsServer<string>;
  readonly grpc: Server;
  readonly port: number;
  readonly caRequests: CaRequest[];
  /** CA answers wait until this is called. */
  readonly openCa: () => void;
  stop(): void;
}

const bearer = (md: { get(k: string): unknown[] }) => {
  const v = md.get("authorization")[0];
  return typeof v === "string" ? v : undefined;
};

/** An XdsServer and an IstioCertificateService on one TLS gRPC server, checking tokens. */
async function startControlPlane(): Promise<ControlPlane> {
  const pki = await createTestPki();
  const tls = await serverTls();
  writeFileSync(rootFile, tls.rootPem);
  writeFileSync(tokenFile, "token-1\n");
  const caRequests: CaRequest[] = [];
  let openCa!: () => void;
  const caGate = new Promise<void>((resolve) => {
    openCa = resolve;
  });

  const xds = new XdsServer<string>({
    authenticate: ({ metadata }) => {
      const auth = bearer(metadata);
      return Promise.resolve(
        auth !== undefined && validTokens.has(auth.replace(/^Bearer /, ""))
          ? ok("ztunnel")
          : fail(`bad token ${auth ?? "(none)"}`),
      );
    },
    debounceMs: 10,
    maxDelayMs: 50,
  });
  xds.registerType({ typeUrl: ADDRESS_TYPE_URL, schema: AddressSchema });
  xds.registerType({ typeUrl: AUTHORIZATION_TYPE_URL, schema: AuthorizationSchema });
  xds.upsert(ADDRESS_TYPE_URL, [
    workload("client-1", { sa: "client", node: "node-a", ip: [198, 18, 1, 10] }),
    workload("server-1", {
      sa: "server",
      node: "node-b",
      ip: [198, 18, 1, 20],
      services: [SERVER_SVC],
    }),
    workload("legacy-1", { sa: "legacy", node: "node-a", ip: [198, 18, 1, 30], hbone: false }),
    serviceResource(),
  ]);
  xds.upsert(AUTHORIZATION_TYPE_URL, [policyResource()]);

  const grpc = createGrpcServer();
  xds.attach(grpc);
  addService(grpc, IstioCertificateService, {
    createCertificate: unaryHandler(async (call) => {
      const md = call.metadata;
      const auth = bearer(md);
      const impersonated = call.request.metadata?.["ImpersonatedIdentity"];
      caRequests.push({
        authorization: auth,
        clusterId: md.get("clusterid")[0] as string | undefined,
        impersonated,
        validity: call.request.validityDuration,
      });
      if (auth === undefined || !validTokens.has(auth.replace(/^Bearer /, ""))) {
        throw new GrpcStatusError(GrpcStatus.UNAUTHENTICATED, "bad token");
      }
      if (typeof impersonated !== "string") {
        throw new GrpcStatusError(GrpcStatus.INVALID_ARGUMENT, "ImpersonatedIdentity missing");
      }
      await caGate;
      const chain = await pki.ca.sign(call.request.csr, {
        identity: impersonated,
        ttlSeconds: Number(call.request.validityDuration),
      });
      return { certChain: chain };
    }),
  });
  const port = await bind(grpc, 0, tls);
  return {
    pki,
    xds,
    grpc,
    port,
    caRequests,
    openCa,
    stop() {
      openCa();
      xds.close();
      grpc.forceShutdown();
    },
  };
}

/** ztunnel's environment for a control plane on `port` (everything on 127.0.0.1). */
function ztunnelEnv(port: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    XDS_ADDRESS: `https://127.0.0.1:${port}`,
    CA_ADDRESS: `https://127.0.0.1:${port}`,
    ALT_XDS_HOSTNAME: SERVER_NAME,
    ALT_CA_HOSTNAME: SERVER_NAME,
    XDS_ROOT_CA: rootFile,
    CA_ROOT_CA: rootFile,
    AUTH_TOKEN: tokenFile,
    CLUSTER_ID: "test-cluster",
    NODE_NAME: "node-a",
    POD_NAME: "ztunnel-a",
    POD_NAMESPACE: "istio-system",
    INSTANCE_IP: "198.18.0.2",
    INPOD_ENABLED: "false",
    SECRET_TTL: "1h",
    RUST_LOG: "info",
    ADMIN_ADDRESS: "127.0.0.1:0",
    METRICS_ADDRESS: "127.0.0.1:0",
    READINESS_ADDRESS: "127.0.0.1:0",
    ...extra,
  };
}

after(() => rmSync(dir, { recursive: true, force: true }));

describe("ztunnel against a control plane", () => {
  let pki: TestPki;
  let xds: XdsServer<string>;
  let cp: ControlPlane;
  let app: ZtunnelApp;
  const sink = new MemorySink();
  let caRequests: CaRequest[];
  let openCa: () => void;
  let base: { admin: string; metrics: string; readiness: string };

  before(async () => {
    cp = await startControlPlane();
    ({ pki, xds, caRequests, openCa } = cp);
    const config = loadConfig(ztunnelEnv(cp.port), { fileExists: () => false });
    app = await ZtunnelApp.start({
      config,
      logSink: sink,
      xdsBackoff: { initialMs: 10, maxMs: 200 },
    });
    const a = app.addresses;
    base = {
      admin: `http://127.0.0.1:${a.admin.port}`,
      metrics: `http://127.0.0.1:${a.metrics.port}`,
      readiness: `http://127.0.0.1:${a.readiness.port}`,
    };
  });

  after(async () => {
    openCa();
    await app?.shutdown("test over");
    cp?.stop();
  });

  const dump = async () =>
    JSON.parse((await get(`${base.admin}/config_dump`)).body) as Record<string, unknown>;
  const uids = (d: Record<string, unknown>) =>
    (d["workloads"] as { uid: string }[]).map((w) => w.uid);

  it("is not ready while the certificates of local workloads are missing, then ready", async () => {
    await until(
      async () => (await get(`${base.readiness}/healthz/ready`)).body.includes("certificates"),
      "xDS sync",
    );
    const notReady = await get(`${base.readiness}/healthz/ready`);
    assert.equal(notReady.status, 503);
    assert.match(notReady.body, /^not ready, pending: certificates\n/);
    assert.match(notReady.body, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/client/);
    openCa();
    await until(async () => (await get(`${base.readiness}/healthz/ready`)).status === 200, "ready");
    assert.equal((await get(`${base.readiness}/healthz/ready`)).body, "ready\n");
  });

  it("syncs Address and Authorization", async () => {
    const d = await dump();
    assert.deepEqual(uids(d), [
      "Kubernetes//Pod/default/client-1",
      "Kubernetes//Pod/default/legacy-1",
      "Kubernetes//Pod/default/server-1",
    ]);
    assert.deepEqual(
      (d["services"] as { hostname: string; endpoints: object }[]).map((s) => [
        s.hostname,
        Object.keys(s.endpoints),
      ]),
      [["server.default.svc.cluster.local", ["Kubernetes//Pod/default/server-1"]]],
    );
    assert.deepEqual(
      (d["policies"] as { namespace: string; name: string }[]).map(
        (p) => `${p.namespace}/${p.name}`,
      ),
      ["default/allow-client"],
    );
    const [conn] = xds.connections();
    assert.equal(conn?.proxy?.nodeName, "node-a");
    assert.equal(
      conn?.proxy?.id,
      "ztunnel~198.18.0.2~ztunnel-a.istio-system~istio-system.svc.cluster.local",
    );
    for (const t of conn?.types ?? []) {
      assert.ok(t.lastAck, `${t.typeUrl} ACKed`);
      assert.equal(t.lastNack, undefined);
    }
  });

  it("NACKs a bad resource by name and keeps the rest of the response", async () => {
    xds.upsert(ADDRESS_TYPE_URL, [
      badWorkload(),
      workload("extra-1", { sa: "extra", node: "node-b", ip: [198, 18, 1, 60] }),
    ]);
    await until(
      async () => uids(await dump()).includes("Kubernetes//Pod/default/extra-1"),
      "extra-1",
    );
    assert.ok(!uids(await dump()).includes("Kubernetes//Pod/default/bad"));
    const address = xds.connections()[0]?.types.find((t) => t.typeUrl === ADDRESS_TYPE_URL);
    assert.ok(address?.lastNack, "the Address response was NACKed");
    assert.equal(
      address.lastNack.message,
      "Kubernetes//Pod/default/bad: addresses[0]: address has 3 bytes (expected 4 or 16)",
    );
    assert.deepEqual(Object.keys(address.rejected), ["Kubernetes//Pod/default/bad"]);
    assert.equal((await get(`${base.readiness}/healthz/ready`)).status, 200, "still ready");
  });

  it("fetched a certificate for the local HBONE workload, impersonating it", async () => {
    assert.deepEqual(
      caRequests.map((r) => r.impersonated),
      ["spiffe://cluster.local/ns/default/sa/client"],
      "only client-1 is local and HBONE (legacy-1 is TCP, server-1 is on node-b)",
    );
    const [req] = caRequests;
    assert.equal(req?.authorization, "Bearer token-1");
    assert.equal(req?.clusterId, "test-cluster");
    assert.equal(req?.validity, 3600n);

    const certs = (await dump())["certificates"] as {
      identity: string;
      state: string;
      certChain: { pem: string; serialNumber: string }[];
      rootCerts: { pem: string }[];
    }[];
    assert.equal(certs.length, 1);
    const c = certs[0]!;
    assert.equal(c.identity, "spiffe://cluster.local/ns/default/sa/client");
    assert.equal(c.state, "Available");
    const leaf = new X509Certificate(Buffer.from(c.certChain[0]!.pem, "base64").toString());
    assert.deepEqual(identitiesFromCertificate(leaf).map(formatIdentity), [c.identity]);
    assert.equal(c.certChain[0]!.serialNumber, BigInt(`0x${leaf.serialNumber}`).toString());
    assert.equal(Buffer.from(c.rootCerts[0]!.pem, "base64").toString(), pki.rootPem);
    assert.deepEqual(app.certificates.roots(), [pki.rootPem]);
  });

  it("re-reads the token for each CA call and follows incremental changes", async () => {
    writeFileSync(tokenFile, "token-2\n");
    xds.upsert(ADDRESS_TYPE_URL, [
      workload("second-1", { sa: "second", node: "node-a", ip: [198, 18, 1, 40] }),
    ]);
    xds.remove(ADDRESS_TYPE_URL, ["Kubernetes//Pod/default/server-1"]);
    await until(() => caRequests.length === 2, "a certificate request for the new workload");
    assert.equal(caRequests[1]?.impersonated, "spiffe://cluster.local/ns/default/sa/second");
    assert.equal(caRequests[1]?.authorization, "Bearer token-2");
    await until(
      async () => !uids(await dump()).includes("Kubernetes//Pod/default/server-1"),
      "removal",
    );
    const d = await dump();
    assert.ok(uids(d).includes("Kubernetes//Pod/default/second-1"));
    assert.deepEqual(
      (d["services"] as { endpoints: object }[]).map((s) => Object.keys(s.endpoints)),
      [[]],
      "the removed workload left the service",
    );

    // The last local workload with identity "second" leaves: its certificate goes too.
    await until(
      () =>
        app.certificates.isAvailable({
          trustDomain: "cluster.local",
          namespace: "default",
          serviceAccount: "second",
        }),
      "second's certificate",
    );
    xds.remove(ADDRESS_TYPE_URL, ["Kubernetes//Pod/default/second-1"]);
    await until(
      async () =>
        ((await dump())["certificates"] as { identity: string }[]).every(
          (c) => !c.identity.endsWith("/sa/second"),
        ),
      "the certificate to be dropped",
    );
  });

  it("/logging changes the level at runtime; a bad level is 400", async () => {
    assert.equal((await get(`${base.admin}/logging`)).body, "current log level is info\n");
    const bad = await get(`${base.admin}/logging?level=chatty`, { method: "POST" });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /unknown log level "chatty"/);
    const r = await get(`${base.admin}/logging?level=debug`, { method: "POST" });
    assert.equal(r.status, 200);
    assert.equal(r.body, "current log level is debug\n");
    const before = sink.lines.length;
    xds.upsert(ADDRESS_TYPE_URL, [
      workload("third-1", { sa: "legacy", node: "node-b", ip: [198, 18, 1, 50] }),
    ]);
    await until(
      () => sink.lines.slice(before).some((l) => l.includes("\tdebug\txds\treceived response")),
      "an xds debug line",
    );
    await get(`${base.admin}/logging?level=info`, { method: "POST" });
  });

  it("exposes istio_build, the xDS counters and process metrics", async () => {
    for (const path of ["/metrics", "/stats/prometheus"]) {
      const m = await get(`${base.metrics}${path}`);
      assert.equal(m.status, 200);
      assert.match(m.body, /^istio_build\{component="ztunnel",tag="[^"]+"\} 1$/m);
      const messages =
        /^istio_xds_message_total\{url="type\.googleapis\.com\/istio\.workload\.Address"\} (\d+)$/m.exec(
          m.body,
        );
      assert.ok(messages && Number(messages[1]) >= 3, "several Address responses");
      assert.match(
        m.body,
        /^istio_xds_message_total\{url="type\.googleapis\.com\/istio\.security\.Authorization"\} 1$/m,
      );
      const bytes =
        /^istio_xds_message_bytes_total\{url="type\.googleapis\.com\/istio\.workload\.Address"\} (\d+)$/m.exec(
          m.body,
        );
      assert.ok(bytes && Number(bytes[1]) > 100);
      assert.match(m.body, /^process_cpu_seconds_total \d/m);
    }
    // The control plane ends the stream: a "Complete" termination, then a reconnect.
    const connectionsBefore = xds.stats().connections;
    for (const c of xds.connections()) assert.ok(c);
    xds.close();
    await until(
      async () =>
        /^istio_xds_connection_terminations_total\{reason="Complete"\} 1$/m.test(
          (await get(`${base.metrics}/metrics`)).body,
        ),
      "a Complete termination",
    );
    assert.ok(connectionsBefore >= 1);
  });

  it("/quitquitquit drains and stops everything", async () => {
    const r = await get(`${base.admin}/quitquitquit`, { method: "POST" });
    assert.equal(r.status, 200);
    await app.closed;
    await assert.rejects(fetch(`${base.readiness}/healthz/ready`));
    await assert.rejects(fetch(`${base.admin}/config_dump`));
    assert.ok(sink.lines.some((l) => /ztunnel stopped reason="admin \/quitquitquit"/.test(l)));
  });
});

describe("ztunnel with on-demand xDS", () => {
  it("holds nothing up front and fetches an address when the data path asks", async (t) => {
    const cp = await startControlPlane();
    cp.openCa();
    t.after(() => cp.stop());
    const config = loadConfig(
      ztunnelEnv(cp.port, { XDS_ON_DEMAND: "true", ISTIO_META_DNS_CAPTURE: "false" }),
      { fileExists: () => false },
    );
    const app = await ZtunnelApp.start({ config, logSink: new MemorySink() });
    t.after(() => app.shutdown("test over"));
    const ready = `http://127.0.0.1:${app.addresses.readiness.port}/healthz/ready`;
    await until(async () => (await get(ready)).status === 200, "ready (policies only)");
    assert.equal([...app.state.policies()].length, 1, "Authorization stays wildcard");
    assert.equal([...app.state.workloads()].length, 0, "no Address pushed up front");

    const demand = app.inputs.demand;
    assert.ok(demand, "ProxyInputs.demand exists in on-demand mode");
    assert.equal(await demand.demand("/198.18.1.20"), "found");
    assert.equal(app.state.workloadByAddress("", "198.18.1.20")?.name, "server-1");
    assert.equal(await demand.demand("/198.18.9.9"), "removed", "unknown to the control plane");
    const address = cp.xds.connections()[0]?.types.find((x) => x.typeUrl === ADDRESS_TYPE_URL);
    assert.equal(address?.wildcard, false);
    assert.ok(address?.subscriptions.includes("/198.18.1.20"));
  });

  it("without on-demand mode ProxyInputs has no demand hook", async (t) => {
    const cp = await startControlPlane();
    cp.openCa();
    t.after(() => cp.stop());
    const app = await ZtunnelApp.start({
      config: loadConfig(ztunnelEnv(cp.port), { fileExists: () => false }),
      logSink: new MemorySink(),
    });
    t.after(() => app.shutdown("test over"));
    assert.equal(app.inputs.demand, undefined);
  });
});
