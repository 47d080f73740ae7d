import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatFieldPath } from "./field-path.ts";
import { validateObject } from "./validate.ts";

function v(raw: unknown, defaultNamespace?: string) {
  const r = validateObject(raw, {
    unknownFields: "reject",
    ...(defaultNamespace !== undefined ? { defaultNamespace } : {}),
  });
  return { ...r, msgs: r.issues.map((i) => `${formatFieldPath(i.path)}: ${i.reason}`) };
}

describe("validateObject", () => {
  it("returns a draft with the namespace defaulted and the key", () => {
    const r = v({
      apiVersion: "security.istio.io/v1beta1",
      kind: "AuthorizationPolicy",
      metadata: { name: "a" },
    });
    assert.deepEqual(r.msgs, []);
    assert.equal(r.key, "AuthorizationPolicy/default/a");
    assert.equal(r.draft?.namespace, "default");
    assert.equal(r.draft?.apiVersion, "security.istio.io/v1beta1");
    assert.deepEqual(r.draft?.spec, {});
    assert.deepEqual(r.draft?.labels, {});
    assert.equal(
      v(
        {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "p" },
          spec: { containers: [{ name: "c" }] },
        },
        "apps",
      ).key,
      "Pod/apps/p",
    );
  });

  it("drops the namespace of cluster-scoped kinds", () => {
    const r = v({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "ns1", namespace: "ignored" },
    });
    assert.equal(r.key, "Namespace/ns1");
    assert.equal(r.draft?.namespace, "");
  });

  it("carries top-level fields as spec for kinds without one", () => {
    const r = v({
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: { name: "e" },
      addressType: "IPv4",
      endpoints: [],
    });
    assert.deepEqual(r.draft?.spec, { addressType: "IPv4", endpoints: [] });
  });

  it("rejects what is not an object", () => {
    assert.deepEqual(v(["a"]).msgs, [
      ": a document must be a map with apiVersion, kind and metadata (got a list)",
    ]);
    assert.deepEqual(v("text").msgs, [
      ": a document must be a map with apiVersion, kind and metadata (got a string)",
    ]);
  });

  it("reports missing apiVersion, kind and metadata together", () => {
    assert.deepEqual(v({}).msgs, [
      "apiVersion: required field is missing (e.g. security.istio.io/v1)",
      "kind: required field is missing (e.g. AuthorizationPolicy)",
      "metadata: required field is missing",
    ]);
  });

  it("unknown kinds and unserved versions", () => {
    const unknown = v({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } });
    assert.match(unknown.msgs[0]!, /^kind: unknown kind "Widget"; supported kinds: Namespace, Pod/);
    assert.equal(unknown.key, undefined);
    const version = v({
      apiVersion: "security.istio.io/v2",
      kind: "AuthorizationPolicy",
      metadata: { name: "a" },
    });
    assert.deepEqual(version.msgs, [
      'apiVersion: AuthorizationPolicy is not served as "security.istio.io/v2"; use security.istio.io/v1 or security.istio.io/v1beta1',
    ]);
  });

  it("names, namespaces, generateName, labels and annotations", () => {
    const r = v({
      apiVersion: "v1",
      kind: "Service",
      metadata: {
        name: "9svc",
        namespace: "Bad",
        labels: { "bad key!": "v", ok: "not ok!" },
        annotations: { "x/": "v" },
      },
    });
    assert.deepEqual(r.msgs, [
      "metadata.name: invalid name \"9svc\": must be an RFC 1035 label: lower-case letters, digits and '-', starting with a letter and ending with a letter or digit",
      "metadata.namespace: invalid namespace \"Bad\": must be a lowercase RFC 1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit",
      "metadata.labels[\"bad key!\"]: invalid key \"bad key!\": name part must consist of letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
      "metadata.labels.ok: invalid label value \"not ok!\": must be empty or consist of letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
      'metadata.annotations["x/"]: invalid key "x/": name part must not be empty',
    ]);
    assert.equal(r.draft, undefined);
    assert.equal(r.key, "Service/Bad/9svc");
    assert.deepEqual(
      v({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { generateName: "p-" },
        spec: { containers: [] },
      }).msgs,
      [
        "metadata.name: required field is missing (generateName is not supported here: give the object a name)",
      ],
    );
  });

  it("runs the schema and the semantic checks", () => {
    const r = v({
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: "a" },
      spec: { action: "MAYBE", rules: [{ to: [{ operation: { ports: ["70000"] } }] }], extra: 1 },
    });
    assert.deepEqual(r.msgs, [
      'spec.action: must be one of ALLOW, DENY, AUDIT, CUSTOM (got "MAYBE")',
      'spec.extra: unknown field "extra"',
      'spec.rules[0].to[0].operation.ports[0]: must be a port number between 1 and 65535 (got "70000")',
    ]);
    assert.equal(r.key, "AuthorizationPolicy/default/a");
  });
});
