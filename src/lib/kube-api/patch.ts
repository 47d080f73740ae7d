/**
 * The patch formats the API server accepts: JSON merge patch (RFC 7386), strategic merge patch
 * (applied as a merge patch: lists are replaced whole rather than merged by key — say so to the
 * client in docs, not here), and JSON patch (RFC 6902).
 */
import { mergePatch } from "../config/merge-patch.ts";
import type { Result } from "../errors.ts";
import { jsonEqual } from "./json.ts";
import { isObject, type Json } from "./status.ts";

export type PatchType = "merge" | "strategic" | "json";

/** The patch type of a Content-Type header, or undefined when it is not one we apply. */
export function patchTypeOf(contentType: string): PatchType | undefined {
  switch (contentType.split(";")[0]!.trim().toLowerCase()) {
    case "application/merge-patch+json":
      return "merge";
    case "application/strategic-merge-patch+json":
      return "strategic";
    case "application/json-patch+json":
      return "json";
    default:
      return undefined;
  }
}

function unescape(token: string): string {
  return token.replace(/~1/g, "/").replace(/~0/g, "~");
}

function parsePointer(path: string): string[] | undefined {
  if (path === "") return [];
  if (!path.startsWith("/")) return undefined;
  return path.slice(1).split("/").map(unescape);
}

type Container = Json | unknown[];

/** Walks to the parent of the pointer's last token. */
function parentOf(doc: unknown, tokens: readonly string[]): Container | undefined {
  let cur: unknown = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObject(cur)) cur = cur[t];
    else return undefined;
  }
  return Array.isArray(cur) || isObject(cur) ? cur : undefined;
}

function getAt(doc: unknown, tokens: readonly string[]): { found: boolean; value?: unknown } {
  let cur: unknown = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) {
      const i = Number(t);
      if (!/^\d+$/.test(t) || i >= cur.length) return { found: false };
      cur = cur[i];
    } else if (isObject(cur)) {
      if (!Object.hasOwn(cur, t)) return { found: false };
      cur = cur[t];
    } else return { found: false };
  }
  return { found: true, value: cur };
}

function removeAt(doc: unknown, tokens: readonly string[]): string | undefined {
  const parent = parentOf(doc, tokens);
  const last = tokens[tokens.length - 1]!;
  if (Array.isArray(parent)) {
    const i = Number(last);
    if (!/^\d+$/.test(last) || i >= parent.length) return "index out of range";
    parent.splice(i, 1);
  } else if (isObject(parent)) {
    if (!Object.hasOwn(parent, last)) return "no such member";
    delete parent[last];
  } else return "parent does not exist";
  return undefined;
}

function addAt(doc: unknown, tokens: readonly string[], value: unknown): string | undefined {
  const parent = parentOf(doc, tokens);
  const last = tokens[tokens.length - 1]!;
  if (Array.isArray(parent)) {
    if (last === "-") parent.push(value);
    else {
      const i = Number(last);
      if (!/^\d+$/.test(last) || i > parent.length) return "index out of range";
      parent.splice(i, 0, value);
    }
  } else if (isObject(parent)) {
    parent[last] = value;
  } else return "parent does not exist";
  return undefined;
}

/** Applies a JSON patch to a copy of `doc`; the reason names the failing operation. */
export function applyJsonPatch(doc: unknown, ops: unknown): Result<unknown, string> {
  if (!Array.isArray(ops))
    return { ok: false, reason: "a JSON patch must be a list of operations" };
  let out: unknown = structuredClone(doc);
  for (let n = 0; n < ops.length; n++) {
    const op: unknown = ops[n];
    const where = `operation ${n}`;
    if (!isObject(op) || typeof op["op"] !== "string" || typeof op["path"] !== "string") {
      return { ok: false, reason: `${where}: needs "op" and "path"` };
    }
    const tokens = parsePointer(op["path"]);
    if (tokens === undefined) return { ok: false, reason: `${where}: bad path "${op["path"]}"` };
    const from = typeof op["from"] === "string" ? parsePointer(op["from"]) : undefined;
    let problem: string | undefined;
    switch (op["op"]) {
      case "add":
        if (tokens.length === 0) out = structuredClone(op["value"]);
        else problem = addAt(out, tokens, structuredClone(op["value"]));
        break;
      case "remove":
        problem = tokens.length === 0 ? "cannot remove the root" : removeAt(out, tokens);
        break;
      case "replace":
        if (tokens.length === 0) out = structuredClone(op["value"]);
        else if (!getAt(out, tokens).found) problem = "path does not exist";
        else {
          removeAt(out, tokens);
          problem = addAt(out, tokens, structuredClone(op["value"]));
        }
        break;
      case "test": {
        const got = getAt(out, tokens);
        if (!got.found || !jsonEqual(got.value, op["value"])) problem = "test failed";
        break;
      }
      case "move":
      case "copy": {
        if (from === undefined) {
          problem = `"from" is missing or bad`;
          break;
        }
        const got = getAt(out, from);
        if (!got.found) {
          problem = `"from" path does not exist`;
          break;
        }
        const value = structuredClone(got.value);
        if (op["op"] === "move") removeAt(out, from);
        problem = tokens.length === 0 ? undefined : addAt(out, tokens, value);
        if (tokens.length === 0) out = value;
        break;
      }
      default:
        problem = `unknown op "${String(op["op"])}"`;
    }
    if (problem !== undefined)
      return { ok: false, reason: `${where} (${op["op"]} ${op["path"]}): ${problem}` };
  }
  return { ok: true, value: out };
}

/** Applies a patch of the given type to `doc` (never changed). */
export function applyPatch(doc: Json, type: PatchType, patch: unknown): Result<Json, string> {
  if (type === "json") {
    const r = applyJsonPatch(doc, patch);
    if (!r.ok) return r;
    return isObject(r.value)
      ? { ok: true, value: r.value }
      : { ok: false, reason: "the patched document is not an object" };
  }
  if (!isObject(patch)) return { ok: false, reason: "a merge patch must be a JSON object" };
  // The result shares untouched parts with `doc` (frozen when stored): copy it whole.
  return { ok: true, value: structuredClone(mergePatch(doc, patch)) as Json };
}
