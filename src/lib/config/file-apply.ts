/**
 * `ambient apply -f` and `ambient delete` for the files source: validate every input document
 * and, only when all are valid, write them into the config directory; the watching store picks
 * them up from there.
 *
 * Layout: one file per object, `<dir>/<namespace>/<kind>-<name>.yaml` (cluster-scoped kinds under
 * `<dir>/_cluster/`), kind in lower case. An object that already exists somewhere in the directory
 * is updated where it is — its file rewritten when it holds only that object, its document
 * replaced in place (other documents and their comments untouched) when the file holds several.
 * Files are written atomically (temporary dot-file, then rename).
 */
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { parseAllDocuments, stringify, type Document } from "yaml";
import { fail, ok, type Result } from "../errors.ts";
import { findManifestFiles } from "./file-walk.ts";
import { KINDS } from "./kinds.ts";
import type { ObjectKey } from "./object.ts";
import { parseManifests } from "./parse.ts";
import type { ConfigProblem } from "./problem.ts";
import type { Draft } from "./validate.ts";

export interface ApplyInput {
  /** Shown in problems (a file name, or "<stdin>"). */
  readonly name: string;
  readonly text: string;
}

export interface ApplyOptions {
  readonly dir: string;
  /** Namespace for namespaced objects that name none; written into the stored file. */
  readonly defaultNamespace?: string;
  /** Validate and plan, write nothing. */
  readonly dryRun?: boolean;
}

export interface AppliedObject {
  readonly key: ObjectKey;
  readonly file: string;
  readonly action: "created" | "configured" | "unchanged";
}

interface Located {
  readonly file: string;
  readonly text: string;
  readonly range: readonly [number, number];
  /** Object documents in the file (a file holding one object is rewritten whole). */
  readonly objects: number;
  readonly index: number;
  readonly inList: boolean;
  readonly line: number;
}

/** Where each object of the directory is defined (first definition in path order). */
async function indexDirectory(dir: string): Promise<Map<ObjectKey, Located>> {
  const index = new Map<ObjectKey, Located>();
  let files;
  try {
    files = await findManifestFiles(dir);
  } catch {
    return index; // no directory yet: everything is new
  }
  for (const f of files) {
    let text;
    try {
      text = await readFile(f.path, "utf8");
    } catch {
      continue;
    }
    const parsed = parseManifests(text, f.path, { unknownFields: "ignore" });
    const objects = parsed.documents.length + parsed.unreadable;
    for (const d of parsed.documents) {
      if (d.key === undefined || index.has(d.key)) continue;
      index.set(d.key, {
        file: f.path,
        text,
        range: d.range,
        objects,
        index: d.index,
        inList: d.item !== undefined,
        line: d.line,
      });
    }
  }
  return index;
}

function canonicalPath(dir: string, d: Draft): string {
  const ns = KINDS[d.kind].namespaced ? d.namespace : "_cluster";
  return join(dir, ns, `${d.kind.toLowerCase()}-${d.name}.yaml`);
}

/** The YAML of one input object, comments kept, namespace made explicit. */
function renderObject(doc: Document, item: number | undefined, d: Draft): string {
  let out: string;
  if (item === undefined) {
    const copy = doc.clone();
    if (KINDS[d.kind].namespaced && copy.getIn(["metadata", "namespace"]) == null) {
      copy.setIn(["metadata", "namespace"], d.namespace);
    }
    out = copy.toString();
  } else {
    const value = (doc.toJS() as { items: Record<string, unknown>[] }).items[item]!;
    const meta = (value["metadata"] ?? {}) as Record<string, unknown>;
    if (KINDS[d.kind].namespaced && meta["namespace"] == null) meta["namespace"] = d.namespace;
    out = stringify(value);
  }
  return out.replace(/^---[^\n]*\n/, "");
}

async function writeAtomic(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${process.pid}.${Date.now()}.tmp`);
  await writeFile(tmp, text, { mode: 0o644 });
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Replaces (or with `replacement` undefined removes) document ranges of one file's text. */
function spliceDocuments(
  text: string,
  edits: readonly { range: readonly [number, number]; index: number; replacement?: string }[],
): string {
  let out = text;
  for (const e of [...edits].sort((a, b) => b.range[0] - a.range[0])) {
    let rep = e.replacement ?? "";
    if (rep !== "") {
      if (!rep.endsWith("\n")) rep += "\n";
      if (e.index > 0) rep = `---\n${rep}`;
    }
    out = out.slice(0, e.range[0]) + rep + out.slice(e.range[1]);
  }
  return out;
}

/**
 * Validates every document of every input; writes only when all are valid. Returns what was
 * written, or every problem found (with file, line and field path).
 */
export async function applyManifests(
  inputs: readonly ApplyInput[],
  opts: ApplyOptions,
): Promise<Result<readonly AppliedObject[], readonly ConfigProblem[]>> {
  const problems: ConfigProblem[] = [];
  const objects: { draft: Draft; text: string; line: number; input: string }[] = [];
  const seen = new Map<ObjectKey, string>();
  for (const input of inputs) {
    const parsed = parseManifests(input.text, input.name, {
      unknownFields: "reject",
      ...(opts.defaultNamespace !== undefined ? { defaultNamespace: opts.defaultNamespace } : {}),
    });
    problems.push(...parsed.problems);
    if (parsed.problems.length > 0) continue;
    const docs = parseAllDocuments(input.text) as Document[];
    for (const d of parsed.documents) {
      const draft = d.draft!;
      const where = `${input.name}:${d.line}`;
      const first = seen.get(draft.key);
      if (first !== undefined) {
        problems.push({
          file: input.name,
          line: d.line,
          path: "",
          reason: `${draft.key} is given twice (first at ${first})`,
          key: draft.key,
        });
        continue;
      }
      seen.set(draft.key, where);
      objects.push({
        draft,
        text: renderObject(docs[d.index]!, d.item, draft),
        line: d.line,
        input: input.name,
      });
    }
  }
  if (problems.length > 0) return fail(problems);

  const index = await indexDirectory(opts.dir);
  const whole = new Map<string, { text: string; key: ObjectKey; existed: boolean }>();
  const edits = new Map<
    string,
    {
      original: string;
      list: {
        range: readonly [number, number];
        index: number;
        replacement: string;
        key: ObjectKey;
      }[];
    }
  >();
  for (const o of objects) {
    const at = index.get(o.draft.key);
    if (at === undefined) {
      whole.set(canonicalPath(opts.dir, o.draft), {
        text: o.text,
        key: o.draft.key,
        existed: false,
      });
    } else if (at.inList) {
      problems.push({
        file: o.input,
        line: o.line,
        path: "",
        reason: `${o.draft.key} is defined inside a List in ${at.file}:${at.line}; edit that file instead`,
        key: o.draft.key,
      });
    } else if (at.objects === 1) {
      whole.set(at.file, { text: o.text, key: o.draft.key, existed: true });
    } else {
      const e = edits.get(at.file) ?? { original: at.text, list: [] };
      e.list.push({ range: at.range, index: at.index, replacement: o.text, key: o.draft.key });
      edits.set(at.file, e);
    }
  }
  if (problems.length > 0) return fail(problems);

  const applied: AppliedObject[] = [];
  const writes: { path: string; text: string }[] = [];
  for (const [path, w] of whole) {
    let current: string | undefined;
    try {
      current = await readFile(path, "utf8");
    } catch {
      current = undefined;
    }
    const action = current === w.text ? "unchanged" : w.existed ? "configured" : "created";
    if (action !== "unchanged") writes.push({ path, text: w.text });
    applied.push({ key: w.key, file: path, action });
  }
  for (const [path, e] of edits) {
    const next = spliceDocuments(e.original, e.list);
    const changed = next !== e.original;
    if (changed) writes.push({ path, text: next });
    for (const x of e.list) {
      const before = e.original.slice(x.range[0], x.range[1]).replace(/^---[^\n]*\n/, "");
      applied.push({
        key: x.key,
        file: path,
        action: before === x.replacement ? "unchanged" : "configured",
      });
    }
  }
  if (!opts.dryRun) for (const w of writes) await writeAtomic(w.path, w.text);
  return ok(applied);
}

/** Deletes one object (by `kind/namespace/name`) from the directory. */
export async function deleteManifest(
  dir: string,
  key: ObjectKey,
  opts: { readonly dryRun?: boolean } = {},
): Promise<Result<{ readonly key: ObjectKey; readonly file: string }, string>> {
  const index = await indexDirectory(dir);
  const at = index.get(key);
  if (at === undefined) return fail(`${key} is not defined in ${dir}`);
  if (at.inList)
    return fail(`${key} is defined inside a List in ${at.file}:${at.line}; edit that file instead`);
  if (!opts.dryRun) {
    if (at.objects === 1) await rm(at.file);
    else
      await writeAtomic(at.file, spliceDocuments(at.text, [{ range: at.range, index: at.index }]));
  }
  return ok({ key, file: at.file });
}
