/**
 * Multi-document YAML → validated drafts and positioned problems. Pure: text in, values out.
 * `List` documents (kind `List` or `<Kind>List` with `items`) expand into their items.
 */
import { LineCounter, parseAllDocuments, type Document } from "yaml";
import { formatFieldPath, type PathSegment } from "./field-path.ts";
import type { ObjectKey } from "./object.ts";
import type { ConfigProblem } from "./problem.ts";
import { validateObject, type Draft, type ValidateOptions } from "./validate.ts";
import { locate } from "./yaml-position.ts";

/** One object-sized document (a document, or one item of a List document). */
export interface ParsedDocument {
  /** 0-based index of the YAML document in the file. */
  readonly index: number;
  /** Index inside a List document's items. */
  readonly item?: number;
  /** 1-based line where the object starts. */
  readonly line: number;
  /** [start, end) character offsets of the YAML document in the text. */
  readonly range: readonly [number, number];
  /** Set when the object is valid. */
  readonly draft?: Draft;
  /** Known when kind, name (and namespace) could be read, even if the object is invalid. */
  readonly key?: ObjectKey;
  readonly problems: readonly ConfigProblem[];
}

export interface ParsedFile {
  readonly documents: readonly ParsedDocument[];
  /**
   * YAML documents that could not be parsed at all: which objects they held is unknown, so the
   * files source keeps the last good versions of everything the file held before.
   */
  readonly unreadable: number;
  /** Every problem of the file, in document order. */
  readonly problems: readonly ConfigProblem[];
}

export function parseManifests(
  text: string,
  file: string | undefined,
  opts: ValidateOptions,
): ParsedFile {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, {
    lineCounter,
    prettyErrors: true,
    // Problems are reported as values; the library must not print process warnings.
    logLevel: "error",
  });
  const documents: ParsedDocument[] = [];
  const problems: ConfigProblem[] = [];
  let unreadable = 0;
  const where = file === undefined ? {} : { file };
  const list = Array.isArray(docs) ? docs : [];
  // A stream that is not a list of documents (parseAllDocuments' EmptyStream) holds nothing.
  list.forEach((doc, index) => {
    const range: [number, number] = [doc.range?.[0] ?? 0, doc.range?.[2] ?? text.length];
    const startLine = lineCounter.linePos(firstContentOffset(doc)).line;
    if (doc.errors.length > 0) {
      unreadable++;
      const ps = doc.errors.map((e): ConfigProblem => {
        const lp = e.linePos?.[0];
        return {
          ...where,
          ...(lp ? { line: lp.line, column: lp.col } : {}),
          path: "",
          reason: `YAML syntax error: ${firstLine(e.message)}`,
        };
      });
      problems.push(...ps);
      documents.push({ index, line: ps[0]?.line ?? startLine, range, problems: ps });
      return;
    }
    if (doc.contents === null || isNullScalar(doc)) return; // empty or comment-only document
    let value: unknown;
    try {
      // Throws on an alias to an unknown anchor, or on alias expansion past the limit (a
      // "billion laughs" document).
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      unreadable++;
      const p: ConfigProblem = {
        ...where,
        line: startLine,
        path: "",
        reason: `YAML error: ${firstLine(err instanceof Error ? err.message : String(err))}`,
      };
      problems.push(p);
      documents.push({ index, line: startLine, range, problems: [p] });
      return;
    }
    const items = listItems(value);
    const objects: { value: unknown; prefix: PathSegment[]; item?: number }[] =
      items === undefined
        ? [{ value, prefix: [] }]
        : items.map((v, i) => ({ value: v, prefix: ["items", i], item: i }));
    for (const o of objects) {
      const r = validateObject(o.value, opts);
      const objLine = locate(doc, lineCounter, o.prefix)?.line ?? startLine;
      const ps = r.issues.map((issue): ConfigProblem => {
        const full = [...o.prefix, ...issue.path];
        const pos = locate(doc, lineCounter, full, issue.at);
        return {
          ...where,
          ...(pos ? { line: pos.line, column: pos.column } : {}),
          path: formatFieldPath(full),
          reason: issue.reason,
          ...(r.key !== undefined ? { key: r.key } : {}),
        };
      });
      problems.push(...ps);
      documents.push({
        index,
        ...(o.item !== undefined ? { item: o.item } : {}),
        line: objLine,
        range,
        ...(r.draft !== undefined ? { draft: r.draft } : {}),
        ...(r.key !== undefined ? { key: r.key } : {}),
        problems: ps,
      });
    }
  });
  return { documents, unreadable, problems };
}

function listItems(v: unknown): unknown[] | undefined {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const kind = o["kind"];
  if (typeof kind !== "string" || !kind.endsWith("List") || !Array.isArray(o["items"])) {
    return undefined;
  }
  return o["items"] as unknown[];
}

function isNullScalar(doc: Document): boolean {
  const c = doc.contents as { value?: unknown; constructor?: { name?: string } } | null;
  return (
    c !== null && "value" in c && (c.value === null || c.value === undefined) && !("items" in c)
  );
}

function firstContentOffset(doc: Document): number {
  const c = doc.contents as { range?: [number, number, number] } | null;
  return c?.range?.[0] ?? doc.range?.[0] ?? 0;
}

function firstLine(s: string): string {
  const nl = s.indexOf("\n");
  return (nl === -1 ? s : s.slice(0, nl)).replace(/ at line \d+, column \d+:?$/, "");
}
