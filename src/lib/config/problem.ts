/**
 * A configuration problem: one thing wrong with one document, said so an operator can find and
 * fix it — where (file, line, column, field path), what (reason), and which object when known.
 */
import type { ObjectKey } from "./object.ts";

export interface ConfigProblem {
  /** File the document came from (files source); absent for other sources. */
  readonly file?: string;
  /** 1-based line of the offending field (or of the document when no field applies). */
  readonly line?: number;
  /** 1-based column. */
  readonly column?: number;
  /** Field path inside the document, e.g. `spec.rules[0].from[0].source.principals`; "" for the whole document. */
  readonly path: string;
  readonly reason: string;
  /** `kind/namespace/name` of the object the document defines, when it could be read. */
  readonly key?: ObjectKey;
}

/** `file:line:column: path: reason (key)` — the one-line form used in logs and the CLI. */
export function formatProblem(p: ConfigProblem): string {
  let where = p.file ?? "";
  if (p.line !== undefined) where += `${where ? ":" : "line "}${p.line}`;
  if (p.column !== undefined && p.line !== undefined) where += `:${p.column}`;
  const parts: string[] = [];
  if (where) parts.push(where);
  if (p.path) parts.push(p.path);
  parts.push(p.reason);
  let s = parts.join(": ");
  if (p.key !== undefined) s += ` (${p.key})`;
  return s;
}
