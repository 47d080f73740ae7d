/**
 * Validation of one object as a user wrote it (or as an API server returned it): kind and
 * apiVersion known, metadata well formed, namespace defaulted, the whole object against its
 * schema, then the semantic checks. Every problem is returned, not just the first; a valid object
 * comes back as a Draft — the content the store keeps, before generated fields are added.
 */
import type { PathSegment } from "./field-path.ts";
import {
  ALL_KINDS,
  KINDS,
  apiVersionsFor,
  resolveKind,
  splitApiVersion,
  type Kind,
} from "./kinds.ts";
import { checkLabelValue, checkName, checkQualifiedName, checkDns1123Label } from "./names.ts";
import { objectKey, type ObjectKey, type OwnerReference } from "./object.ts";
import { validateSchema, type FieldIssue } from "./schema.ts";
import { validateSemantics } from "./semantic.ts";

/** The validated content of an object: what the user controls, before the store stamps it. */
export interface Draft {
  readonly kind: Kind;
  readonly apiVersion: string;
  readonly key: ObjectKey;
  readonly name: string;
  /** "" for cluster-scoped kinds. */
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly ownerReferences: readonly OwnerReference[];
  readonly spec: unknown;
  readonly status: unknown;
  /** The object's metadata as given (server-generated fields such as uid live here). */
  readonly rawMetadata: Readonly<Record<string, unknown>>;
}

export interface ValidateOptions {
  /** See SchemaOptions.unknownFields. */
  readonly unknownFields: "reject" | "ignore";
  /** Namespace for namespaced objects that name none (kubectl's default: "default"). */
  readonly defaultNamespace?: string;
}

export interface ValidationResult {
  /** Set when the object is valid. */
  readonly draft?: Draft;
  /** `kind/namespace/name` when kind, name (and namespace) could be read, valid or not. */
  readonly key?: ObjectKey;
  readonly issues: readonly FieldIssue[];
}

type Obj = Readonly<Record<string, unknown>>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  return typeof v === "object" ? "a map" : `a ${typeof v}`;
}

export function validateObject(raw: unknown, opts: ValidateOptions): ValidationResult {
  const issues: FieldIssue[] = [];
  const add = (path: readonly PathSegment[], reason: string, at: "key" | "value" = "value") =>
    issues.push({ path, at, reason });
  if (!isObj(raw)) {
    add([], `a document must be a map with apiVersion, kind and metadata (got ${kindOf(raw)})`);
    return { issues };
  }

  const apiVersion = raw["apiVersion"];
  const kindName = raw["kind"];
  let info;
  if (typeof apiVersion !== "string" || apiVersion === "") {
    add(["apiVersion"], "required field is missing (e.g. security.istio.io/v1)");
  }
  if (typeof kindName !== "string" || kindName === "") {
    add(["kind"], "required field is missing (e.g. AuthorizationPolicy)");
  }
  if (typeof apiVersion === "string" && typeof kindName === "string" && kindName !== "") {
    const r = resolveKind(apiVersion, kindName);
    if (r.ok) info = r.value;
    else if (r.reason === "unknown-kind") {
      add(["kind"], `unknown kind "${kindName}"; supported kinds: ${ALL_KINDS.join(", ")}`);
    } else if (apiVersion !== "") {
      const served = apiVersionsFor(kindName as Kind);
      add(
        ["apiVersion"],
        `${kindName} is not served as "${apiVersion}"; use ${served.join(" or ")}`,
      );
    }
  }

  // Metadata is checked whatever the kind, so one pass reports everything.
  const meta = raw["metadata"];
  let name: string | undefined;
  let namespace = "";
  if (!isObj(meta)) {
    add(
      ["metadata"],
      meta === undefined ? "required field is missing" : `must be a map (got ${kindOf(meta)})`,
    );
  } else {
    const n = meta["name"];
    if (typeof n === "string" && n !== "") {
      name = n;
      const bad = info ? checkName(info.nameRule, n) : checkName("dns1123-subdomain", n);
      if (bad !== undefined) add(["metadata", "name"], `invalid name "${n}": ${bad}`);
    } else if (n === undefined || n === "") {
      add(
        ["metadata", "name"],
        meta["generateName"] !== undefined
          ? "required field is missing (generateName is not supported here: give the object a name)"
          : "required field is missing",
      );
    }
    const ns = meta["namespace"];
    const namespaced = info ? info.namespaced : true;
    if (namespaced) {
      if (typeof ns === "string" && ns !== "") {
        namespace = ns;
        const bad = checkDns1123Label(ns);
        if (bad !== undefined) add(["metadata", "namespace"], `invalid namespace "${ns}": ${bad}`);
      } else if (ns === undefined || ns === "" || ns === null) {
        namespace = opts.defaultNamespace ?? "default";
      }
    }
    checkStringMap(meta["labels"], ["metadata", "labels"], true, issues);
    checkStringMap(meta["annotations"], ["metadata", "annotations"], false, issues);
  }

  if (info) {
    const { version } = splitApiVersion(apiVersion as string);
    issues.push(...validateSchema(info.kind, version, raw, { unknownFields: opts.unknownFields }));
    issues.push(...validateSemantics(info.kind, raw));
  }

  const key = info && name !== undefined ? objectKey(info.kind, namespace, name) : undefined;
  if (issues.length > 0 || !info || name === undefined || !isObj(meta)) {
    return key === undefined ? { issues } : { key, issues };
  }
  const k = KINDS[info.kind];
  let spec: unknown;
  if (k.topLevelSpec) {
    const s: Record<string, unknown> = {};
    for (const [f, v] of Object.entries(raw)) {
      if (f !== "apiVersion" && f !== "kind" && f !== "metadata" && f !== "status") s[f] = v;
    }
    spec = s;
  } else {
    spec = raw["spec"] ?? {};
  }
  const draft: Draft = {
    kind: info.kind,
    apiVersion: apiVersion as string,
    key: key!,
    name,
    namespace,
    labels: (meta["labels"] as Record<string, string> | undefined) ?? {},
    annotations: (meta["annotations"] as Record<string, string> | undefined) ?? {},
    ownerReferences: (meta["ownerReferences"] as OwnerReference[] | undefined) ?? [],
    spec,
    status: raw["status"],
    rawMetadata: meta,
  };
  return { draft, key: key!, issues };
}

/** Label/annotation keys and (for labels) values; the schema reports non-string values. */
function checkStringMap(
  v: unknown,
  path: readonly PathSegment[],
  labels: boolean,
  out: FieldIssue[],
): void {
  if (!isObj(v)) return;
  for (const [k, val] of Object.entries(v)) {
    const badKey = checkQualifiedName(k);
    if (badKey !== undefined) {
      out.push({ path: [...path, k], at: "key", reason: `invalid key "${k}": ${badKey}` });
    }
    if (labels && typeof val === "string") {
      const badVal = checkLabelValue(val);
      if (badVal !== undefined) {
        out.push({
          path: [...path, k],
          at: "value",
          reason: `invalid label value "${val}": ${badVal}`,
        });
      }
    }
  }
}
