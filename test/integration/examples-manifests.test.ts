/**
 * The sample manifests: every YAML file under examples/ parses, every document validates against
 * the Kubernetes / Istio / Gateway API schemas (with unknown fields reported, as the API server
 * does), and the objects fit together: container commands point at runnable files that accept the
 * env the manifest sets, selectors select, ports and service accounts exist, policies name real
 * identities and services.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { AuthorizationPolicy } from "@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy";
import { PeerAuthentication } from "@kubernetes-models/istio/security.istio.io/v1/PeerAuthentication";
import { Gateway } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway";
import { HTTPRoute } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute";
import { repoRoot } from "./examples-harness.ts";

type Obj = Record<string, unknown>;

interface Doc {
  readonly file: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string | undefined;
  readonly body: Obj;
}

const models: Readonly<Record<string, { prototype: object }>> = {
  "v1/Namespace": Namespace,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/Deployment": Deployment,
  "security.istio.io/v1/AuthorizationPolicy": AuthorizationPolicy,
  "security.istio.io/v1/PeerAuthentication": PeerAuthentication,
  "gateway.networking.k8s.io/v1/Gateway": Gateway,
  "gateway.networking.k8s.io/v1/HTTPRoute": HTTPRoute,
};

function yamlFiles(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yamlFiles(p, out);
    else if (e.name.endsWith(".yaml") || e.name.endsWith(".yml")) out.push(p);
  }
  return out.sort();
}

const asObj = (v: unknown): Obj => (typeof v === "object" && v !== null ? (v as Obj) : {});
const asList = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);
const asLabels = (v: unknown): Record<string, string> => asObj(v) as Record<string, string>;

/**
 * Runs a model's schema validator over the document behind a Proxy that notes which keys it
 * reads. The compiled validators read every property their schema declares and enumerate the keys
 * of free-form maps, so a key never read in an object never enumerated is not in the schema.
 */
function validate(model: { prototype: object }, body: Obj): string[] {
  const read = new Map<object, Set<string>>();
  const enumerated = new Set<object>();
  const paths = new Map<object, string>();
  const wrap = (v: unknown, path: string): unknown => {
    if (typeof v !== "object" || v === null) return v;
    if (!read.has(v)) read.set(v, new Set());
    paths.set(v, path);
    return new Proxy(v, {
      get(t, k, r) {
        if (typeof k !== "string") return Reflect.get(t, k, r) as unknown;
        read.get(t)!.add(k);
        return wrap(Reflect.get(t, k, r), `${path}.${k}`);
      },
      ownKeys(t) {
        enumerated.add(t);
        return Reflect.ownKeys(t);
      },
    });
  };
  const problems: string[] = [];
  try {
    (model.prototype as { validate(this: unknown): void }).validate.call(wrap(body, ""));
  } catch (err) {
    problems.push(String(err));
  }
  for (const [obj, keys] of read) {
    if (enumerated.has(obj) || Array.isArray(obj)) continue;
    for (const k of Object.keys(obj)) {
      if (!keys.has(k)) problems.push(`unknown field ${paths.get(obj)}.${k}`);
    }
  }
  return problems;
}

function loadAll(): { docs: Doc[]; problems: string[] } {
  const docs: Doc[] = [];
  const problems: string[] = [];
  const files = yamlFiles(join(repoRoot, "examples"));
  assert.ok(files.length >= 8, `expected the sample manifests, found ${files.length}`);
  for (const path of files) {
    const file = relative(repoRoot, path);
    for (const d of parseAllDocuments(readFileSync(path, "utf8"))) {
      if (d.errors.length > 0) {
        problems.push(`${file}: ${d.errors.map((e) => e.message).join("; ")}`);
        continue;
      }
      const body = asObj(d.toJSON());
      const meta = asObj(body["metadata"]);
      if (typeof body["apiVersion"] !== "string" || typeof body["kind"] !== "string") {
        problems.push(`${file}: a document without apiVersion/kind`);
        continue;
      }
      docs.push({
        file,
        apiVersion: body["apiVersion"],
        kind: body["kind"],
        name: String(meta["name"]),
        namespace: typeof meta["namespace"] === "string" ? meta["namespace"] : undefined,
        body,
      });
    }
  }
  return { docs, problems };
}

const { docs, problems: parseProblems } = loadAll();
const of = (kind: string): Doc[] => docs.filter((d) => d.kind === kind);
const spec = (d: Doc): Obj => asObj(d.body["spec"]);
const podSpec = (d: Doc): Obj => asObj(asObj(spec(d)["template"])["spec"]);
const podLabels = (d: Doc): Record<string, string> =>
  asLabels(asObj(asObj(spec(d)["template"])["metadata"])["labels"]);
const containers = (d: Doc): Obj[] => asList(podSpec(d)["containers"]);
const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);
const containerPorts = (d: Doc): number[] =>
  containers(d).flatMap((c) => asList(c["ports"]).map((p) => Number(p["containerPort"])));

describe("sample manifests", () => {
  it("parse as YAML, one Kubernetes object per document", () => {
    assert.deepEqual(parseProblems, []);
    assert.ok(docs.length > 20);
  });

  it("validate against the Kubernetes, Istio and Gateway API schemas, with no unknown fields", () => {
    const problems: string[] = [];
    for (const d of docs) {
      const model = models[`${d.apiVersion}/${d.kind}`];
      if (model === undefined) {
        problems.push(`${d.file}: ${d.apiVersion} ${d.kind} is not a kind the samples use`);
        continue;
      }
      for (const p of validate(model, d.body))
        problems.push(`${d.file}: ${d.kind}/${d.name}: ${p}`);
    }
    assert.deepEqual(problems, []);
  });

  it("the strict-field check itself catches a misspelt field", () => {
    const d = of("Deployment")[0]!;
    const copy = structuredClone(d.body);
    const c = asList(asObj(asObj(asObj(copy["spec"])["template"])["spec"])["containers"])[0]!;
    c["readinesProbe"] = c["readinessProbe"];
    assert.deepEqual(validate(Deployment, copy), [
      "unknown field .spec.template.spec.containers.0.readinesProbe",
    ]);
  });

  it("put every namespaced object in a declared namespace; mesh namespaces are enrolled", () => {
    const declared = new Map(of("Namespace").map((n) => [n.name, n]));
    for (const d of docs) {
      if (d.kind === "Namespace") continue;
      assert.ok(d.namespace !== undefined, `${d.file}: ${d.kind}/${d.name} has no namespace`);
      assert.ok(declared.has(d.namespace), `${d.file}: namespace ${d.namespace} is not declared`);
    }
    for (const ns of ["bookinfo", "httpbin", "tcp-echo"]) {
      for (const n of of("Namespace").filter((x) => x.name === ns)) {
        const labels = asLabels(asObj(n.body["metadata"])["labels"]);
        assert.equal(labels["istio.io/dataplane-mode"], "ambient", `${n.file}: ${ns}`);
      }
    }
    const legacy = declared.get("legacy")!;
    assert.equal(
      asLabels(asObj(legacy.body["metadata"])["labels"])["istio.io/dataplane-mode"],
      undefined,
    );
  });

  it("run containers as `node <file>` on files that exist and accept the manifest's env", async () => {
    const common = readFileSync(join(repoRoot, "examples/common/env.ts"), "utf8");
    for (const d of of("Deployment")) {
      for (const c of containers(d)) {
        const where = `${d.file}: ${d.name}/${String(c["name"])}`;
        assert.equal(typeof c["image"], "string", `${where}: a container needs an image`);
        const command = c["command"] as string[];
        assert.equal(command[0], "node", where);
        assert.equal(command.length, 2, where);
        const file = command[1]!;
        assert.ok(existsSync(join(repoRoot, file)), `${where}: ${file} does not exist`);
        const source = readFileSync(join(repoRoot, file), "utf8");
        assert.match(source, /if \(import\.meta\.main\)/, `${where}: ${file} is not runnable`);

        const env: Record<string, string> = {};
        for (const e of asList(c["env"])) {
          const name = String(e["name"]);
          assert.equal(env[name], undefined, `${where}: env ${name} set twice`);
          assert.ok(
            source.includes(`"${name}"`) || common.includes(`"${name}"`),
            `${where}: the app does not read env ${name}`,
          );
          const fieldPath = asObj(asObj(e["valueFrom"])["fieldRef"])["fieldPath"];
          if (fieldPath !== undefined) {
            assert.ok(
              typeof fieldPath === "string" &&
                [
                  "metadata.name",
                  "metadata.namespace",
                  "status.podIP",
                  "spec.serviceAccountName",
                ].includes(fieldPath),
              `${where}: fieldRef ${JSON.stringify(fieldPath)}`,
            );
            env[name] = `${d.name}-test`;
          } else {
            env[name] = String(e["value"]);
          }
        }
        // The app's own config loader must accept what the manifest sets (it throws otherwise).
        const mod = (await import(join(repoRoot, file))) as Record<string, unknown>;
        const loaders = Object.entries(mod).filter(
          ([k, v]) => /^load\w*Config$/.test(k) && typeof v === "function",
        );
        assert.equal(loaders.length, 1, `${where}: one load*Config export`);
        const load = loaders[0]![1] as (env: NodeJS.ProcessEnv, args: readonly string[]) => unknown;
        assert.doesNotThrow(() => load(env, (c["args"] as string[] | undefined) ?? []), where);
      }
    }
  });

  it("select their own pods, with ports, probes and service accounts that exist", () => {
    const accounts = new Set(of("ServiceAccount").map((s) => `${s.namespace}/${s.name}`));
    for (const d of of("Deployment")) {
      const sel = asLabels(asObj(spec(d)["selector"])["matchLabels"]);
      assert.ok(Object.keys(sel).length > 0, `${d.file}: ${d.name} has an empty selector`);
      assert.ok(matches(sel, podLabels(d)), `${d.file}: ${d.name} selector misses its pods`);
      assert.ok(podLabels(d)["app"], `${d.file}: ${d.name} pods need an app label`);
      const sa = String(podSpec(d)["serviceAccountName"]);
      assert.ok(accounts.has(`${d.namespace}/${sa}`), `${d.file}: ${d.name} uses missing SA ${sa}`);
      for (const c of containers(d)) {
        const probe = asObj(c["readinessProbe"]);
        const port = asObj(probe["httpGet"])["port"] ?? asObj(probe["tcpSocket"])["port"];
        if (port !== undefined) {
          assert.ok(
            containerPorts(d).includes(Number(port)),
            `${d.file}: ${d.name} probes ${JSON.stringify(port)}`,
          );
        }
      }
    }
    for (const s of of("Service")) {
      const sel = asLabels(spec(s)["selector"]);
      const pods = of("Deployment").filter(
        (d) => d.namespace === s.namespace && matches(sel, podLabels(d)),
      );
      assert.ok(pods.length > 0, `${s.file}: Service ${s.name} selects no pods`);
      for (const p of asList(spec(s)["ports"])) {
        assert.equal(typeof p["name"], "string", `${s.file}: ${s.name} ports are named`);
        const target = Number(p["targetPort"] ?? p["port"]);
        for (const d of pods) {
          assert.ok(
            containerPorts(d).includes(target),
            `${s.file}: ${s.name} → ${d.name}:${target}`,
          );
        }
      }
    }
  });

  it("bookinfo has Istio's service accounts and three reviews versions behind one Service", () => {
    const sas = of("ServiceAccount")
      .filter((s) => s.namespace === "bookinfo")
      .map((s) => s.name);
    for (const app of ["details", "ratings", "reviews", "productpage"]) {
      assert.ok(sas.includes(`bookinfo-${app}`), app);
    }
    const reviewsPods = of("Deployment").filter(
      (d) => d.namespace === "bookinfo" && podLabels(d)["app"] === "reviews",
    );
    assert.deepEqual(reviewsPods.map((d) => podLabels(d)["version"]).sort(), ["v1", "v2", "v3"]);
    assert.ok(of("Deployment").some((d) => d.namespace === "bookinfo" && d.name === "client"));
  });

  it("policies and routes refer to workloads, identities and services that exist", () => {
    const accounts = new Set(
      of("ServiceAccount").map((s) => `cluster.local/ns/${s.namespace}/sa/${s.name}`),
    );
    const services = new Map(of("Service").map((s) => [`${s.namespace}/${s.name}`, s]));
    for (const p of of("AuthorizationPolicy")) {
      const sel = asLabels(asObj(spec(p)["selector"])["matchLabels"]);
      if (Object.keys(sel).length > 0) {
        assert.ok(
          of("Deployment").some((d) => d.namespace === p.namespace && matches(sel, podLabels(d))),
          `${p.file}: selector matches no pods`,
        );
      }
      for (const t of asList(spec(p)["targetRefs"])) {
        assert.ok(
          services.has(`${p.namespace}/${String(t["name"])}`),
          `${p.file}: targetRef ${String(t["name"])}`,
        );
      }
      for (const rule of asList(spec(p)["rules"])) {
        for (const from of asList(rule["from"])) {
          for (const principal of (asObj(from["source"])["principals"] as string[] | undefined) ??
            []) {
            assert.ok(
              accounts.has(principal),
              `${p.file}: principal ${principal} has no service account`,
            );
          }
        }
      }
    }
    for (const r of of("HTTPRoute")) {
      for (const parent of asList(spec(r)["parentRefs"])) {
        assert.ok(services.has(`${r.namespace}/${String(parent["name"])}`), `${r.file}: parent`);
      }
      for (const rule of asList(spec(r)["rules"])) {
        for (const b of asList(rule["backendRefs"])) {
          const svc = services.get(`${r.namespace}/${String(b["name"])}`);
          assert.ok(svc, `${r.file}: backend ${String(b["name"])}`);
          assert.ok(
            asList(spec(svc)["ports"]).some((p) => p["port"] === b["port"]),
            `${r.file}: backend port`,
          );
        }
      }
    }
    for (const g of of("Gateway")) assert.equal(spec(g)["gatewayClassName"], "istio-waypoint");
  });
});
