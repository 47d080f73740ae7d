/**
 * Checks the API server (core kinds) and Istio's validation (CEL rules and its webhook) apply but
 * the OpenAPI schemas do not carry: port ranges, named-port syntax, fields that exclude each other.
 * Each check reads the object as data and returns issues; nothing here throws.
 */
import { isIP } from "node:net";
import type { PathSegment } from "./field-path.ts";
import type { Kind } from "./kinds.ts";
import { checkDns1123Label, checkPortName } from "./names.ts";
import type { FieldIssue } from "./schema.ts";

type Obj = Readonly<Record<string, unknown>>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * Calls `fn` for every value matching `pattern`: dot-separated keys, `[]` after a key iterates a
 * list, `{}` after a key iterates a map's values (its keys become path segments).
 */
export function visit(
  root: unknown,
  pattern: string,
  fn: (value: unknown, path: readonly PathSegment[]) => void,
): void {
  const steps = pattern.split(".");
  const walk = (v: unknown, i: number, path: PathSegment[]): void => {
    if (i === steps.length) {
      fn(v, path);
      return;
    }
    const step = steps[i]!;
    const iterList = step.endsWith("[]");
    const iterMap = step.endsWith("{}");
    const key = iterList || iterMap ? step.slice(0, -2) : step;
    if (!isObj(v) || !Object.hasOwn(v, key)) return;
    const child = v[key];
    const here = [...path, key];
    if (iterList) {
      if (Array.isArray(child)) child.forEach((c, j) => walk(c, i + 1, [...here, j]));
    } else if (iterMap) {
      if (isObj(child)) for (const [k, c] of Object.entries(child)) walk(c, i + 1, [...here, k]);
    } else {
      walk(child, i + 1, here);
    }
  };
  walk(root, 0, []);
}

function portIssue(v: unknown, path: readonly PathSegment[], allowZero = false): FieldIssue[] {
  if (typeof v !== "number" || !Number.isInteger(v)) return []; // the schema reports the type
  const min = allowZero ? 0 : 1;
  if (v < min || v > 65535) {
    return [
      { path, at: "value", reason: `must be a port number between ${min} and 65535 (got ${v})` },
    ];
  }
  return [];
}

function ports(root: unknown, pattern: string, out: FieldIssue[], allowZero = false): void {
  visit(root, pattern, (v, p) => out.push(...portIssue(v, p, allowZero)));
}

function intOrNamedPort(root: unknown, pattern: string, out: FieldIssue[]): void {
  visit(root, pattern, (v, p) => {
    if (typeof v === "number") out.push(...portIssue(v, p));
    else if (typeof v === "string") {
      if (/^\d+$/.test(v)) out.push(...portIssue(Number(v), p));
      else {
        const bad = checkPortName(v);
        if (bad !== undefined) out.push({ path: p, at: "value", reason: `named port ${bad}` });
      }
    }
  });
}

function stringPorts(root: unknown, pattern: string, out: FieldIssue[]): void {
  visit(root, pattern, (v, p) => {
    if (typeof v !== "string") return;
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!(n >= 1 && n <= 65535)) {
      out.push({
        path: p,
        at: "value",
        reason: `must be a port number between 1 and 65535 (got "${v}")`,
      });
    }
  });
}

function exclusive(spec: unknown, fields: readonly string[], out: FieldIssue[]): void {
  if (!isObj(spec)) return;
  const set = fields.filter((f) => spec[f] !== undefined && spec[f] !== null);
  if (set.length > 1) {
    out.push({
      path: ["spec", set[1]!],
      at: "key",
      reason: `only one of ${fields.join(", ")} may be set (found ${set.join(" and ")})`,
    });
  }
}

function podTemplate(root: unknown, prefix: string, out: FieldIssue[]): void {
  for (const c of ["containers", "initContainers"]) {
    ports(root, `${prefix}.${c}[].ports[].containerPort`, out);
    ports(root, `${prefix}.${c}[].ports[].hostPort`, out, true);
    visit(root, `${prefix}.${c}[].ports[].name`, (v, p) => {
      if (typeof v !== "string") return;
      const bad = checkPortName(v);
      if (bad !== undefined) out.push({ path: p, at: "value", reason: `port name ${bad}` });
    });
  }
}

function service(obj: Obj, out: FieldIssue[]): void {
  ports(obj, "spec.ports[].port", out);
  ports(obj, "spec.ports[].nodePort", out, true);
  intOrNamedPort(obj, "spec.ports[].targetPort", out);
  const list = isObj(obj["spec"]) ? obj["spec"]["ports"] : undefined;
  if (!Array.isArray(list)) return;
  const names = new Map<string, number>();
  list.forEach((p: unknown, i) => {
    if (!isObj(p)) return;
    const name = p["name"];
    if (name === undefined || name === "") {
      if (list.length > 1) {
        out.push({
          path: ["spec", "ports", i],
          at: "value",
          reason: "name is required when a Service has more than one port",
        });
      }
      return;
    }
    if (typeof name !== "string") return;
    const bad = checkDns1123Label(name);
    if (bad !== undefined)
      out.push({ path: ["spec", "ports", i, "name"], at: "value", reason: bad });
    const first = names.get(name);
    if (first !== undefined) {
      out.push({
        path: ["spec", "ports", i, "name"],
        at: "value",
        reason: `duplicate port name "${name}" (also spec.ports[${first}])`,
      });
    } else names.set(name, i);
  });
}

function endpointSlice(obj: Obj, out: FieldIssue[]): void {
  ports(obj, "ports[].port", out);
  const type = obj["addressType"];
  visit(obj, "endpoints[].addresses[]", (v, p) => {
    if (typeof v !== "string") return;
    if (type === "IPv4" && isIP(v) !== 4) {
      out.push({ path: p, at: "value", reason: `must be an IPv4 address (got "${v}")` });
    } else if (type === "IPv6" && isIP(v) !== 6) {
      out.push({ path: p, at: "value", reason: `must be an IPv6 address (got "${v}")` });
    }
  });
}

const selectorOrTarget = ["selector", "targetRef", "targetRefs"] as const;

function authorizationPolicy(obj: Obj, out: FieldIssue[]): void {
  stringPorts(obj, "spec.rules[].to[].operation.ports[]", out);
  stringPorts(obj, "spec.rules[].to[].operation.notPorts[]", out);
  exclusive(obj["spec"], selectorOrTarget, out);
  const spec = obj["spec"];
  if (!isObj(spec)) return;
  if (spec["action"] === "CUSTOM" && spec["provider"] === undefined) {
    out.push({ path: ["spec", "provider"], at: "value", reason: "required when action is CUSTOM" });
  }
  if (spec["provider"] !== undefined && spec["action"] !== "CUSTOM") {
    out.push({
      path: ["spec", "provider"],
      at: "key",
      reason: "may only be set when action is CUSTOM",
    });
  }
}

function peerAuthentication(obj: Obj, out: FieldIssue[]): void {
  const spec = obj["spec"];
  if (!isObj(spec) || !isObj(spec["portLevelMtls"])) return;
  for (const key of Object.keys(spec["portLevelMtls"])) {
    const n = /^\d+$/.test(key) ? Number(key) : NaN;
    if (!(n >= 1 && n <= 65535)) {
      out.push({
        path: ["spec", "portLevelMtls", key],
        at: "key",
        reason: `must be a port number between 1 and 65535 (got "${key}")`,
      });
    }
  }
  if (spec["selector"] === undefined) {
    out.push({
      path: ["spec", "portLevelMtls"],
      at: "key",
      reason: "portLevelMtls requires a workload selector",
    });
  }
}

function virtualService(obj: Obj, out: FieldIssue[]): void {
  for (const proto of ["http", "tcp", "tls"]) {
    ports(obj, `spec.${proto}[].route[].destination.port.number`, out);
    ports(obj, `spec.${proto}[].match[].port`, out);
  }
  ports(obj, "spec.http[].mirror.port.number", out);
  ports(obj, "spec.http[].mirrors[].destination.port.number", out);
}

function destinationRule(obj: Obj, out: FieldIssue[]): void {
  ports(obj, "spec.trafficPolicy.portLevelSettings[].port.number", out);
  ports(obj, "spec.subsets[].trafficPolicy.portLevelSettings[].port.number", out);
}

function serviceEntry(obj: Obj, out: FieldIssue[]): void {
  ports(obj, "spec.ports[].number", out);
  ports(obj, "spec.ports[].targetPort", out);
  ports(obj, "spec.endpoints[].ports{}", out);
  exclusive(obj["spec"], ["workloadSelector", "endpoints"], out);
}

/** Kind-specific checks beyond the schema. */
export function validateSemantics(kind: Kind, obj: Obj): FieldIssue[] {
  const out: FieldIssue[] = [];
  switch (kind) {
    case "Service":
      service(obj, out);
      break;
    case "Pod":
      podTemplate(obj, "spec", out);
      break;
    case "Deployment":
      podTemplate(obj, "spec.template.spec", out);
      break;
    case "EndpointSlice":
      endpointSlice(obj, out);
      break;
    case "AuthorizationPolicy":
      authorizationPolicy(obj, out);
      break;
    case "PeerAuthentication":
      peerAuthentication(obj, out);
      break;
    case "RequestAuthentication":
    case "Telemetry":
      exclusive(obj["spec"], selectorOrTarget, out);
      break;
    case "VirtualService":
      virtualService(obj, out);
      break;
    case "DestinationRule":
      destinationRule(obj, out);
      break;
    case "ServiceEntry":
      serviceEntry(obj, out);
      break;
    case "WorkloadEntry":
      ports(obj, "spec.ports{}", out);
      break;
    case "Namespace":
    case "ServiceAccount":
    case "Node":
    case "Gateway":
    case "GatewayClass":
    case "HTTPRoute":
    case "GRPCRoute":
    case "TCPRoute":
      break;
  }
  return out;
}
