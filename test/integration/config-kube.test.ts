/**
 * The Kubernetes config source against the local API-server stand-in, over real sockets: initial
 * sync, changes, a dropped watch resumed without loss or duplicates, 410 Gone and relist,
 * bookmarks, status writes.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { LogOutput, MemorySink } from "../../src/lib/log/index.ts";
import { DEFAULT_RESOURCES, FakeKubeApi } from "../../src/testing/fake-kube-api.ts";
import { KubeConfigStore, type ConfigBatch, type Kind } from "../../src/lib/config/index.ts";

function kubeConfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "fake", server, skipTLSVerify: true }],
    users: [{ name: "tester", token: "test-token" }],
    contexts: [{ name: "fake", cluster: "fake", user: "tester" }],
    currentContext: "fake",
  });
  return kc;
}

async function eventually(check: () => void, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

const ns = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, labels },
});
/** A Pod; `v` changes its labels (status is not writable through the main resource). */
const pod = (name: string, v = "1", ip?: string) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "apps", labels: { app: name, v } },
  spec: { containers: [{ name: "c", image: "i" }] },
  ...(ip ? { status: { phase: "Running", podIP: ip, podIPs: [{ ip }] } } : {}),
});

describe("KubeConfigStore against the API-server stand-in", () => {
  let api: FakeKubeApi;
  let store: KubeConfigStore;
  let events: string[];
  let sink: MemorySink;

  const start = async (
    kinds: readonly Kind[] = ["Namespace", "Pod", "Gateway"],
    fake?: FakeKubeApi,
  ) => {
    if (fake) {
      await api.close();
      api = fake;
    }
    const url = await api.listen();
    sink = new MemorySink();
    store = new KubeConfigStore({
      kubeConfig: kubeConfig(url),
      log: new LogOutput({ sink, spec: { defaultLevel: "debug", scopes: new Map() } }).logger(
        "config",
      ),
      kinds,
      backoff: { initialMs: 100, maxMs: 400 },
      unservedRetryMs: 200,
      watchTimeoutSeconds: 30,
    });
    store.subscribe((b: ConfigBatch) => {
      for (const e of b.events) events.push(`${b.initial ? "initial " : ""}${e.type} ${e.key}`);
    });
    await store.start();
  };
  const take = () => events.splice(0);
  const requests = (path: string, watch: boolean) =>
    api.requests.filter((r) => r.path === path && (r.query["watch"] === "1") === watch);

  beforeEach(() => {
    api = new FakeKubeApi();
    events = [];
  });
  afterEach(async () => {
    await store.close();
    await api.close();
  });

  it("syncs every kind, with list items that lack apiVersion/kind", async () => {
    api.create(ns("apps", { "istio.io/dataplane-mode": "ambient" }));
    api.create(pod("a", "1", "198.18.0.10"));
    api.create({
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: "deny", namespace: "apps" },
      spec: { action: "DENY" },
    });
    await start(DEFAULT_RESOURCES.map((r) => r.kind as Kind));
    assert.deepEqual(take().sort(), [
      "initial added AuthorizationPolicy/apps/deny",
      "initial added Namespace/apps",
      "initial added Pod/apps/a",
    ]);
    const p = store.get("Pod", "apps", "a")!;
    assert.equal(p.apiVersion, "v1");
    assert.equal(p.status?.podIP, "198.18.0.10");
    assert.match(p.metadata.uid, /^[0-9a-f-]{36}$/);
    const onServer = api.get("v1", "Pod", "apps", "a") as {
      metadata: { resourceVersion: string; uid: string };
    };
    assert.equal(p.metadata.resourceVersion, onServer.metadata.resourceVersion);
    assert.equal(p.metadata.uid, onServer.metadata.uid);
    assert.equal(store.servedVersion("AuthorizationPolicy"), "security.istio.io/v1");
    assert.deepEqual(store.errors(), []);
    // Every watch asks for bookmarks and a server-side timeout.
    await eventually(() => assert.equal(api.watchCount, DEFAULT_RESOURCES.length));
    const w = api.requests.filter((r) => r.query["watch"] === "1");
    assert.equal(w.length, DEFAULT_RESOURCES.length);
    assert.ok(
      w.every(
        (r) => r.query["allowWatchBookmarks"] === "true" && r.query["timeoutSeconds"] === "30",
      ),
    );
    assert.ok(
      api.requests.every((r) => r.authorization === "Bearer test-token"),
      "kubeconfig credentials sent",
    );
  });

  it("propagates adds, updates and deletes", async () => {
    await start();
    take();
    api.create(ns("apps"));
    api.create(pod("a"));
    await eventually(() =>
      assert.deepEqual([...events].sort(), ["added Namespace/apps", "added Pod/apps/a"].sort()),
    );
    take();
    api.update(pod("a", "2"));
    api.update(ns("apps", { "istio.io/dataplane-mode": "ambient" }));
    await eventually(() => assert.equal(events.length, 2));
    assert.deepEqual(take().sort(), ["updated Namespace/apps", "updated Pod/apps/a"]);
    assert.equal(
      store.get("Namespace", "", "apps")?.metadata.labels["istio.io/dataplane-mode"],
      "ambient",
    );
    api.remove("v1", "Pod", "apps", "a");
    await eventually(() => assert.deepEqual([...events], ["deleted Pod/apps/a"]));
    take();
    assert.equal(store.get("Pod", "apps", "a"), undefined);
  });

  it("resumes a dropped watch from the last resourceVersion, losing and repeating nothing", async () => {
    api.create(pod("a"));
    await start(["Pod"]);
    take();
    api.create(pod("b"));
    await eventually(() => assert.deepEqual([...events], ["added Pod/apps/b"]));
    take();
    const lastSeen = store.get("Pod", "apps", "b")!.metadata.resourceVersion;
    api.dropWatches();
    // Written while no watch is open: must arrive once the watch resumes.
    api.create(pod("c"));
    api.update(pod("a", "2"));
    await eventually(() => assert.equal(events.length, 2));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(take().sort(), ["added Pod/apps/c", "updated Pod/apps/a"]);
    const watches = requests("/api/v1/pods", true);
    assert.equal(watches.at(-1)?.query["resourceVersion"], lastSeen);
    assert.equal(requests("/api/v1/pods", false).length, 1, "no relist");
  });

  it("relists after 410 Gone and converges, deleting what went away in the gap", async () => {
    api.create(pod("a"));
    api.create(pod("b"));
    await start(["Pod"]);
    take();
    // One synchronous step, so the reflector cannot reconnect in between.
    api.dropWatches();
    api.remove("v1", "Pod", "apps", "a");
    api.create(pod("c"));
    api.update(pod("b", "2"));
    api.compact();
    await eventually(() => assert.equal(events.length, 3));
    assert.deepEqual(take().sort(), [
      "added Pod/apps/c",
      "deleted Pod/apps/a",
      "updated Pod/apps/b",
    ]);
    assert.equal(requests("/api/v1/pods", false).length, 2, "listed again");
    assert.ok(sink.lines.some((l) => l.includes("410 Gone")));
    assert.deepEqual(
      store.list("Pod").map((p) => p.metadata.name),
      ["b", "c"],
    );
  });

  it("relists after an HTTP 410 too", async () => {
    await start(["Pod"], new FakeKubeApi({ expiredWatch: "http" }));
    api.dropWatches();
    api.create(pod("x"));
    api.compact();
    await eventually(() =>
      assert.deepEqual(
        [...events].filter((e) => !e.startsWith("initial")),
        ["added Pod/apps/x"],
      ),
    );
    take();
    assert.equal(requests("/api/v1/pods", false).length, 2);
  });

  it("advances its resourceVersion on bookmarks, so a quiet watch survives compaction", async () => {
    api.create(pod("a"));
    await start(["Pod", "Namespace"]);
    // Other kinds' writes move the global resourceVersion past what the Pod watch has seen.
    for (let i = 0; i < 3; i++) api.create(ns(`n${i}`));
    await eventually(() => assert.equal(store.list("Namespace").length, 3));
    const bookmarkRv = api.resourceVersion;
    assert.notEqual(store.resourceVersion("Pod"), bookmarkRv);
    api.sendBookmarks();
    await eventually(() => assert.equal(store.resourceVersion("Pod"), bookmarkRv));
    api.dropWatches();
    api.compact();
    await eventually(() => assert.equal(api.watchCount, 2));
    const podWatches = requests("/api/v1/pods", true);
    assert.equal(podWatches.at(-1)?.query["resourceVersion"], bookmarkRv);
    assert.equal(requests("/api/v1/pods", false).length, 1, "no relist needed");
  });

  it("writes Gateway status and Pod annotations through the status subresource", async () => {
    api.create({
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name: "waypoint", namespace: "apps" },
      spec: {
        gatewayClassName: "istio-waypoint",
        listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }],
      },
    });
    api.create(pod("a"));
    await start();
    take();
    const w = await store.writeStatus({
      type: "status",
      kind: "Gateway",
      namespace: "apps",
      name: "waypoint",
      status: {
        addresses: [{ type: "Hostname", value: "waypoint.apps.svc.cluster.local" }],
        conditions: [
          {
            type: "Programmed",
            status: "True",
            reason: "Programmed",
            message: "",
            lastTransitionTime: "2025-01-01T00:00:00Z",
          },
        ],
      },
    });
    assert.ok(w.ok, JSON.stringify(w));
    const onServer = api.get("gateway.networking.k8s.io/v1", "Gateway", "apps", "waypoint") as {
      status: { addresses: { value: string }[] };
    };
    assert.equal(onServer.status.addresses[0]?.value, "waypoint.apps.svc.cluster.local");
    assert.equal(
      store.get("Gateway", "apps", "waypoint")?.status?.addresses?.[0]?.value,
      "waypoint.apps.svc.cluster.local",
    );
    const p = await store.writeStatus({
      type: "podAnnotations",
      namespace: "apps",
      name: "a",
      annotations: { "ambient.istio.io/redirection": "enabled" },
    });
    assert.ok(p.ok);
    const podOnServer = api.get("v1", "Pod", "apps", "a") as {
      metadata: { annotations: Record<string, string> };
    };
    assert.equal(podOnServer.metadata.annotations["ambient.istio.io/redirection"], "enabled");
    assert.ok(
      api.requests.some(
        (r) => r.method === "PATCH" && r.path === "/api/v1/namespaces/apps/pods/a/status",
      ),
    );
    await eventually(() =>
      assert.deepEqual([...events].sort(), ["updated Gateway/apps/waypoint", "updated Pod/apps/a"]),
    );
    take();
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(take(), [], "the watch event of our own write is not delivered twice");
    const missing = await store.writeStatus({
      type: "podAnnotations",
      namespace: "apps",
      name: "nope",
      annotations: {},
    });
    assert.equal(!missing.ok && missing.reason.code, "not-found");
  });

  it("keeps the last good version of an object the server holds in an invalid form", async () => {
    api.create({
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: "p", namespace: "apps" },
      spec: { action: "DENY" },
    });
    await start(["AuthorizationPolicy"]);
    api.update({
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: "p", namespace: "apps" },
      spec: { action: "MAYBE" },
    });
    await eventually(() => assert.equal(store.errors().length, 1));
    assert.equal(
      store.errors()[0]?.reason,
      'must be one of ALLOW, DENY, AUDIT, CUSTOM (got "MAYBE")',
    );
    assert.equal(store.errors()[0]?.key, "AuthorizationPolicy/apps/p");
    assert.equal(
      (store.get("AuthorizationPolicy", "apps", "p")?.spec as { action: string }).action,
      "DENY",
    );
  });

  it("syncs without a kind whose CRD is missing, and reports it", async () => {
    await start(
      ["Pod", "TCPRoute"],
      new FakeKubeApi({ resources: DEFAULT_RESOURCES.filter((r) => r.kind !== "TCPRoute") }),
    );
    assert.equal(store.hasSynced, true);
    assert.match(
      store.errors()[0]!.reason,
      /TCPRoute is not served by the API server \(tried gateway.networking.k8s.io\/v1alpha2\); is its CRD installed\?/,
    );
  });
});

describe("KubeConfigStore version fallback", () => {
  let api: FakeKubeApi;
  let store: KubeConfigStore | undefined;
  before(() => {
    // A cluster with an older Istio: security.istio.io served as v1beta1 only.
    api = new FakeKubeApi({
      resources: DEFAULT_RESOURCES.map((r) =>
        r.group === "security.istio.io" ? { ...r, versions: ["v1beta1"] } : r,
      ),
    });
  });
  after(async () => {
    await store?.close();
    await api.close();
  });
  it("reads a kind with the first version the server serves", async () => {
    const url = await api.listen();
    api.create({
      apiVersion: "security.istio.io/v1beta1",
      kind: "PeerAuthentication",
      metadata: { name: "default", namespace: "istio-system" },
      spec: { mtls: { mode: "STRICT" } },
    });
    store = new KubeConfigStore({
      kubeConfig: kubeConfig(url),
      log: new LogOutput({ sink: new MemorySink() }).logger("config"),
      kinds: ["PeerAuthentication"],
    });
    await store.start();
    assert.equal(store.servedVersion("PeerAuthentication"), "security.istio.io/v1beta1");
    assert.equal(store.list("PeerAuthentication")[0]?.apiVersion, "security.istio.io/v1beta1");
  });
});
