/**
 * Field paths as operators read them — `spec.rules[0].from[0].source.principals`,
 * `metadata.labels["app.kubernetes.io/name"]` — and conversion from the JSON pointers the schema
 * validators report.
 */

export type PathSegment = string | number;

const plainKey = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

export function formatFieldPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (plainKey.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/**
 * Segments of a JSON pointer (`/spec/rules/0`), typed by the data they walk: a segment that
 * indexes an array becomes a number, everything else stays a string key.
 */
export function pointerToPath(pointer: string, data: unknown): PathSegment[] {
  if (pointer === "") return [];
  const raw = pointer
    .slice(1)
    .split("/")
    .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
  const out: PathSegment[] = [];
  let cur: unknown = data;
  for (const seg of raw) {
    if (Array.isArray(cur) && /^\d+$/.test(seg)) {
      const i = Number(seg);
      out.push(i);
      cur = cur[i];
    } else {
      out.push(seg);
      cur =
        cur !== null && typeof cur === "object" && Object.hasOwn(cur, seg)
          ? (cur as Record<string, unknown>)[seg]
          : undefined;
    }
  }
  return out;
}
