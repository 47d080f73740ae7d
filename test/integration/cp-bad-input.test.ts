/**
 * A config directory with broken YAML, an unknown kind, an unknown field and an invalid value:
 * every problem is on /debug/config-errors (file, line, path, reason) and counted in
 * `ambient_config_errors`; everything valid is served.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  HeldState,
  MESH_YAML,
  WEB_SERVICE,
  metricValue,
  podYaml,
  startPlane,
  uid,
  WEB_SERVICE_YAML,
  type PlaneHandle,
} from "./cp-harness.ts";

interface ErrorsBody {
  count: number;
  errors: { file?: string; line?: number; path: string; reason: string; message: string }[];
}

const BROKEN = `apiVersion: v1
kind: Pod
metadata: { name: broken, namespace: app
spec: [unclosed
`;
const UNKNOWN_KIND = `apiVersion: example.com/v1
kind: Frobnicator
metadata: { name: x, namespace: app }
`;
const POLICIES = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: typo, namespace: app }
spec:
  rules:
    - from:
        - source:
            principal: ["cluster.local/ns/app/sa/web"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: maybe, namespace: app }
spec:
  action: MAYBE
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: good, namespace: app }
spec:
  action: DENY
  rules: [{ to: [{ operation: { ports: ["22"] } }] }]
`;

describe("control plane with bad configuration", () => {
  let h: PlaneHandle;
  before(async () => {
    h = await startPlane({
      files: {
        "mesh.yaml": MESH_YAML,
        "web-1.yaml": podYaml("web-1", "node-a", "198.18.10.1", "web"),
        "service.yaml": WEB_SERVICE_YAML,
        "broken.yaml": BROKEN,
        "unknown.yaml": UNKNOWN_KIND,
        "policies.yaml": POLICIES,
      },
    });
  });
  after(async () => {
    await h.close();
  });

  it("reports each problem with file, line and reason, and counts them", async () => {
    const { status, body } = await h.getJson<ErrorsBody>("/debug/config-errors");
    assert.equal(status, 200);
    const files = body.errors.map((e) => e.file?.split("/").pop());
    assert.ok(files.includes("broken.yaml"), "the YAML syntax error");
    assert.ok(files.includes("unknown.yaml"), "the unknown kind");
    const typo = body.errors.find(
      (e) => e.path.includes("principal") && e.file?.endsWith("policies.yaml"),
    );
    assert.ok(typo !== undefined, "the unknown field");
    assert.equal(typo.line, 8);
    const maybe = body.errors.find((e) => e.path === "spec.action");
    assert.ok(maybe !== undefined, "the invalid value");
    assert.match(maybe.message, /policies\.yaml:\d+/);
    for (const e of body.errors) assert.ok(e.line !== undefined && e.reason !== "", e.message);
    assert.equal(body.count, body.errors.length);
    assert.ok(body.count >= 4);
    const metrics = (await h.getText("/metrics")).body;
    assert.equal(metricValue(metrics, "ambient_config_errors"), body.count);
  });

  it("serves everything valid", async () => {
    const c = new HeldState(h.plane, { node: "node-a", token: () => h.token("node-a") });
    try {
      await c.client.ready;
      assert.deepEqual(c.addressNames(), [WEB_SERVICE, uid("web-1")].sort());
      assert.deepEqual([...c.authorizations.keys()], ["app/good"]);
    } finally {
      c.close();
    }
    const ready = await h.getText("/ready");
    assert.equal(ready.status, 200);
  });
});
