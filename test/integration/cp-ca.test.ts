/**
 * The CA service on the control plane's gRPC port: node tokens (local mode) and TokenReview
 * (Kubernetes mode against the API-server stand-in), impersonation limited to pods on the
 * caller's node, the TTL cap, and clear refusals.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import { KubeConfig } from "@kubernetes/client-node";
import { LocalTokenAuthority } from "../../src/control-plane/index.ts";
import { createCsr } from "../../src/lib/identity/index.ts";
import { FakeKubeApi } from "../../src/testing/fake-kube-api.ts";
import {
  HeldState,
  MESH_YAML,
  metricValue,
  podYaml,
  requestCertificate,
  startPlane,
  uid,
  waitFor,
  type PlaneHandle,
} from "./cp-harness.ts";

const run = promisify(execFile);

async function opensslVerify(chain: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "amb-cp-verify-"));
  try {
    const root = join(dir, "root.pem");
    const leaf = join(dir, "leaf.pem");
    const untrusted = join(dir, "untrusted.pem");
    await writeFile(root, chain[chain.length - 1]!);
    await writeFile(leaf, chain[0]!);
    await writeFile(untrusted, chain.slice(1, -1).join("") || chain[chain.length - 1]!);
    const { stdout } = await run("openssl", [
      "verify",
      "-CAfile",
      root,
      "-untrusted",
      untrusted,
      leaf,
    ]);
    return stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function refused(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code: number; details: string };
    return { code: e.code, details: e.details };
  }
  throw new Error("the request was not refused");
}

const WEB = "spiffe://cluster.local/ns/app/sa/web";
const DB = "spiffe://cluster.local/ns/app/sa/db";

describe("CA service, local node tokens", () => {
  let h: PlaneHandle;
  before(async () => {
    h = await startPlane({
      env: { MAX_WORKLOAD_CERT_TTL: "48h" },
      files: {
        "mesh.yaml": MESH_YAML,
        "pods.yaml": [
          podYaml("web-1", "node-a", "198.18.10.1", "web"),
          "---",
          podYaml("db-1", "node-b", "198.18.10.3", "db"),
        ].join("\n"),
      },
    });
  });
  after(async () => {
    await h.close();
  });

  it("node A's token obtains its pod's identity; the chain verifies with openssl", async () => {
    const { csrPem } = await createCsr(WEB);
    const chain = await requestCertificate(
      h.plane,
      { csr: csrPem, impersonate: WEB },
      await h.token("node-a"),
    );
    assert.ok(chain.length >= 2);
    for (const pem of chain) {
      assert.equal(pem.match(/BEGIN CERTIFICATE/g)?.length, 1, "one PEM per element");
      assert.ok(pem.endsWith("\n"));
    }
    const leaf = new X509Certificate(chain[0]!);
    assert.equal(leaf.subjectAltName, `URI:${WEB}`);
    assert.equal(chain[chain.length - 1], h.plane.ca.rootPem);
    assert.match(await opensslVerify(chain), /OK/);
  });

  it("without impersonation a caller gets its own identity", async () => {
    const own = "spiffe://cluster.local/ns/istio-system/sa/ztunnel";
    const { csrPem } = await createCsr(own);
    const chain = await requestCertificate(h.plane, { csr: csrPem }, await h.token("node-a"));
    assert.equal(new X509Certificate(chain[0]!).subjectAltName, `URI:${own}`);
  });

  it("node A is refused node B's pod identity and an identity no pod has, with a log line", async () => {
    const { csrPem } = await createCsr(DB);
    const tokenA = await h.token("node-a");
    const r1 = await refused(requestCertificate(h.plane, { csr: csrPem, impersonate: DB }, tokenA));
    assert.equal(r1.code, status.UNAUTHENTICATED);
    assert.match(r1.details, /no running pod with service account app\/db on node node-a/);
    const line = h.lines.find((l) => l.includes("certificate request refused") && l.includes(DB));
    assert.ok(line !== undefined, "a log line names the refusal");
    assert.match(line, /caller=istio-system\/ztunnel/);
    assert.match(line, /node=node-a/);

    const nobody = "spiffe://cluster.local/ns/app/sa/nobody";
    const r2 = await refused(
      requestCertificate(
        h.plane,
        { csr: (await createCsr(nobody)).csrPem, impersonate: nobody },
        tokenA,
      ),
    );
    assert.equal(r2.code, status.UNAUTHENTICATED);
    assert.match(r2.details, /app\/nobody/);
    // Node B may have it.
    const ok = await requestCertificate(
      h.plane,
      { csr: csrPem, impersonate: DB },
      await h.token("node-b"),
    );
    assert.equal(new X509Certificate(ok[0]!).subjectAltName, `URI:${DB}`);
  });

  it("the pod leaving the node takes the entitlement with it", async () => {
    await h.writeFile("pods.yaml", MESH_YAML);
    const { csrPem } = await createCsr(WEB);
    await waitFor("web-1 gone", async () => {
      const r = await requestCertificate(
        h.plane,
        { csr: csrPem, impersonate: WEB },
        await h.token("node-a"),
      ).then(
        () => undefined,
        (e: { code: number }) => e.code,
      );
      return r === status.UNAUTHENTICATED;
    });
  });

  it("the requested TTL is capped by MAX_WORKLOAD_CERT_TTL", async () => {
    const own = "spiffe://cluster.local/ns/istio-system/sa/ztunnel";
    const { csrPem } = await createCsr(own);
    const chain = await requestCertificate(
      h.plane,
      { csr: csrPem, validityDuration: BigInt(10 * 365 * 24 * 3600) },
      await h.token("node-a"),
    );
    const leaf = new X509Certificate(chain[0]!);
    const lifetime = (Date.parse(leaf.validTo) - Date.now()) / 1000;
    assert.ok(lifetime <= 48 * 3600 + 5, `lifetime ${lifetime}s exceeds the 48h cap`);
    assert.ok(lifetime > 47 * 3600);
  });

  it("a bad CSR and a bad token are refused with clear messages", async () => {
    const token = await h.token("node-a");
    const bad = await refused(requestCertificate(h.plane, { csr: "not a csr" }, token));
    assert.equal(bad.code, status.INVALID_ARGUMENT);
    assert.match(bad.details, /bad certificate request: .*CERTIFICATE REQUEST/);

    const { csrPem } = await createCsr(WEB);
    const garbage = await refused(requestCertificate(h.plane, { csr: csrPem }, "garbage"));
    assert.equal(garbage.code, status.UNAUTHENTICATED);
    assert.match(garbage.details, /authentication failed: token is not a valid JWT/);

    const none = await refused(requestCertificate(h.plane, { csr: csrPem }, undefined));
    assert.equal(none.code, status.UNAUTHENTICATED);
    assert.match(none.details, /no authorization header/);

    const otherDir = await mkdtemp(join(tmpdir(), "amb-cp-other-"));
    try {
      const other = await LocalTokenAuthority.loadOrCreate(otherDir);
      const forged = await other.issue({
        namespace: "istio-system",
        serviceAccount: "ztunnel",
        node: "node-a",
      });
      const r = await refused(requestCertificate(h.plane, { csr: csrPem }, forged));
      assert.equal(r.code, status.UNAUTHENTICATED);
      assert.match(r.details, /signature does not verify/);
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
    const metrics = (await h.getText("/metrics")).body;
    assert.ok((metricValue(metrics, "citadel_server_authentication_failure_count") ?? 0) >= 3);
    assert.ok((metricValue(metrics, "citadel_server_success_cert_issuance_count") ?? 0) >= 3);
  });
});

describe("Kubernetes mode: TokenReview against the API-server stand-in", () => {
  let api: FakeKubeApi;
  let h: PlaneHandle;
  const extra = (pod: string, podUid: string, node?: string) => ({
    "authentication.kubernetes.io/pod-name": [pod],
    "authentication.kubernetes.io/pod-uid": [podUid],
    ...(node !== undefined ? { "authentication.kubernetes.io/node-name": [node] } : {}),
  });

  before(async () => {
    api = new FakeKubeApi();
    await api.listen();
    api.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "istio-system" } });
    api.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "app" } });
    const pod = (ns: string, name: string, podUid: string, node: string, sa: string, ip: string) =>
      api.create({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: ns, uid: podUid, labels: { app: sa } },
        spec: { nodeName: node, serviceAccountName: sa, containers: [{ name: "c", image: "i" }] },
        status: { phase: "Running", podIP: ip, conditions: [{ type: "Ready", status: "True" }] },
      });
    const zta = pod("istio-system", "ztunnel-a", "uid-zt-a", "node-a", "ztunnel", "198.18.0.2");
    const ztb = pod("istio-system", "ztunnel-b", "uid-zt-b", "node-b", "ztunnel", "198.18.0.3");
    const uidOf = (o: Record<string, unknown>) => (o["metadata"] as { uid: string }).uid;
    const ztunnel = "system:serviceaccount:istio-system:ztunnel";
    api.setToken("zt-a", {
      username: ztunnel,
      audiences: ["istio-ca"],
      extra: extra("ztunnel-a", uidOf(zta), "node-a"),
    });
    // No node-name extra (older API servers): the node comes from the bound pod.
    api.setToken("zt-b", {
      username: ztunnel,
      audiences: ["istio-ca"],
      extra: extra("ztunnel-b", uidOf(ztb)),
    });
    api.setToken("zt-wrong-aud", {
      username: ztunnel,
      audiences: ["https://kubernetes.default.svc"],
      extra: extra("ztunnel-a", uidOf(zta), "node-a"),
    });
    // A token bound to a pod that has since been replaced.
    api.setToken("zt-stale", {
      username: ztunnel,
      audiences: ["istio-ca"],
      extra: extra("ztunnel-a", "uid-of-an-older-pod", "node-a"),
    });
    pod("app", "web-1", "uid-web-1", "node-a", "web", "198.18.10.1");
    pod("app", "db-1", "uid-db-1", "node-b", "db", "198.18.10.3");
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "fake", server: api.url, skipTLSVerify: true }],
      users: [{ name: "cp", token: "control-plane-token" }],
      contexts: [{ name: "fake", cluster: "fake", user: "cp" }],
      currentContext: "fake",
    });
    h = await startPlane({ flags: ["--kubeconfig", "/unused"], inputs: { kubeConfig: kc } });
  });
  after(async () => {
    await h.close();
    await api.close();
  });

  it("a valid ztunnel token gets a pod identity on its node, and xDS", async () => {
    const { csrPem } = await createCsr(WEB);
    const chain = await requestCertificate(h.plane, { csr: csrPem, impersonate: WEB }, "zt-a");
    assert.equal(new X509Certificate(chain[0]!).subjectAltName, `URI:${WEB}`);
    assert.match(await opensslVerify(chain), /OK/);
    const review = api.requests.find((r) => r.path.endsWith("/tokenreviews"));
    assert.equal(review?.method, "POST");
    // The node comes from the bound pod when the review carries no node-name.
    const db = await requestCertificate(
      h.plane,
      { csr: (await createCsr(DB)).csrPem, impersonate: DB },
      "zt-b",
    );
    assert.equal(new X509Certificate(db[0]!).subjectAltName, `URI:${DB}`);
    const refusedDb = await refused(
      requestCertificate(h.plane, { csr: (await createCsr(DB)).csrPem, impersonate: DB }, "zt-a"),
    );
    assert.equal(refusedDb.code, status.UNAUTHENTICATED);

    const c = new HeldState(h.plane, { node: "node-a", token: () => "zt-a" });
    try {
      await c.client.ready;
      assert.ok(c.addresses.has(uid("web-1")));
    } finally {
      c.close();
    }
  });

  it("an invalid token and a token for another audience are refused", async () => {
    const { csrPem } = await createCsr(WEB);
    const invalid = await refused(requestCertificate(h.plane, { csr: csrPem }, "nope"));
    assert.equal(invalid.code, status.UNAUTHENTICATED);
    assert.match(invalid.details, /rejected by the Kubernetes API server: invalid bearer token/);
    const aud = await refused(requestCertificate(h.plane, { csr: csrPem }, "zt-wrong-aud"));
    assert.equal(aud.code, status.UNAUTHENTICATED);
    assert.match(aud.details, /audience/);
    const stale = await refused(requestCertificate(h.plane, { csr: csrPem }, "zt-stale"));
    assert.equal(stale.code, status.UNAUTHENTICATED);
    assert.match(stale.details, /was replaced/);
  });
});
