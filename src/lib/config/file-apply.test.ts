import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { applyManifests, deleteManifest } from "./file-apply.ts";
import { parseManifests } from "./parse.ts";
import { formatProblem } from "./problem.ts";

const policy = (name: string, action = "DENY") =>
  `# keep this comment\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: ${name}\nspec:\n  action: ${action}\n`;

describe("applyManifests / deleteManifest", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "amb-apply-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes one file per object, namespace made explicit, comments kept", async () => {
    const r = await applyManifests(
      [
        {
          name: "in.yaml",
          text: `${policy("a")}---\napiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n`,
        },
      ],
      { dir, defaultNamespace: "apps" },
    );
    assert.ok(r.ok);
    assert.deepEqual(
      r.value.map((o) => [o.key, o.file, o.action]),
      [
        ["AuthorizationPolicy/apps/a", join(dir, "apps", "authorizationpolicy-a.yaml"), "created"],
        ["Namespace/apps", join(dir, "_cluster", "namespace-apps.yaml"), "created"],
      ],
    );
    const text = await readFile(join(dir, "apps", "authorizationpolicy-a.yaml"), "utf8");
    assert.match(text, /^# keep this comment\n/);
    assert.match(text, /namespace: apps/);
    const back = parseManifests(text, "x", { unknownFields: "reject" });
    assert.equal(back.documents[0]?.key, "AuthorizationPolicy/apps/a");
    const again = await applyManifests([{ name: "in.yaml", text: policy("a") }], {
      dir,
      defaultNamespace: "apps",
    });
    assert.ok(again.ok);
    assert.equal(again.value[0]?.action, "unchanged");
  });

  it("writes nothing when any document is invalid, and reports every problem", async () => {
    const r = await applyManifests(
      [
        { name: "good.yaml", text: policy("a") },
        {
          name: "bad.yaml",
          text: `${policy("b", "MAYBE")}---\napiVersion: v1\nkind: Widget\nmetadata: {name: w}\n`,
        },
      ],
      { dir },
    );
    assert.ok(!r.ok);
    assert.deepEqual(r.reason.map(formatProblem), [
      'bad.yaml:7:11: spec.action: must be one of ALLOW, DENY, AUDIT, CUSTOM (got "MAYBE") (AuthorizationPolicy/default/b)',
      `bad.yaml:10:7: kind: unknown kind "Widget"; supported kinds: Namespace, Pod, Deployment, Service, EndpointSlice, ServiceAccount, Node, AuthorizationPolicy, PeerAuthentication, RequestAuthentication, ServiceEntry, WorkloadEntry, VirtualService, DestinationRule, Telemetry, Gateway, GatewayClass, HTTPRoute, GRPCRoute, TCPRoute`,
    ]);
    assert.deepEqual(await readdir(dir), []);
  });

  it("rejects the same object given twice", async () => {
    const r = await applyManifests(
      [
        { name: "a.yaml", text: policy("a") },
        { name: "b.yaml", text: policy("a") },
      ],
      { dir },
    );
    assert.ok(!r.ok);
    assert.equal(
      formatProblem(r.reason[0]!),
      "b.yaml:2: AuthorizationPolicy/default/a is given twice (first at a.yaml:2) (AuthorizationPolicy/default/a)",
    );
  });

  it("updates an object where it already lives, leaving its neighbours alone", async () => {
    const file = join(dir, "all.yaml");
    const original = `# header\n${policy("a")}---\n# about b\n${policy("b")}---\n${policy("c")}`;
    await writeFile(file, original);
    const r = await applyManifests([{ name: "in.yaml", text: policy("b", "ALLOW") }], { dir });
    assert.ok(r.ok);
    assert.deepEqual(
      r.value.map((o) => [o.file, o.action]),
      [[file, "configured"]],
    );
    const text = await readFile(file, "utf8");
    const docs = parseManifests(text, file, { unknownFields: "reject" }).documents;
    assert.deepEqual(
      docs.map((d) => [d.key, (d.draft?.spec as { action: string }).action]),
      [
        ["AuthorizationPolicy/default/a", "DENY"],
        ["AuthorizationPolicy/default/b", "ALLOW"],
        ["AuthorizationPolicy/default/c", "DENY"],
      ],
    );
    assert.ok(text.startsWith("# header\n"));
    const d = await deleteManifest(dir, "AuthorizationPolicy/default/b");
    assert.ok(d.ok);
    const left = parseManifests(await readFile(file, "utf8"), file, { unknownFields: "reject" });
    assert.deepEqual(
      left.documents.map((x) => x.key),
      ["AuthorizationPolicy/default/a", "AuthorizationPolicy/default/c"],
    );
    assert.deepEqual(left.problems, []);
  });

  it("deletes a single-object file, and says when there is nothing to delete", async () => {
    await applyManifests([{ name: "in.yaml", text: policy("a") }], { dir });
    const d = await deleteManifest(dir, "AuthorizationPolicy/default/a");
    assert.ok(d.ok);
    assert.deepEqual(await readdir(join(dir, "default")), []);
    const again = await deleteManifest(dir, "AuthorizationPolicy/default/a");
    assert.deepEqual(again, {
      ok: false,
      reason: `AuthorizationPolicy/default/a is not defined in ${dir}`,
    });
  });

  it("refuses to edit an object defined inside a List", async () => {
    await writeFile(
      join(dir, "list.yaml"),
      "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: x}\n",
    );
    const r = await applyManifests(
      [
        {
          name: "in.yaml",
          text: "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {a: b}}\n",
        },
      ],
      { dir },
    );
    assert.ok(!r.ok);
    assert.match(
      r.reason[0]!.reason,
      /defined inside a List in .*list\.yaml:4; edit that file instead/,
    );
  });
});
