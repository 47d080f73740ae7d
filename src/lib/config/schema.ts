/**
 * Spec validation against the JSON schemas the maintained `kubernetes-models` packages ship
 * (compiled ajv validators generated from the Kubernetes OpenAPI document, Istio's CRDs and the
 * Gateway API CRDs), plus the strict-field check Kubernetes applies and those validators lack.
 *
 * The validators accept unknown fields. Rather than keep a second copy of every schema, the check
 * watches the validator itself: the data is handed over behind a Proxy that records which keys the
 * validator reads. A compiled validator reads every property its schema declares, and enumerates
 * the keys of map-typed objects (`additionalProperties`), so a key it never read and whose object
 * it never enumerated is a field the schema does not know. Same schemas, no drift.
 */
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { EndpointSlice } from "kubernetes-models/discovery.k8s.io/v1/EndpointSlice";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Node } from "kubernetes-models/v1/Node";
import { Pod } from "kubernetes-models/v1/Pod";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import * as secV1 from "@kubernetes-models/istio/security.istio.io/v1";
import * as secV1beta1 from "@kubernetes-models/istio/security.istio.io/v1beta1";
import { DestinationRule as DrV1 } from "@kubernetes-models/istio/networking.istio.io/v1/DestinationRule";
import { ServiceEntry as SeV1 } from "@kubernetes-models/istio/networking.istio.io/v1/ServiceEntry";
import { VirtualService as VsV1 } from "@kubernetes-models/istio/networking.istio.io/v1/VirtualService";
import { WorkloadEntry as WeV1 } from "@kubernetes-models/istio/networking.istio.io/v1/WorkloadEntry";
import { DestinationRule as DrV1beta1 } from "@kubernetes-models/istio/networking.istio.io/v1beta1/DestinationRule";
import { ServiceEntry as SeV1beta1 } from "@kubernetes-models/istio/networking.istio.io/v1beta1/ServiceEntry";
import { VirtualService as VsV1beta1 } from "@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService";
import { WorkloadEntry as WeV1beta1 } from "@kubernetes-models/istio/networking.istio.io/v1beta1/WorkloadEntry";
import { DestinationRule as DrV1alpha3 } from "@kubernetes-models/istio/networking.istio.io/v1alpha3/DestinationRule";
import { ServiceEntry as SeV1alpha3 } from "@kubernetes-models/istio/networking.istio.io/v1alpha3/ServiceEntry";
import { VirtualService as VsV1alpha3 } from "@kubernetes-models/istio/networking.istio.io/v1alpha3/VirtualService";
import { WorkloadEntry as WeV1alpha3 } from "@kubernetes-models/istio/networking.istio.io/v1alpha3/WorkloadEntry";
import { Telemetry as TelV1 } from "@kubernetes-models/istio/telemetry.istio.io/v1/Telemetry";
import { Telemetry as TelV1alpha1 } from "@kubernetes-models/istio/telemetry.istio.io/v1alpha1/Telemetry";
import { GRPCRoute as GrpcV1 } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GRPCRoute";
import { Gateway as GwV1 } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway";
import { GatewayClass as GcV1 } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GatewayClass";
import { HTTPRoute as HttpV1 } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute";
import { Gateway as GwV1beta1 } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1beta1/Gateway";
import { GatewayClass as GcV1beta1 } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1beta1/GatewayClass";
import { HTTPRoute as HttpV1beta1 } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1beta1/HTTPRoute";
import { GRPCRoute as GrpcV1alpha2 } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/GRPCRoute";
import { TCPRoute as TcpV1alpha2 } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1alpha2/TCPRoute";
import { pointerToPath, type PathSegment } from "./field-path.ts";
import type { Kind } from "./kinds.ts";

/** A model class of the kubernetes-models packages: its prototype's validate() runs the schema. */
interface ModelClass {
  readonly prototype: object;
}

const models: Readonly<Record<Kind, Readonly<Record<string, ModelClass>>>> = {
  Namespace: { v1: Namespace },
  Pod: { v1: Pod },
  Deployment: { v1: Deployment },
  Service: { v1: Service },
  EndpointSlice: { v1: EndpointSlice },
  ServiceAccount: { v1: ServiceAccount },
  Node: { v1: Node },
  AuthorizationPolicy: { v1: secV1.AuthorizationPolicy, v1beta1: secV1beta1.AuthorizationPolicy },
  PeerAuthentication: { v1: secV1.PeerAuthentication, v1beta1: secV1beta1.PeerAuthentication },
  RequestAuthentication: {
    v1: secV1.RequestAuthentication,
    v1beta1: secV1beta1.RequestAuthentication,
  },
  ServiceEntry: { v1: SeV1, v1beta1: SeV1beta1, v1alpha3: SeV1alpha3 },
  WorkloadEntry: { v1: WeV1, v1beta1: WeV1beta1, v1alpha3: WeV1alpha3 },
  VirtualService: { v1: VsV1, v1beta1: VsV1beta1, v1alpha3: VsV1alpha3 },
  DestinationRule: { v1: DrV1, v1beta1: DrV1beta1, v1alpha3: DrV1alpha3 },
  Telemetry: { v1: TelV1, v1alpha1: TelV1alpha1 },
  Gateway: { v1: GwV1, v1beta1: GwV1beta1 },
  GatewayClass: { v1: GcV1, v1beta1: GcV1beta1 },
  HTTPRoute: { v1: HttpV1, v1beta1: HttpV1beta1 },
  GRPCRoute: { v1: GrpcV1, v1alpha2: GrpcV1alpha2 },
  TCPRoute: { v1alpha2: TcpV1alpha2 },
};

/** One thing wrong at one place in an object. */
export interface FieldIssue {
  readonly path: readonly PathSegment[];
  /** Point at the map key (unknown fields) or at the value. */
  readonly at: "key" | "value";
  readonly reason: string;
}

interface AjvError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

export interface SchemaOptions {
  /**
   * `reject` reports fields the schema does not declare (Kubernetes strict field validation);
   * `ignore` accepts them (objects read back from an API server that may be newer than us).
   */
  readonly unknownFields: "reject" | "ignore";
}

/**
 * Validates a whole object (apiVersion, kind, metadata, spec, ...) of a kind and version we serve.
 * Returns every problem found, in document order of discovery. `status` is checked against the
 * schema but never for unknown fields: it is written by controllers, and Istio's CRDs leave it open.
 */
export function validateSchema(
  kind: Kind,
  version: string,
  data: Readonly<Record<string, unknown>>,
  opts: SchemaOptions,
): FieldIssue[] {
  const model = models[kind][version];
  if (model === undefined) {
    return [{ path: ["apiVersion"], at: "value", reason: `no schema for ${kind} ${version}` }];
  }
  const seen = new Set<string>();
  // Tracking reads costs a Proxy per object; only strict validation needs it.
  const errors =
    opts.unknownFields === "reject"
      ? runValidator(model, track(data, "", seen, new WeakMap()))
      : runValidator(model, data);
  const issues: FieldIssue[] = [];
  const typeBroken: string[] = [];
  for (const e of collapse(errors)) {
    const issue = describe(e, data);
    if (issue !== undefined) issues.push(issue);
    if (e.keyword === "type") typeBroken.push(e.instancePath);
  }
  if (opts.unknownFields === "reject") {
    const unknown: PathSegment[][] = [];
    findUnknown(data, [], "", seen, unknown);
    for (const path of unknown) {
      const ptr = toPointer(path);
      // A value of the wrong type has already been reported; its insides are noise.
      if (typeBroken.some((p) => ptr === p || ptr.startsWith(p + "/"))) continue;
      issues.push({ path, at: "key", reason: `unknown field "${String(path.at(-1))}"` });
    }
  }
  return issues;
}

function runValidator(model: ModelClass, data: unknown): AjvError[] {
  // The model's validate() checks `this`; calling it on our tracked copy validates that.
  const validate = (model.prototype as { validate: (this: unknown) => void }).validate;
  try {
    validate.call(data);
    return [];
  } catch (err) {
    const errors = (err as { errors?: unknown }).errors;
    if (Array.isArray(errors)) return errors as AjvError[];
    throw err;
  }
}

const SEP = "\u0000";

/** Wraps `value` so reads of its keys (and enumeration of its keys) are recorded in `seen`. */
function track(value: unknown, at: string, seen: Set<string>, cache: WeakMap<object, unknown>) {
  if (value === null || typeof value !== "object") return value;
  const hit = cache.get(value);
  if (hit !== undefined) return hit;
  const proxy = new Proxy(value, {
    get(target, key, receiver) {
      const v: unknown = Reflect.get(target, key, receiver);
      if (typeof key !== "string") return v;
      seen.add(at + SEP + key);
      return track(v, at + SEP + key, seen, cache);
    },
    has(target, key) {
      if (typeof key === "string") seen.add(at + SEP + key);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      // Enumerated by the validator: a map whose keys are all acceptable.
      seen.add(at + SEP + "*");
      return Reflect.ownKeys(target);
    },
  });
  cache.set(value, proxy);
  return proxy;
}

function findUnknown(
  value: unknown,
  path: PathSegment[],
  at: string,
  seen: ReadonlySet<string>,
  out: PathSegment[][],
): void {
  if (value === null || typeof value !== "object") return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => findUnknown(v, [...path, i], at + SEP + String(i), seen, out));
    return;
  }
  const open = seen.has(at + SEP + "*");
  for (const [k, v] of Object.entries(value)) {
    if (path.length === 0 && k === "status") continue;
    const here = at + SEP + k;
    if (!open && !seen.has(here)) out.push([...path, k]);
    else findUnknown(v, [...path, k], here, seen, out);
  }
}

function toPointer(path: readonly PathSegment[]): string {
  return path.map((s) => "/" + String(s).replaceAll("~", "~0").replaceAll("/", "~1")).join("");
}

/**
 * Istio encodes protobuf `oneof` groups as `oneOf: [{not: {anyOf: [required...]}}, {required}...]`,
 * which fails with a `not` and a `oneOf` error at the same place; keep the `oneOf` one. Errors
 * from inside composite branches that were merged in are dropped for the same reason.
 */
function collapse(errors: readonly AjvError[]): AjvError[] {
  const composite = new Set(
    errors.filter((e) => e.keyword === "oneOf" || e.keyword === "anyOf").map((e) => e.instancePath),
  );
  const out: AjvError[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (composite.has(e.instancePath) && e.keyword !== "oneOf" && e.keyword !== "anyOf") {
      if (e.keyword === "not" || e.keyword === "required") continue;
    }
    const id = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(e);
  }
  return out;
}

function valueAt(data: unknown, path: readonly PathSegment[]): unknown {
  let cur: unknown = data;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a map";
  const s = JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}

const typeNames: Record<string, string> = {
  string: "a string",
  integer: "an integer",
  number: "a number",
  boolean: "a boolean (true or false)",
  array: "a list",
  object: "a map",
};

function describe(e: AjvError, data: unknown): FieldIssue | undefined {
  const path = pointerToPath(e.instancePath, data);
  const value = valueAt(data, path);
  const p = e.params;
  switch (e.keyword) {
    case "required": {
      const missing = String(p["missingProperty"]);
      return { path: [...path, missing], at: "value", reason: "required field is missing" };
    }
    case "enum": {
      const allowed = (p["allowedValues"] as unknown[]).map((v) => String(v)).join(", ");
      return { path, at: "value", reason: `must be one of ${allowed} (got ${show(value)})` };
    }
    case "type": {
      const types = String(p["type"])
        .split(",")
        .map((t) => typeNames[t] ?? t);
      return { path, at: "value", reason: `must be ${types.join(" or ")} (got ${show(value)})` };
    }
    case "maximum":
    case "minimum":
    case "exclusiveMaximum":
    case "exclusiveMinimum":
      return {
        path,
        at: "value",
        reason: `must be ${String(p["comparison"])} ${String(p["limit"])} (got ${show(value)})`,
      };
    case "maxLength":
      return {
        path,
        at: "value",
        reason: `must be at most ${String(p["limit"])} characters long`,
      };
    case "minLength":
      return {
        path,
        at: "value",
        reason: `must be at least ${String(p["limit"])} characters long`,
      };
    case "maxItems":
      return { path, at: "value", reason: `must have at most ${String(p["limit"])} items` };
    case "minItems":
      return { path, at: "value", reason: `must have at least ${String(p["limit"])} items` };
    case "maxProperties":
      return { path, at: "value", reason: `must have at most ${String(p["limit"])} entries` };
    case "minProperties":
      return { path, at: "value", reason: `must have at least ${String(p["limit"])} entries` };
    case "pattern":
      return {
        path,
        at: "value",
        reason: `must match /${String(p["pattern"])}/ (got ${show(value)})`,
      };
    case "format":
      return {
        path,
        at: "value",
        reason: `must be a valid ${String(p["format"])} (got ${show(value)})`,
      };
    case "uniqueItems":
      return { path, at: "value", reason: "must not contain duplicate items" };
    case "oneOf": {
      const passing = p["passingSchemas"];
      const set =
        value !== null && typeof value === "object" && !Array.isArray(value)
          ? Object.keys(value).join(", ")
          : "";
      if (Array.isArray(passing)) {
        return {
          path,
          at: "value",
          reason: `sets more than one of a group of mutually exclusive fields; set only one (fields set here: ${set})`,
        };
      }
      return { path, at: "value", reason: "does not match any of the allowed forms" };
    }
    case "anyOf":
      return { path, at: "value", reason: "does not match any of the allowed forms" };
    case "not":
      return { path, at: "value", reason: "is not allowed in this form" };
    default:
      return { path, at: "value", reason: e.message ?? `fails schema rule "${e.keyword}"` };
  }
}
