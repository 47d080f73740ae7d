/**
 * The local API server on loopback: manifests from the config directory are served read-only
 * (status, pod annotations and bindings may change and survive file edits), Services get VIPs,
 * runtime objects survive a restart, clients resuming from the old run relist, pods are deleted
 * gracefully, tokens are enforced — all through the ordinary clients.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeConfigStore } from "../../src/lib/config/index.ts";
import { KubeClient, type Json } from "../../src/lib/kube-api/index.ts";
import { LogOutput } from "../../src/lib/log/index.ts";
import { LocalApiServer, kubeconfigYaml } from "../../src/local/apiserver/index.ts";

const log = new LogOutput({ spec: { defaultLevel: "warn", scopes: new Map() } }).logger("test");

async function eventually(fn: () => void | Promise<void>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      await fn();
      return;
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

const manifests = `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: solo, namespace: shop, labels: {app: web}}
spec:
  containers: [{name: c, image: i, command: ["node", "x.ts"]}]
`;

describe("local API server", () => {
  const dirs: string[] = [];
  const servers: LocalApiServer[] = [];
  const stores: KubeConfigStore[] = [];
  after(async () => {
    for (const s of stores) await s.close();
    for (const s of servers) await s.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const setup = () => {
    const d = mkdtempSync(join(tmpdir(), "amb-apiserver-test-"));
    dirs.push(d);
    mkdirSync(join(d, "config"));
    writeFileSync(join(d, "config", "app.yaml"), manifests);
    return d;
  };
  const start = async (d: string, extra: { tokenFile?: string } = {}) => {
    const s = await LocalApiServer.start({
      configDir: join(d, "config"),
      stateDir: join(d, "state"),
      host: "127.0.0.1",
      port: 0,
      serviceCidr: "198.18.16.0/20",
      log,
      rescanIntervalMs: 0,
      ...extra,
    });
    servers.push(s);
    return s;
  };
  const kc = (url: string, token?: string) => {
    const k = new KubeConfig();
    k.loadFromString(kubeconfigYaml({ server: url, cluster: "t", ...(token ? { token } : {}) }));
    return k;
  };

  it("serves manifests read-only with VIPs, overlays that survive edits, and persists runtime objects", async () => {
    const d = setup();
    let api = await start(d);
    const client = new KubeClient(kc(api.url));
    const svc = await client.get("/api/v1/namespaces/shop/services/web");
    assert.ok(svc.ok);
    const vip = (svc.value["spec"] as Json)["clusterIP"] as string;
    assert.equal(vip, "198.18.16.1");

    // Writes to a manifest's object are refused, except status, annotations and binding.
    const put = await client.patch("/api/v1/namespaces/shop/services/web", {
      metadata: { labels: { x: "y" } },
    });
    assert.ok(
      !put.ok && put.reason.code === 405 && /defined by a manifest/.test(put.reason.message),
    );
    const del = await client.delete("/api/v1/namespaces/shop/pods/solo");
    assert.ok(!del.ok && del.reason.code === 405, JSON.stringify(del));
    const bind = await client.create("/api/v1/namespaces/shop/pods/solo/binding", {
      apiVersion: "v1",
      kind: "Binding",
      metadata: { name: "solo" },
      target: { kind: "Node", name: "node1" },
    });
    assert.ok(bind.ok, JSON.stringify(bind));
    const st = await client.patch("/api/v1/namespaces/shop/pods/solo/status", {
      metadata: { annotations: { "ambient.istio.io/redirection": "enabled" } },
      status: { phase: "Running", podIP: "198.19.0.2" },
    });
    assert.ok(st.ok, JSON.stringify(st));

    // Runtime objects: a ReplicaSet and a pod created through the API.
    const rs = await client.create("/apis/apps/v1/namespaces/shop/replicasets", {
      apiVersion: "apps/v1",
      kind: "ReplicaSet",
      metadata: { name: "web-abc" },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "web" } },
        template: {
          metadata: { labels: { app: "web" } },
          spec: { containers: [{ name: "c", image: "i" }] },
        },
      },
    });
    assert.ok(rs.ok, JSON.stringify(rs));
    const bad = await client.create("/api/v1/namespaces/shop/pods", {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "bad" },
      spec: { containers: [{ name: "c", image: "i", ports: [{ containerPort: 70000 }] }] },
    });
    assert.ok(!bad.ok && bad.reason.code === 422, JSON.stringify(bad));
    const p = await client.create("/api/v1/namespaces/shop/pods", {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "web-abc-xyz12", labels: { app: "web" } },
      spec: {
        nodeName: "node2",
        terminationGracePeriodSeconds: 5,
        containers: [{ name: "c", image: "i" }],
      },
    });
    assert.ok(p.ok);
    assert.equal((p.value["status"] as Json)["phase"], "Pending");

    // Graceful deletion: the pod is marked, then removed with grace 0 (as the kubelet does).
    const marked = await client.delete("/api/v1/namespaces/shop/pods/web-abc-xyz12");
    assert.ok(marked.ok);
    assert.equal((marked.value["metadata"] as Json)["deletionGracePeriodSeconds"], 5);
    assert.ok((marked.value["metadata"] as Json)["deletionTimestamp"]);

    // A client watching with the ordinary store sees the state; then the server restarts.
    const store = new KubeConfigStore({
      kubeConfig: kc(api.url),
      log,
      kinds: ["Pod", "Service"],
      watchTimeoutSeconds: 30,
      backoff: { initialMs: 20, maxMs: 100 },
    });
    stores.push(store);
    await store.start();
    assert.equal(store.get("Pod", "shop", "solo")?.spec.nodeName, "node1");
    assert.equal(
      store.get("Pod", "shop", "solo")?.metadata.annotations["ambient.istio.io/redirection"],
      "enabled",
    );

    // An edit of the file keeps the overlays.
    writeFileSync(
      join(d, "config", "app.yaml"),
      manifests.replace("labels: {app: web}", "labels: {app: web, v: two}"),
    );
    await api.files.rescan();
    await eventually(() =>
      assert.equal(store.get("Pod", "shop", "solo")?.metadata.labels["v"], "two"),
    );
    assert.equal(store.get("Pod", "shop", "solo")?.status?.podIP, "198.19.0.2");
    assert.equal(store.get("Pod", "shop", "solo")?.spec.nodeName, "node1");

    const port = api.port;
    await api.close();
    api = await LocalApiServer.start({
      configDir: join(d, "config"),
      stateDir: join(d, "state"),
      host: "127.0.0.1",
      port,
      serviceCidr: "198.18.16.0/20",
      log,
      rescanIntervalMs: 0,
    });
    servers.push(api);
    const again = await client.get("/apis/apps/v1/namespaces/shop/replicasets/web-abc");
    assert.ok(again.ok);
    assert.equal((again.value["metadata"] as Json)["uid"], (rs.value["metadata"] as Json)["uid"]);
    const pod2 = await client.get("/api/v1/namespaces/shop/pods/web-abc-xyz12");
    assert.ok(
      pod2.ok && (pod2.value["metadata"] as Json)["deletionTimestamp"],
      "terminating pod kept",
    );
    const svc2 = await client.get("/api/v1/namespaces/shop/services/web");
    assert.ok(
      svc2.ok && (svc2.value["spec"] as Json)["clusterIP"] === vip,
      "same VIP after restart",
    );
    const solo = await client.get("/api/v1/namespaces/shop/pods/solo");
    assert.ok(solo.ok && (solo.value["spec"] as Json)["nodeName"] === "node1", "binding persisted");
    // The watching client relisted and converges on the new run's objects.
    await eventually(() => {
      const rv = Number(store.get("Service", "shop", "web")?.metadata.resourceVersion);
      assert.ok(rv > port, "resourceVersion from the new run");
    }, 10_000);
    const gone = await client.delete("/api/v1/namespaces/shop/pods/web-abc-xyz12", {
      gracePeriodSeconds: 0,
    });
    assert.ok(gone.ok);
    await eventually(() => assert.equal(store.get("Pod", "shop", "web-abc-xyz12"), undefined));
  });

  it("enforces bearer tokens from a token file, except on health endpoints", async () => {
    const d = setup();
    writeFileSync(join(d, "tokens.csv"), "# tokens\ns3cret,admin,1\n");
    const api = await start(d, { tokenFile: join(d, "tokens.csv") });
    const health = await fetch(`${api.url}/healthz`);
    assert.equal(health.status, 200);
    const anon = await new KubeClient(kc(api.url)).get("/api/v1/namespaces/shop/pods");
    assert.ok(!anon.ok && anon.reason.code === 401);
    const wrong = await new KubeClient(kc(api.url, "nope")).get("/api/v1/pods");
    assert.ok(!wrong.ok && wrong.reason.code === 401);
    const ok = await new KubeClient(kc(api.url, "s3cret")).get("/api/v1/namespaces/shop/pods");
    assert.ok(ok.ok);
    assert.equal((ok.value["items"] as Json[]).length, 1);
  });
});
