/**
 * The files source's decisions, as pure functions: what each file holds in force after a read
 * (new valid objects, last good versions of rejected ones), and which file wins an object that
 * several define. The source does the I/O and feeds these.
 */
import type { ObjectKey } from "./object.ts";
import { parseManifests, type ParsedFile } from "./parse.ts";
import type { ConfigProblem } from "./problem.ts";
import type { Draft } from "./validate.ts";

export interface FileEntry {
  readonly draft: Draft;
  /** Line of the document that defined it (for conflict messages). */
  readonly line: number;
  /** True when this is the last good version kept in place of a rejected document. */
  readonly lastGood: boolean;
}

export interface FileState {
  /** The text last read; undefined when the file could not be read. */
  readonly text: string | undefined;
  readonly inForce: ReadonlyMap<ObjectKey, FileEntry>;
  /** Problems of this file: its documents' and its own (read errors, duplicates). */
  readonly problems: readonly ConfigProblem[];
}

export type FileRead = { ok: true; text: string } | { ok: false; reason: string };

/**
 * The state of `file` after reading it. A valid document puts its object in force; a rejected
 * document whose object is known keeps that object's last good version; when some document could
 * not be parsed at all, every object the file held before stays (it may be in that document).
 * A file that cannot be read keeps everything it held.
 */
export function nextFileState(
  prev: FileState | undefined,
  file: string,
  read: FileRead,
  opts: {
    readonly defaultNamespace?: string;
    /** The object in force now wherever it came from (an object moved to this file and broken there). */
    readonly inForceElsewhere?: (key: ObjectKey) => FileEntry | undefined;
  } = {},
): FileState {
  const before = prev?.inForce ?? new Map<ObjectKey, FileEntry>();
  if (!read.ok) {
    return {
      text: undefined,
      inForce: before,
      problems: [
        {
          file,
          path: "",
          reason: `cannot read file: ${read.reason}; its objects keep their last good versions`,
        },
      ],
    };
  }
  if (prev?.text === read.text) return prev;
  const parsed: ParsedFile = parseManifests(read.text, file, {
    unknownFields: "reject",
    ...(opts.defaultNamespace !== undefined ? { defaultNamespace: opts.defaultNamespace } : {}),
  });
  const inForce = new Map<ObjectKey, FileEntry>();
  const mentioned = new Set<ObjectKey>();
  const problems: ConfigProblem[] = [...parsed.problems];
  for (const doc of parsed.documents) {
    if (doc.key === undefined) continue;
    const first = inForce.get(doc.key);
    if (mentioned.has(doc.key)) {
      problems.push({
        file,
        line: doc.line,
        path: "",
        reason: `${doc.key} is defined more than once in this file${first ? ` (first at line ${first.line})` : ""}; this definition is ignored`,
        key: doc.key,
      });
      continue;
    }
    mentioned.add(doc.key);
    if (doc.draft !== undefined) {
      inForce.set(doc.key, { draft: doc.draft, line: doc.line, lastGood: false });
    } else {
      const good = before.get(doc.key) ?? opts.inForceElsewhere?.(doc.key);
      if (good !== undefined) inForce.set(doc.key, { ...good, lastGood: true });
    }
  }
  if (parsed.unreadable > 0) {
    for (const [key, entry] of before) {
      if (!mentioned.has(key)) inForce.set(key, { ...entry, lastGood: true });
    }
  }
  return { text: read.text, inForce, problems };
}

export interface Claim {
  readonly file: string;
  readonly entry: FileEntry;
}

/**
 * Resolves objects defined by several files: files are taken in the order given (sorted by
 * relative path), the first to define an object wins, and every later definition is a problem
 * reported at its own file and line.
 */
export function mergeFiles(
  files: readonly { readonly file: string; readonly state: FileState }[],
): {
  claims: Map<ObjectKey, Claim>;
  conflicts: Map<string, ConfigProblem[]>;
} {
  const claims = new Map<ObjectKey, Claim>();
  const conflicts = new Map<string, ConfigProblem[]>();
  for (const { file, state } of files) {
    for (const [key, entry] of state.inForce) {
      const winner = claims.get(key);
      if (winner === undefined) {
        claims.set(key, { file, entry });
        continue;
      }
      const list = conflicts.get(file) ?? [];
      list.push({
        file,
        line: entry.line,
        path: "",
        reason: `conflict: ${key} is also defined in ${winner.file}:${winner.entry.line}, which takes precedence (files are read in path order); this definition is ignored`,
        key,
      });
      conflicts.set(file, list);
    }
  }
  return { claims, conflicts };
}
