/**
 * The files config source fed a directory of bad input: every problem is reported with file,
 * line, field path and reason; the valid documents of the same files are served; objects that
 * later turn invalid keep their last good version.
 */
import assert from "node:assert/strict";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LogOutput, MemorySink } from "../../src/lib/log/index.ts";
import { FileConfigStore, type Kind } from "../../src/lib/config/index.ts";

const fixtures = join(import.meta.dirname, "..", "..", "src", "lib", "config", "testdata", "bad");

// Written by the test rather than kept as a fixture: the repository's formatter rejects broken YAML.
const brokenYaml = [
  "apiVersion: v1",
  "kind: Namespace",
  "metadata:",
  "  name: shop",
  "---",
  "apiVersion: v1",
  "kind: ServiceAccount",
  "metadata:",
  "  name: frontend",
  "  namespace: shop",
  "  labels: {app: frontend", // line 11: the flow map is never closed
  "---",
  "apiVersion: v1",
  "kind: ServiceAccount",
  "metadata:",
  "  name: cart",
  "  namespace: shop",
  "",
].join("\n");

async function eventually(check: () => void, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

describe("files source with bad input", () => {
  let dir: string;
  let store: FileConfigStore;
  const sink = new MemorySink();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "amb-config-bad-"));
    await cp(fixtures, dir, { recursive: true });
    await writeFile(join(dir, "broken.yaml"), brokenYaml);
    store = new FileConfigStore({
      dir,
      log: new LogOutput({ sink }).logger("config"),
      debounceMs: 30,
    });
    await store.start();
  });
  after(async () => {
    try {
      // Unset when before() failed; the directory is removed either way.
      await (store as FileConfigStore | undefined)?.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  const served = () =>
    (
      ["Namespace", "ServiceAccount", "Service", "AuthorizationPolicy", "DestinationRule"] as Kind[]
    ).flatMap((k) =>
      store
        .list(k)
        .map(
          (o) => `${k}/${o.metadata.namespace ? o.metadata.namespace + "/" : ""}${o.metadata.name}`,
        ),
    );
  const problems = () =>
    store.errors().map((p) => ({
      file: p.file?.slice(dir.length + 1),
      line: p.line,
      path: p.path,
      reason: p.reason,
      key: p.key,
    }));

  it("reports every problem with file, line, field path and reason", () => {
    assert.deepEqual(problems(), [
      {
        file: "broken.yaml",
        line: 12,
        path: "",
        reason:
          "YAML syntax error: Flow map in block collection must be sufficiently indented and end with a }",
        key: undefined,
      },
      {
        file: "policies.yaml",
        line: 20,
        path: "spec.action",
        reason: 'must be one of ALLOW, DENY, AUDIT, CUSTOM (got "MAYBE")',
        key: "AuthorizationPolicy/shop/maybe",
      },
      {
        file: "policies.yaml",
        line: 31,
        path: "spec.rules[0].from[0].source.principal",
        reason: 'unknown field "principal"',
        key: "AuthorizationPolicy/shop/typo",
      },
      {
        file: "policies.yaml",
        line: 36,
        path: "metadata.name",
        reason:
          "invalid name \"Not_A_Name\": must be a lowercase RFC 1123 subdomain: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit",
        key: "AuthorizationPolicy/shop/Not_A_Name",
      },
      {
        file: "services.yaml",
        line: 21,
        path: "spec.ports[0].port",
        reason: "must be a port number between 1 and 65535 (got 70000)",
        key: "Service/shop/huge-port",
      },
      {
        file: "unknown.yaml",
        line: 2,
        path: "kind",
        reason:
          'unknown kind "Widget"; supported kinds: Namespace, Pod, Deployment, Service, EndpointSlice, ServiceAccount, Node, AuthorizationPolicy, PeerAuthentication, RequestAuthentication, ServiceEntry, WorkloadEntry, VirtualService, DestinationRule, Telemetry, Gateway, GatewayClass, HTTPRoute, GRPCRoute, TCPRoute',
        key: undefined,
      },
      {
        file: "zz-duplicate.yaml",
        line: 2,
        path: "",
        reason: `conflict: AuthorizationPolicy/shop/allow-frontend is also defined in ${join(dir, "policies.yaml")}:2, which takes precedence (files are read in path order); this definition is ignored`,
        key: "AuthorizationPolicy/shop/allow-frontend",
      },
    ]);
    // Each rejection is also logged for the operator.
    assert.equal(sink.lines.filter((l) => l.includes("config rejected")).length, 7);
  });

  it("serves the valid documents of the same files", () => {
    assert.deepEqual(served(), [
      "Namespace/shop",
      "ServiceAccount/shop/cart",
      "Service/shop/cart",
      "AuthorizationPolicy/shop/allow-frontend",
      "AuthorizationPolicy/shop/deny-debug",
      "DestinationRule/shop/cart",
    ]);
    const allow = store.get("AuthorizationPolicy", "shop", "allow-frontend")!;
    assert.equal(allow.spec.action, "ALLOW", "the first file wins the conflict");
  });

  it("keeps the last good version of an object that becomes invalid", async () => {
    const file = join(dir, "policies.yaml");
    const text = await readFile(file, "utf8");
    await writeFile(file, text.replace("  action: ALLOW\n", "  action: PERHAPS\n"));
    await eventually(() =>
      assert.ok(store.errors().some((p) => p.reason.includes('(got "PERHAPS")'))),
    );
    const p = store.errors().find((x) => x.reason.includes("PERHAPS"))!;
    assert.deepEqual(
      [p.line, p.path, p.key],
      [8, "spec.action", "AuthorizationPolicy/shop/allow-frontend"],
    );
    assert.equal(store.get("AuthorizationPolicy", "shop", "allow-frontend")!.spec.action, "ALLOW");
    assert.equal(served().length, 6);
  });

  it("serves a repaired document, and keeps it when its file breaks again", async () => {
    const file = join(dir, "broken.yaml");
    const text = await readFile(file, "utf8");
    await writeFile(file, text.replace("labels: {app: frontend\n", "labels: {app: frontend}\n"));
    await eventually(() => assert.ok(store.get("ServiceAccount", "shop", "frontend")));
    assert.ok(!store.errors().some((p) => p.file?.endsWith("broken.yaml")));
    await writeFile(file, text.replace("name: cart\n", "name: cart\n  : :\n"));
    await eventually(() => assert.ok(store.errors().some((p) => p.file?.endsWith("broken.yaml"))));
    assert.ok(
      store.get("ServiceAccount", "shop", "frontend"),
      "kept: it may be in the unreadable document",
    );
    assert.ok(store.get("ServiceAccount", "shop", "cart"));
  });

  it("deletes the objects of a deleted file", async () => {
    await rm(join(dir, "services.yaml"));
    await eventually(() => assert.equal(store.get("Service", "shop", "cart"), undefined));
    assert.ok(!store.errors().some((p) => p.file?.endsWith("services.yaml")));
  });
});
