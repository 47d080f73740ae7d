/**
 * Golden tests: `testdata/<case>/input.yaml` (plus optional `options.json`) → `expected.json`,
 * resources in proto JSON (`toJson`), sorted by name. `UPDATE_GOLDEN=1` rewrites the expected
 * files; every rewrite must be reviewed against INTEROP.md and istiod before committing.
 *
 * Each case is also fed to the incremental index one object at a time, forwards and backwards,
 * and then deleted object by object: the result must equal the from-scratch conversion at the
 * end, and nothing may remain after the deletes. That checks the dependency tracking, not just
 * the conversion.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { toJson } from "@bufbuild/protobuf";
import { parseAllDocuments } from "yaml";
import { AuthorizationSchema } from "../../lib/gen/istio/security/authorization_pb.ts";
import { AddressSchema } from "../../lib/gen/istio/workload/workload_pb.ts";
import { objectKey, resourceKindOf } from "../model/index.ts";
import type { KubeObject } from "../model/index.ts";
import { AmbientIndex, computeAmbient } from "./index.ts";
import type { AmbientOptions, AmbientState } from "./index.ts";

const testdata = join(import.meta.dirname, "testdata");
const update = process.env["UPDATE_GOLDEN"] === "1";

function loadCase(dir: string): { objects: KubeObject[]; options: Partial<AmbientOptions> } {
  const text = readFileSync(join(dir, "input.yaml"), "utf8");
  const objects: KubeObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0)
      throw new Error(`${dir}/input.yaml: ${doc.errors.map((e) => e.message).join("; ")}`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) objects.push(value as KubeObject);
  }
  const optionsFile = join(dir, "options.json");
  const options = existsSync(optionsFile)
    ? (JSON.parse(readFileSync(optionsFile, "utf8")) as Partial<AmbientOptions>)
    : {};
  return { objects, options };
}

/** The golden form: proto JSON for resources, plus enforcement, reports and enrollment. */
function render(state: AmbientState, index: AmbientIndex, objects: readonly KubeObject[]): unknown {
  return {
    addresses: state.addresses.map((a) => ({
      name: a.name,
      aliases: a.aliases,
      resource: toJson(AddressSchema, a.message),
    })),
    authorizations: state.authorizations.map((a) => ({
      name: a.name,
      resource: toJson(AuthorizationSchema, a.message),
    })),
    enforcement: state.enforcement,
    enrollment: objects
      .filter((o) => resourceKindOf(o) === "Pod")
      .map((o) => {
        const e = index.enrollment(o.metadata.namespace ?? "", o.metadata.name);
        return {
          pod: `${o.metadata.namespace ?? ""}/${o.metadata.name}`,
          enrolled: e?.enrolled,
          reason: e?.reason,
        };
      }),
    reports: state.reports,
  };
}

function resourcesOf(index: AmbientIndex): string[] {
  return [
    ...index.addresses().map((r) => `A ${r.name} ${r.version} ${r.aliases.join(",")}`),
    ...index.authorizations().map((r) => `Z ${r.name} ${r.version}`),
  ];
}

const cases = existsSync(testdata)
  ? readdirSync(testdata)
      .filter((d) => existsSync(join(testdata, d, "input.yaml")))
      .sort()
  : [];

describe("ambient golden cases", () => {
  it("has cases", () => {
    assert.ok(cases.length > 0, `no cases under ${testdata}`);
  });
  for (const name of cases) {
    const dir = join(testdata, name);
    it(name, () => {
      const { objects, options } = loadCase(dir);
      const index = new AmbientIndex(options);
      index.apply(objects.map((object) => ({ op: "upsert" as const, object })));
      const state = computeAmbient(objects, options);
      // Round-trip through JSON so the comparison sees exactly what the file can hold.
      const actual: unknown = JSON.parse(JSON.stringify(render(state, index, objects)));
      const expectedFile = join(dir, "expected.json");
      if (update) {
        writeFileSync(expectedFile, `${JSON.stringify(actual, null, 2)}\n`);
        return;
      }
      assert.ok(
        existsSync(expectedFile),
        `${expectedFile} missing: run with UPDATE_GOLDEN=1 and review it`,
      );
      // Compared as data, not text, so prettier may format the files.
      const expected: unknown = JSON.parse(readFileSync(expectedFile, "utf8"));
      assert.deepEqual(actual, expected, `${name}: output differs from expected.json`);
    });
    it(`${name}: incremental, any order, equals from-scratch`, () => {
      const { objects, options } = loadCase(dir);
      const full = new AmbientIndex(options);
      full.apply(objects.map((object) => ({ op: "upsert" as const, object })));
      const want = resourcesOf(full);
      for (const order of [objects, [...objects].reverse()]) {
        const index = new AmbientIndex(options);
        for (const object of order) index.apply([{ op: "upsert", object }]);
        assert.deepEqual(resourcesOf(index), want);
        for (const object of order) {
          const kind = resourceKindOf(object);
          if (kind !== undefined)
            index.apply([{ op: "delete", kind, key: objectKey(kind, object.metadata) }]);
        }
        assert.deepEqual(resourcesOf(index), []);
      }
    });
  }
});
