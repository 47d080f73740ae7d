import assert from "node:assert/strict";
import { createServer, get, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { KubeApiHandler } from "./http-handler.ts";
import { ObjectStore } from "./object-store.ts";
import { Registry } from "./registry.ts";

interface Body {
  kind?: string;
  code?: number;
  reason?: string;
  groups?: { name: string }[];
  resources?: { name: string }[];
  metadata?: { labels?: Record<string, string>; name?: string };
  spec?: { nodeName?: string };
}

describe("KubeApiHandler", () => {
  const store = new ObjectStore();
  const registry = new Registry(store);
  const handler = new KubeApiHandler({
    registry,
    authenticate: (req) => (req.headers.authorization === "Bearer t" ? "u" : undefined),
  });
  const server: Server = createServer((req, res) => handler.handle(req, res));
  let base = "";
  before(async () => {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    handler.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  const call = async (method: string, path: string, body?: unknown, type = "application/json") => {
    const res = await fetch(base + path, {
      method,
      headers: { authorization: "Bearer t", "content-type": type },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: (await res.json()) as Body };
  };
  const pod = (name: string, labels: Record<string, string>) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, labels },
    spec: { containers: [{ name: "c", image: "i" }] },
  });

  it("refuses requests without credentials, except health", async () => {
    assert.equal((await fetch(`${base}/api/v1/pods`)).status, 401);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
  });

  it("serves discovery for core and grouped resources", async () => {
    const groups = await call("GET", "/apis");
    assert.ok(groups.json.groups?.some((g) => g.name === "apps"));
    const apps = await call("GET", "/apis/apps/v1");
    assert.deepEqual(
      apps.json.resources?.map((r) => r.name),
      ["deployments", "deployments/status", "replicasets", "replicasets/status"],
    );
    const core = await call("GET", "/api/v1");
    assert.ok(core.json.resources?.some((r) => r.name === "pods/binding"));
  });

  it("applies JSON patches and binds pods once", async () => {
    assert.equal(
      (await call("POST", "/api/v1/namespaces/ns/pods", pod("a", { app: "x" }))).status,
      201,
    );
    const patched = await call(
      "PATCH",
      "/api/v1/namespaces/ns/pods/a",
      [{ op: "add", path: "/metadata/labels/tier", value: "web" }],
      "application/json-patch+json",
    );
    assert.deepEqual(patched.json.metadata?.labels, { app: "x", tier: "web" });
    const binding = {
      apiVersion: "v1",
      kind: "Binding",
      metadata: { name: "a" },
      target: { name: "n1" },
    };
    assert.equal((await call("POST", "/api/v1/namespaces/ns/pods/a/binding", binding)).status, 201);
    assert.equal((await call("GET", "/api/v1/namespaces/ns/pods/a")).json.spec?.nodeName, "n1");
    const again = await call("POST", "/api/v1/namespaces/ns/pods/a/binding", binding);
    assert.equal(again.status, 409);
    const apply = await call(
      "PATCH",
      "/api/v1/namespaces/ns/pods/a",
      {},
      "application/apply-patch+yaml",
    );
    assert.equal(apply.status, 415);
  });

  it("filters lists by label and turns selector transitions into ADDED/DELETED on watches", async () => {
    await call("POST", "/api/v1/namespaces/ns/pods", pod("b", { app: "y" }));
    const list = await call("GET", "/api/v1/namespaces/ns/pods?labelSelector=app%3Dy");
    assert.deepEqual(
      (list.json as { items: Body[] }).items.map((i) => i.metadata?.name),
      ["b"],
    );
    const rv = (list.json as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    const events: { type: string; name: string }[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const req = get(
        `${base}/api/v1/namespaces/ns/pods?watch=1&labelSelector=app%3Dy&resourceVersion=${rv}`,
        { headers: { authorization: "Bearer t" } },
        (res) => {
          let buf = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => {
            buf += c;
            let nl;
            while ((nl = buf.indexOf("\n")) !== -1) {
              const ev = JSON.parse(buf.slice(0, nl)) as { type: string; object: Body };
              buf = buf.slice(nl + 1);
              events.push({ type: ev.type, name: ev.object.metadata?.name ?? "" });
              if (events.length === 3) {
                req.destroy();
                resolve();
              }
            }
          });
        },
      );
      req.on("error", (e) => (events.length === 3 ? resolve() : reject(e)));
    });
    await new Promise((r) => setTimeout(r, 50));
    await call(
      "PATCH",
      "/api/v1/namespaces/ns/pods/a",
      { metadata: { labels: { app: "y" } } },
      "application/merge-patch+json",
    );
    await call(
      "PATCH",
      "/api/v1/namespaces/ns/pods/b",
      { metadata: { labels: { app: "z" } } },
      "application/merge-patch+json",
    );
    await call(
      "PATCH",
      "/api/v1/namespaces/ns/pods/a",
      { metadata: { labels: { v: "2" } } },
      "application/merge-patch+json",
    );
    await done;
    assert.deepEqual(events, [
      { type: "ADDED", name: "a" },
      { type: "DELETED", name: "b" },
      { type: "MODIFIED", name: "a" },
    ]);
  });
});
