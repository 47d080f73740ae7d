/**
 * Maps a field path back to where it sits in the YAML text, so a problem points at the line of
 * the offending field rather than at the top of the document.
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from "yaml";
import type { PathSegment } from "./field-path.ts";

export interface Position {
  readonly line: number;
  readonly column: number;
}

/**
 * The position of the node at `path` in `doc`. With `at: "key"` a map entry is located by its key
 * (for unknown fields); otherwise by its value. When the path runs past what the document holds
 * (a missing required field), the deepest node found is used, so the answer still points into the
 * right object. Returns undefined only when the document has no node at all.
 */
export function locate(
  doc: Document,
  lineCounter: LineCounter,
  path: readonly PathSegment[],
  at: "key" | "value" = "value",
): Position | undefined {
  let node: unknown = doc.contents;
  let best: Node | null = isNodeWithRange(node) ? node : null;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const last = i === path.length - 1;
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => keyText(p.key) === String(seg));
      if (pair === undefined) break;
      if (last && at === "key" && isNodeWithRange(pair.key)) {
        best = pair.key;
        break;
      }
      node = pair.value;
      // A key with no value (`foo:`) has no value node; its key is the best place to point.
      if (isNodeWithRange(node) && !isEmptyScalar(node)) best = node;
      else if (isNodeWithRange(pair.key)) best = pair.key;
    } else if (isSeq(node) && typeof seg === "number") {
      const item: unknown = node.items[seg];
      if (item === undefined) break;
      node = item;
      if (isNodeWithRange(node)) best = node;
    } else {
      break;
    }
  }
  if (best === null || !best.range) return undefined;
  const pos = lineCounter.linePos(best.range[0]);
  return { line: pos.line, column: pos.col };
}

function isEmptyScalar(n: Node): boolean {
  return (
    isScalar(n) &&
    n.value === null &&
    n.range !== undefined &&
    n.range !== null &&
    n.range[0] === n.range[1]
  );
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return typeof key === "string" ? key : undefined;
}

function isNodeWithRange(n: unknown): n is Node {
  return n !== null && typeof n === "object" && "range" in n && Array.isArray(n.range);
}
