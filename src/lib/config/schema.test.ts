import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatFieldPath } from "./field-path.ts";
import { validateSchema } from "./schema.ts";

function issues(
  kind: Parameters<typeof validateSchema>[0],
  version: string,
  data: object,
  reject = true,
) {
  return validateSchema(kind, version, data as Record<string, unknown>, {
    unknownFields: reject ? "reject" : "ignore",
  }).map((i) => `${formatFieldPath(i.path)} [${i.at}]: ${i.reason}`);
}

const ap = (spec: object, metadata: object = { name: "p" }) => ({
  apiVersion: "security.istio.io/v1",
  kind: "AuthorizationPolicy",
  metadata,
  spec,
});

describe("schema validation", () => {
  it("accepts a valid object", () => {
    assert.deepEqual(issues("AuthorizationPolicy", "v1", ap({ action: "DENY", rules: [{}] })), []);
  });

  it("reports enum, type and range problems with the offending value", () => {
    assert.deepEqual(
      issues(
        "AuthorizationPolicy",
        "v1",
        ap({ action: "MAYBE", rules: [{ from: [{ source: { principals: "x" } }] }] }),
      ),
      [
        'spec.action [value]: must be one of ALLOW, DENY, AUDIT, CUSTOM (got "MAYBE")',
        'spec.rules[0].from[0].source.principals [value]: must be a list (got "x")',
      ],
    );
    const gw = {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name: "g" },
      spec: {
        gatewayClassName: "istio-waypoint",
        listeners: [{ name: "mesh", port: 70000, protocol: "HBONE" }],
      },
    };
    assert.deepEqual(issues("Gateway", "v1", gw), [
      "spec.listeners[0].port [value]: must be <= 65535 (got 70000)",
    ]);
  });

  it("reports missing required fields at their path", () => {
    const gw = {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name: "g" },
      spec: { listeners: [] },
    };
    assert.ok(
      issues("Gateway", "v1", gw).includes(
        "spec.gatewayClassName [value]: required field is missing",
      ),
    );
  });

  it("rejects unknown fields at any depth, in metadata too", () => {
    assert.deepEqual(
      issues(
        "AuthorizationPolicy",
        "v1",
        ap(
          { foo: 1, rules: [{ from: [{ source: { principals: ["a"], princ: 1 } }] }] },
          { name: "p", bogus: true },
        ),
      ),
      [
        'metadata.bogus [key]: unknown field "bogus"',
        'spec.foo [key]: unknown field "foo"',
        'spec.rules[0].from[0].source.princ [key]: unknown field "princ"',
      ],
    );
  });

  it("treats maps (labels, matchLabels, resource lists) as open", () => {
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", labels: { anything: "x" }, annotations: { "a/b": "c" } },
      spec: {
        containers: [
          { name: "c", image: "i", resources: { limits: { cpu: "1", "example.com/gpu": "1" } } },
        ],
        nodeSelector: { zone: "a" },
      },
    };
    assert.deepEqual(issues("Pod", "v1", pod), []);
  });

  it("does not pile unknown-field noise under a value of the wrong type", () => {
    const bad = ap({ rules: { from: [{ source: {} }] } });
    assert.deepEqual(issues("AuthorizationPolicy", "v1", bad), [
      "spec.rules [value]: must be a list (got a map)",
    ]);
  });

  it("leaves status open and can ignore unknown fields", () => {
    const withStatus = { ...ap({}), status: { anything: { goes: 1 } } };
    assert.deepEqual(issues("AuthorizationPolicy", "v1", withStatus), []);
    assert.deepEqual(issues("AuthorizationPolicy", "v1", ap({ futureField: 1 }), false), []);
  });

  it("explains Istio one-of groups", () => {
    const vs = {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name: "v" },
      spec: {
        hosts: ["a"],
        http: [
          {
            match: [{ uri: { exact: "/a", prefix: "/b" } }],
            route: [{ destination: { host: "a" } }],
          },
        ],
      },
    };
    assert.deepEqual(issues("VirtualService", "v1", vs), [
      "spec.http[0].match[0].uri [value]: sets more than one of a group of mutually exclusive fields; set only one (fields set here: exact, prefix)",
    ]);
  });
});
