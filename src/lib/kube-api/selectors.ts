/**
 * Label and field selectors as list and watch take them (`labelSelector=app=web,tier!=db`,
 * `fieldSelector=spec.nodeName=node1`). Parsed once into a predicate over stored objects.
 */
import type { Result } from "../errors.ts";
import { isObject, metaOf, type Json } from "./status.ts";

export type Selector = (o: Json) => boolean;

type LabelReq =
  | { op: "=" | "!="; key: string; value: string }
  | { op: "in" | "notin"; key: string; values: readonly string[] }
  | { op: "exists" | "!exists"; key: string };

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== "");
}

const KEY = /^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

export function parseLabelSelector(text: string): Result<Selector, string> {
  const reqs: LabelReq[] = [];
  for (const part of splitTop(text)) {
    let m: RegExpExecArray | null;
    if ((m = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(part))) {
      const values = m[3]!
        .split(",")
        .map((v) => v.trim())
        .filter((v) => v !== "");
      if (!KEY.test(m[1]!) || !values.every((v) => VALUE.test(v))) {
        return { ok: false, reason: `invalid label selector requirement "${part}"` };
      }
      reqs.push({ op: m[2] as "in" | "notin", key: m[1]!, values });
    } else if ((m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part))) {
      if (!KEY.test(m[1]!) || !VALUE.test(m[3]!)) {
        return { ok: false, reason: `invalid label selector requirement "${part}"` };
      }
      reqs.push({ op: m[2] === "!=" ? "!=" : "=", key: m[1]!, value: m[3]! });
    } else if ((m = /^!\s*(\S+)$/.exec(part)) && KEY.test(m[1]!)) {
      reqs.push({ op: "!exists", key: m[1]! });
    } else if (KEY.test(part)) {
      reqs.push({ op: "exists", key: part });
    } else {
      return { ok: false, reason: `invalid label selector requirement "${part}"` };
    }
  }
  return {
    ok: true,
    value: (o) => {
      const labels = metaOf(o)["labels"];
      const l = isObject(labels) ? labels : {};
      return reqs.every((r) => {
        const has = Object.hasOwn(l, r.key);
        const v = l[r.key];
        switch (r.op) {
          case "=":
            return has && v === r.value;
          case "!=":
            return !has || v !== r.value;
          case "in":
            return has && r.values.includes(String(v));
          case "notin":
            return !has || !r.values.includes(String(v));
          case "exists":
            return has;
          case "!exists":
            return !has;
        }
      });
    },
  };
}

/** The value at a dotted path (`spec.nodeName`), as a string ("" when absent). */
function fieldValue(o: Json, path: string): string {
  let cur: unknown = o;
  for (const p of path.split(".")) {
    if (!isObject(cur)) return "";
    cur = cur[p];
  }
  if (typeof cur === "string") return cur;
  return typeof cur === "number" || typeof cur === "boolean" ? String(cur) : "";
}

export function parseFieldSelector(text: string): Result<Selector, string> {
  const reqs: { path: string; neg: boolean; value: string }[] = [];
  for (const part of splitTop(text)) {
    const m = /^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) return { ok: false, reason: `invalid field selector "${part}"` };
    reqs.push({ path: m[1]!, neg: m[2] === "!=", value: m[3]!.trim() });
  }
  return {
    ok: true,
    value: (o) => reqs.every((r) => (fieldValue(o, r.path) === r.value) !== r.neg),
  };
}

/** Both selectors of a request; undefined when there is none. */
export function selectorOf(
  query: Readonly<Record<string, string>>,
): Result<Selector | undefined, string> {
  const preds: Selector[] = [];
  for (const [key, parse] of [
    ["labelSelector", parseLabelSelector],
    ["fieldSelector", parseFieldSelector],
  ] as const) {
    const text = query[key];
    if (text === undefined || text.trim() === "") continue;
    const r = parse(text);
    if (!r.ok) return r;
    preds.push(r.value);
  }
  if (preds.length === 0) return { ok: true, value: undefined };
  return { ok: true, value: (o) => preds.every((p) => p(o)) };
}
