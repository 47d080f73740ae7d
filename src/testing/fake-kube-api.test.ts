import assert from "node:assert/strict";
import { get } from "node:http";
import { after, before, describe, it } from "node:test";
import { FakeKubeApi } from "./fake-kube-api.ts";

/** The parts of API objects, lists and Status bodies these tests look at. */
interface Json {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    resourceVersion: string;
    generation: number;
    continue?: string;
    annotations: Record<string, string>;
  };
  spec: { gatewayClassName: string };
  status: unknown;
  items: Json[];
  code: number;
  reason: string;
}
interface WatchEvent {
  type: string;
  object: Json;
}

/** Opens a watch and collects its events until `count` arrived or the stream ended. */
function watchEvents(
  url: string,
  count: number,
  timeoutMs = 5000,
): Promise<{ status: number; events: WatchEvent[]; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const events: WatchEvent[] = [];
    let buf = "";
    const req = get(url, (res) => {
      res.setEncoding("utf8");
      const timer = setTimeout(() => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, events, ended: false });
      }, timeoutMs);
      res.on("data", (chunk: string) => {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) !== -1) {
          events.push(JSON.parse(buf.slice(0, nl)) as WatchEvent);
          buf = buf.slice(nl + 1);
        }
        if (events.length >= count) {
          clearTimeout(timer);
          req.destroy();
          resolve({ status: res.statusCode ?? 0, events, ended: false });
        }
      });
      res.on("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, events, ended: true });
      });
    });
    req.on("error", reject);
  });
}

async function call(
  method: string,
  url: string,
  body?: unknown,
  type = "application/json",
): Promise<{ status: number; json: Json }> {
  const res = await fetch(url, {
    method,
    headers: { "content-type": type },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as Json };
}

const pod = (name: string, ns = "default") => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: ns },
  spec: { containers: [{ name: "c", image: "i" }] },
});

describe("FakeKubeApi", () => {
  const api = new FakeKubeApi({ bookmarkIntervalMs: 0 });
  let base: string;
  before(async () => {
    base = await api.listen();
  });
  after(async () => {
    await api.close();
  });

  it("lists core resources like the real server: typed list, bare items, a resourceVersion", async () => {
    api.create(pod("a"));
    api.create(pod("b", "other"));
    const all = await call("GET", `${base}/api/v1/pods`);
    assert.equal(all.status, 200);
    assert.equal(all.json["kind"], "PodList");
    assert.equal(all.json["apiVersion"], "v1");
    assert.equal(all.json["metadata"]["resourceVersion"], api.resourceVersion);
    assert.deepEqual(
      all.json["items"].map((i: Json) => [
        i["metadata"]["namespace"],
        i["metadata"]["name"],
        i["kind"],
      ]),
      [
        ["default", "a", undefined],
        ["other", "b", undefined],
      ],
    );
    const one = await call("GET", `${base}/api/v1/namespaces/other/pods`);
    assert.deepEqual(
      one.json["items"].map((i: Json) => i["metadata"]["name"]),
      ["b"],
    );
    const missing = await call("GET", `${base}/apis/example.com/v1/widgets`);
    assert.equal(missing.status, 404);
  });

  it("serves custom resources with typed items, cluster-scoped ones without namespaces", async () => {
    const created = await call("POST", `${base}/apis/gateway.networking.k8s.io/v1/gatewayclasses`, {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "GatewayClass",
      metadata: { name: "istio-waypoint" },
      spec: { controllerName: "istio.io/mesh-controller" },
    });
    assert.equal(created.status, 201);
    assert.match(created.json["metadata"]["uid"], /^[0-9a-f-]{36}$/);
    const list = await call("GET", `${base}/apis/gateway.networking.k8s.io/v1beta1/gatewayclasses`);
    assert.equal(list.json["items"][0]!["apiVersion"], "gateway.networking.k8s.io/v1beta1");
    assert.equal(list.json["items"][0]!["kind"], "GatewayClass");
    assert.equal(list.json["items"][0]!["metadata"]["namespace"], undefined);
  });

  it("pages lists with limit and continue from one snapshot", async () => {
    for (const n of ["p1", "p2", "p3"]) api.create(pod(n, "paged"));
    const first = await call("GET", `${base}/api/v1/namespaces/paged/pods?limit=2`);
    assert.equal(first.json["items"].length, 2);
    const token = first.json["metadata"]["continue"] as string;
    api.create(pod("p4", "paged")); // not in the snapshot
    const second = await call(
      "GET",
      `${base}/api/v1/namespaces/paged/pods?limit=2&continue=${encodeURIComponent(token)}`,
    );
    assert.deepEqual(
      second.json["items"].map((i: Json) => i["metadata"]["name"]),
      ["p3"],
    );
    assert.equal(second.json["metadata"]["continue"], undefined);
    assert.equal(
      second.json["metadata"]["resourceVersion"],
      first.json["metadata"]["resourceVersion"],
    );
  });

  it("replays a watch from a resourceVersion, then streams live changes", async () => {
    const rv = api.resourceVersion;
    api.create(pod("w1", "watch"));
    const pending = watchEvents(
      `${base}/api/v1/namespaces/watch/pods?watch=1&resourceVersion=${rv}`,
      3,
    );
    await new Promise((r) => setTimeout(r, 50));
    api.update({
      ...pod("w1", "watch"),
      metadata: { name: "w1", namespace: "watch", labels: { a: "b" } },
    });
    api.remove("v1", "Pod", "watch", "w1");
    const { events } = await pending;
    assert.deepEqual(
      events.map((e) => [e["type"], e["object"]["kind"], e["object"]["metadata"]["name"]]),
      [
        ["ADDED", "Pod", "w1"],
        ["MODIFIED", "Pod", "w1"],
        ["DELETED", "Pod", "w1"],
      ],
    );
    const rvs = events.map((e) => Number(e["object"]["metadata"]["resourceVersion"]));
    assert.ok(
      rvs[0]! < rvs[1]! && rvs[1]! < rvs[2]!,
      "every write has a new, larger resourceVersion",
    );
  });

  it("answers a watch from a compacted resourceVersion with a 410 Expired event", async () => {
    const old = api.resourceVersion;
    api.create(pod("c1"));
    api.compact();
    const { status, events, ended } = await watchEvents(
      `${base}/api/v1/pods?watch=1&resourceVersion=${old}`,
      5,
    );
    assert.equal(status, 200);
    assert.equal(ended, true);
    assert.deepEqual(
      events.map((e) => [e["type"], e["object"]["code"], e["object"]["reason"]]),
      [["ERROR", 410, "Expired"]],
    );
  });

  it("can answer an expired watch with HTTP 410 instead", async () => {
    const api2 = new FakeKubeApi({ expiredWatch: "http" });
    const url = await api2.listen();
    try {
      api2.create(pod("x"));
      api2.compact();
      const r = await call("GET", `${url}/api/v1/pods?watch=true&resourceVersion=1`);
      assert.equal(r.status, 410);
      assert.equal(r.json["reason"], "Expired");
    } finally {
      await api2.close();
    }
  });

  it("sends bookmarks only when allowed, and ends a watch at timeoutSeconds", async () => {
    const withBm = watchEvents(
      `${base}/api/v1/pods?watch=1&resourceVersion=${api.resourceVersion}&allowWatchBookmarks=true`,
      1,
    );
    const without = watchEvents(
      `${base}/api/v1/pods?watch=1&resourceVersion=${api.resourceVersion}`,
      1,
      300,
    );
    await new Promise((r) => setTimeout(r, 50));
    api.sendBookmarks();
    const bm = await withBm;
    assert.equal(bm.events[0]?.["type"], "BOOKMARK");
    assert.equal(bm.events[0]?.["object"]["metadata"]["resourceVersion"], api.resourceVersion);
    assert.deepEqual((await without).events, []);
    const t0 = Date.now();
    const timed = await watchEvents(
      `${base}/api/v1/pods?watch=1&resourceVersion=${api.resourceVersion}&timeoutSeconds=1`,
      1,
      5000,
    );
    assert.equal(timed.ended, true);
    assert.ok(Date.now() - t0 >= 900);
  });

  it("cuts watch streams on demand", async () => {
    const pending = watchEvents(
      `${base}/api/v1/pods?watch=1&resourceVersion=${api.resourceVersion}`,
      1,
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(api.watchCount, 1);
    api.dropWatches();
    const r = await pending.catch((err: Error) => ({ status: 0, events: [], ended: true, err }));
    assert.equal(r.events.length, 0);
    assert.equal(api.watchCount, 0);
  });

  it("status subresource: merge-patch and PUT change status only; pods/status may change metadata", async () => {
    const gw = api.create({
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name: "wp", namespace: "ns1" },
      spec: { gatewayClassName: "istio-waypoint", listeners: [] },
    });
    const path = `${base}/apis/gateway.networking.k8s.io/v1/namespaces/ns1/gateways/wp/status`;
    const patched = await call(
      "PATCH",
      path,
      { spec: { gatewayClassName: "ignored" }, status: { addresses: [{ value: "198.18.0.5" }] } },
      "application/merge-patch+json",
    );
    assert.equal(patched.status, 200);
    assert.equal(patched.json["spec"]["gatewayClassName"], "istio-waypoint");
    assert.deepEqual(patched.json["status"], { addresses: [{ value: "198.18.0.5" }] });
    assert.equal(
      patched.json["metadata"]["generation"],
      (gw as unknown as Json)["metadata"]["generation"],
      "status writes do not bump generation",
    );
    const put = await call("PUT", path, { ...patched.json, status: { conditions: [] } });
    assert.deepEqual(put.json["status"], { conditions: [] });
    const stale = await call("PUT", path, { ...patched.json, status: {} });
    assert.equal(stale.status, 409);
    assert.equal(stale.json["reason"], "Conflict");
    api.create(pod("annotated", "ns1"));
    const ann = await call(
      "PATCH",
      `${base}/api/v1/namespaces/ns1/pods/annotated/status`,
      { metadata: { annotations: { "ambient.istio.io/redirection": "enabled" } } },
      "application/merge-patch+json",
    );
    assert.equal(ann.json["metadata"]["annotations"]["ambient.istio.io/redirection"], "enabled");
    assert.equal(
      (api.get("v1", "Pod", "ns1", "annotated") as unknown as Json)["metadata"]["annotations"][
        "ambient.istio.io/redirection"
      ],
      "enabled",
    );
    const nf = await call(
      "PATCH",
      `${base}/api/v1/namespaces/ns1/pods/nope/status`,
      {},
      "application/merge-patch+json",
    );
    assert.equal(nf.status, 404);
  });
});
