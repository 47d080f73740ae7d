/**
 * Manifests from `-f FILE|DIR` into the config directory, validated with `src/lib/config`: every
 * problem of every document is reported (file, line, field path) and nothing is written unless
 * everything is valid. The API server watches the directory and picks the change up.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { parseAllDocuments, type Document } from "yaml";
import { fail, ok, type Result } from "../../lib/errors.ts";
import {
  KINDS,
  applyManifests,
  deleteManifest,
  formatProblem,
  isKind,
  parseManifests,
  type AppliedObject,
  type ApplyInput,
  type Kind,
} from "../../lib/config/index.ts";

function yamlFiles(dir: string, out: string[]): void {
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    if (e.name.startsWith(".")) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) yamlFiles(p, out);
    else if (/\.ya?ml$/.test(e.name)) out.push(p);
  }
}

/** Reads every YAML file named or inside a named directory (recursively, sorted). */
export function readManifestInputs(paths: readonly string[]): Result<ApplyInput[], string[]> {
  const files: string[] = [];
  const problems: string[] = [];
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch {
      problems.push(`${p}: no such file or directory`);
      continue;
    }
    if (st.isDirectory()) {
      const before = files.length;
      yamlFiles(p, files);
      if (files.length === before) problems.push(`${p}: no .yaml or .yml files in this directory`);
    } else {
      files.push(p);
    }
  }
  if (problems.length > 0) return fail(problems);
  const cwd = process.cwd();
  return ok(
    files.map((f) => ({
      name: f.startsWith(cwd + "/") ? relative(cwd, f) : f,
      text: readFileSync(f, "utf8"),
    })),
  );
}

/** `kind/ns/name created|configured|unchanged`, kubectl's way. */
export function describeApplied(a: AppliedObject): string {
  return `${a.key} ${a.action}`;
}

/** Validates and writes; every problem as one line `file:line:col: path: reason (key)`. */
export async function applyToConfigDir(
  configDir: string,
  inputs: readonly ApplyInput[],
  opts: { dryRun?: boolean } = {},
): Promise<Result<readonly AppliedObject[], string[]>> {
  const r = await applyManifests(inputs, {
    dir: configDir,
    ...(opts.dryRun ? { dryRun: true } : {}),
  });
  return r.ok ? ok(r.value) : fail(r.reason.map(formatProblem));
}

/** Deletes every object the inputs define (they must parse; validity of the rest is not needed). */
export async function deleteFromConfigDir(
  configDir: string,
  inputs: readonly ApplyInput[],
): Promise<Result<{ deleted: string[]; missing: string[] }, string[]>> {
  const keys: string[] = [];
  const problems: string[] = [];
  for (const input of inputs) {
    const parsed = parseManifests(input.text, input.name, { unknownFields: "ignore" });
    for (const d of parsed.documents) {
      if (d.key !== undefined) keys.push(d.key);
      else problems.push(...d.problems.map(formatProblem));
    }
    if (parsed.unreadable > 0) {
      problems.push(
        ...parsed.problems.filter((p) => p.reason.startsWith("YAML")).map(formatProblem),
      );
    }
  }
  if (problems.length > 0) return fail(problems);
  const deleted: string[] = [];
  const missing: string[] = [];
  for (const key of keys) {
    const r = await deleteManifest(configDir, key);
    if (r.ok) deleted.push(key);
    else missing.push(r.reason);
  }
  return ok({ deleted, missing });
}

const KIND_ALIASES: Readonly<Record<string, Kind>> = {
  ns: "Namespace",
  namespace: "Namespace",
  namespaces: "Namespace",
  svc: "Service",
  service: "Service",
  services: "Service",
  deploy: "Deployment",
  deployment: "Deployment",
  deployments: "Deployment",
  po: "Pod",
  pod: "Pod",
  pods: "Pod",
  sa: "ServiceAccount",
  serviceaccount: "ServiceAccount",
};

/** `ns`, `namespace`, `Namespace`, `authorizationpolicy` → the kind; undefined if unknown. */
export function kindFromArg(arg: string): Kind | undefined {
  const alias = KIND_ALIASES[arg.toLowerCase()];
  if (alias !== undefined) return alias;
  if (isKind(arg)) return arg;
  const lower = arg.toLowerCase();
  return (Object.keys(KINDS) as Kind[]).find(
    (k) => k.toLowerCase() === lower || KINDS[k].plural === lower,
  );
}

export type LabelChange = { readonly key: string; readonly value: string | null };

/** `key=value` sets, `key-` removes; undefined when malformed. */
export function parseLabelChange(arg: string): LabelChange | undefined {
  if (arg.endsWith("-") && !arg.includes("=")) return { key: arg.slice(0, -1), value: null };
  const i = arg.indexOf("=");
  if (i <= 0) return undefined;
  return { key: arg.slice(0, i), value: arg.slice(i + 1) };
}

/**
 * Changes labels of an object defined in the config directory: its document is edited (comments
 * and the rest of the file kept) and written back through `applyManifests`, so the result is
 * validated like any other apply.
 */
export async function labelInConfigDir(
  configDir: string,
  kind: Kind,
  namespace: string,
  name: string,
  changes: readonly LabelChange[],
): Promise<Result<AppliedObject, string[]>> {
  const files: string[] = [];
  try {
    yamlFiles(configDir, files);
  } catch {
    return fail([`no config directory at ${configDir}; is the cluster up?`]);
  }
  const ns = KINDS[kind].namespaced ? namespace : "";
  for (const f of files) {
    const text = readFileSync(f, "utf8");
    const docs = parseAllDocuments(text) as Document[];
    if (!Array.isArray(docs)) continue;
    for (const doc of docs) {
      const obj = doc.toJS() as {
        kind?: string;
        metadata?: { name?: string; namespace?: string };
      } | null;
      if (obj?.kind !== kind || obj.metadata?.name !== name) continue;
      if (KINDS[kind].namespaced && (obj.metadata.namespace ?? "default") !== ns) continue;
      const edited = doc.clone();
      for (const c of changes) {
        if (c.value === null) edited.deleteIn(["metadata", "labels", c.key]);
        else edited.setIn(["metadata", "labels", c.key], c.value);
      }
      const r = await applyToConfigDir(configDir, [{ name: f, text: edited.toString() }]);
      if (!r.ok) return fail(r.reason);
      return ok(r.value[0]!);
    }
  }
  const what = KINDS[kind].namespaced ? `${kind} ${namespace}/${name}` : `${kind} ${name}`;
  return fail([
    `${what} is not defined in ${configDir}; only objects from manifests can be labelled (pods of a Deployment: label its template and apply)`,
  ]);
}
