/**
 * ztunnel's static "local xDS" config (`LOCAL_XDS_PATH` / `LOCAL_XDS`): YAML listing workloads,
 * services and policies in ztunnel's camelCase shape. Entries are turned into the same protobuf
 * messages xDS delivers and go through the same conversion, so a local config is validated
 * exactly like pushed config. Every problem is reported at once, with its path; nothing is
 * applied unless everything is valid.
 *
 *   workloads:
 *   - uid: Kubernetes//Pod/ns/a        # required
 *     name: a
 *     namespace: ns
 *     workloadIps: [198.18.0.1]
 *     protocol: HBONE                   # or TCP
 *     serviceAccount: sa
 *     node: node-a
 *     waypoint: {destination: ns/wp.ns.svc.cluster.local, hboneMtlsPort: 15008}
 *     services: {ns/svc.ns.svc.cluster.local: {80: 8080}}
 *   services:
 *   - {name: svc, namespace: ns, hostname: svc.ns.svc.cluster.local, vips: [/198.18.10.1], ports: {80: 8080}}
 *   policies:
 *   - {name: p, namespace: ns, scope: Namespace, action: Deny, rules: [[[{notPrincipals: [{presence: {}}]}]]]}
 *
 * A gateway `destination` is `<network>/<ip>` or `<namespace>/<hostname>` (as ztunnel prints
 * them); a VIP is `<network>/<ip>` or `<network>/<ip>/<prefix>`; enum values are
 * case-insensitive (`HBONE`, `Healthy`, `FAILOVER`...).
 */
import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { parse as parseYaml } from "yaml";
import { fail, ok, type Result } from "../../lib/errors.ts";
import {
  AddressSchema,
  type Address as XdsAddress,
} from "../../lib/gen/istio/workload/workload_pb.ts";
import {
  AuthorizationSchema,
  type Authorization as XdsAuthorization,
} from "../../lib/gen/istio/security/authorization_pb.ts";
import { authorizationFromXds } from "../../lib/rbac/index.ts";
import { parseCidr, parseIp } from "../../lib/net/index.ts";
import { addressFromXds } from "./convert.ts";
import type { ProxyState } from "./proxy-state.ts";

type Obj = Record<string, unknown>;
type WorkloadInit = MessageInitShape<typeof AddressSchema>;
type AuthInit = MessageInitShape<typeof AuthorizationSchema>;

export interface LocalConfig {
  /** Address resources with the xDS names they would have (uid, `<ns>/<hostname>`). */
  readonly addresses: readonly { readonly name: string; readonly address: XdsAddress }[];
  readonly authorizations: readonly {
    readonly name: string;
    readonly authorization: XdsAuthorization;
  }[];
}

class Bad extends Error {}

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function str(o: Obj, k: string, path: string): string {
  const v = o[k];
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  throw new Bad(`${path}.${k}: expected a string`);
}

function num(o: Obj, k: string, path: string): number | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v === "number" && Number.isInteger(v) && v >= 0) return v;
  if (typeof v === "string" && /^[0-9]+$/.test(v)) return Number(v);
  throw new Bad(`${path}.${k}: expected a non-negative integer`);
}

function bool(o: Obj, k: string, path: string): boolean {
  const v = o[k];
  if (v === undefined || v === null) return false;
  if (typeof v === "boolean") return v;
  throw new Bad(`${path}.${k}: expected true or false`);
}

function list(o: Obj, k: string, path: string): unknown[] {
  const v = o[k];
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v as unknown[];
  throw new Bad(`${path}.${k}: expected a list`);
}

function obj(v: unknown, path: string): Obj {
  if (!isObj(v)) throw new Bad(`${path}: expected a mapping`);
  return v;
}

function strings(o: Obj, k: string, path: string): string[] {
  return list(o, k, path).map((v, i) => {
    if (typeof v !== "string") throw new Bad(`${path}.${k}[${i}]: expected a string`);
    return v;
  });
}

/** Case-insensitive enum lookup ignoring `_`: `HostNetwork` = `HOST_NETWORK`. */
function enumOf<T extends number>(o: Obj, k: string, path: string, names: readonly string[]): T {
  const v = o[k];
  if (v === undefined || v === null) return 0 as T;
  const norm = (s: string) => s.replaceAll("_", "").toLowerCase();
  const i = typeof v === "string" ? names.findIndex((n) => norm(n) === norm(v)) : -1;
  if (i === -1) throw new Bad(`${path}.${k}: expected one of ${names.join(", ")}`);
  return i as T;
}

function ipBytes(s: string, path: string): Uint8Array {
  const ip = parseIp(s);
  if (ip === undefined) throw new Bad(`${path}: "${s}" is not an IP address`);
  return ip.bytes;
}

/** `<network>/<ip>` (network may be empty) or a bare IP. */
function networkAddress(s: string, path: string) {
  const slash = s.lastIndexOf("/");
  const network = slash === -1 ? "" : s.slice(0, slash);
  return { network, address: ipBytes(slash === -1 ? s : s.slice(slash + 1), path) };
}

function gateway(v: unknown, path: string) {
  const o = obj(v, path);
  const hboneMtlsPort = num(o, "hboneMtlsPort", path) ?? 15008;
  const d = o["destination"];
  if (typeof d !== "string")
    throw new Bad(`${path}.destination: expected "<network>/<ip>" or "<namespace>/<hostname>"`);
  const slash = d.indexOf("/");
  const tail = slash === -1 ? d : d.slice(slash + 1);
  if (parseIp(tail) !== undefined) {
    return {
      destination: { case: "address" as const, value: networkAddress(d, `${path}.destination`) },
      hboneMtlsPort,
    };
  }
  if (slash === -1)
    throw new Bad(`${path}.destination: expected "<network>/<ip>" or "<namespace>/<hostname>"`);
  return {
    destination: {
      case: "hostname" as const,
      value: { namespace: d.slice(0, slash), hostname: tail },
    },
    hboneMtlsPort,
  };
}

function ports(v: unknown, path: string) {
  if (v === undefined || v === null) return [];
  const o = obj(v, path);
  return Object.entries(o).map(([sp, tp]) => {
    if (
      !/^[0-9]+$/.test(sp) ||
      (typeof tp !== "number" && !(typeof tp === "string" && /^[0-9]+$/.test(tp)))
    ) {
      throw new Bad(`${path}.${sp}: expected "<servicePort>: <targetPort>" numbers`);
    }
    return { servicePort: Number(sp), targetPort: Number(tp) };
  });
}

function workloadInit(o: Obj, path: string): WorkloadInit {
  const services: Record<string, { ports: { servicePort: number; targetPort: number }[] }> = {};
  const svcs = o["services"];
  if (svcs !== undefined && svcs !== null) {
    for (const [k, v] of Object.entries(obj(svcs, `${path}.services`))) {
      services[k] = { ports: ports(v, `${path}.services.${k}`) };
    }
  }
  const loc = o["locality"];
  const at = o["applicationTunnel"];
  const capacity = num(o, "capacity", path);
  return {
    type: {
      case: "workload",
      value: {
        uid: str(o, "uid", path),
        name: str(o, "name", path),
        namespace: str(o, "namespace", path),
        addresses: strings(o, "workloadIps", path).map((s, i) =>
          ipBytes(s, `${path}.workloadIps[${i}]`),
        ),
        hostname: str(o, "hostname", path),
        network: str(o, "network", path),
        tunnelProtocol: enumOf(o, "protocol", path, ["TCP", "HBONE", "LEGACY_ISTIO_MTLS"]),
        trustDomain: str(o, "trustDomain", path),
        serviceAccount: str(o, "serviceAccount", path),
        ...(o["waypoint"] == null ? {} : { waypoint: gateway(o["waypoint"], `${path}.waypoint`) }),
        ...(o["networkGateway"] == null
          ? {}
          : { networkGateway: gateway(o["networkGateway"], `${path}.networkGateway`) }),
        node: str(o, "node", path),
        canonicalName: str(o, "canonicalName", path),
        canonicalRevision: str(o, "canonicalRevision", path),
        workloadType: enumOf(o, "workloadType", path, ["deployment", "cronjob", "pod", "job"]),
        workloadName: str(o, "workloadName", path),
        nativeTunnel: bool(o, "nativeTunnel", path),
        ...(at == null
          ? {}
          : {
              applicationTunnel: {
                protocol: enumOf(
                  obj(at, `${path}.applicationTunnel`),
                  "protocol",
                  `${path}.applicationTunnel`,
                  ["NONE", "PROXY"],
                ),
                port:
                  num(obj(at, `${path}.applicationTunnel`), "port", `${path}.applicationTunnel`) ??
                  0,
              },
            }),
        services,
        authorizationPolicies: strings(o, "authorizationPolicies", path),
        status: enumOf(o, "status", path, ["HEALTHY", "UNHEALTHY"]),
        clusterId: str(o, "clusterId", path),
        ...(loc == null
          ? {}
          : {
              locality: {
                region: str(obj(loc, `${path}.locality`), "region", `${path}.locality`),
                zone: str(obj(loc, `${path}.locality`), "zone", `${path}.locality`),
                subzone: str(obj(loc, `${path}.locality`), "subzone", `${path}.locality`),
              },
            }),
        networkMode: enumOf(o, "networkMode", path, ["STANDARD", "HOST_NETWORK"]),
        ...(capacity === undefined ? {} : { capacity }),
      },
    },
  };
}

const scopeNames = ["UNSPECIFIED_SCOPE", "REGION", "ZONE", "SUBZONE", "NODE", "CLUSTER", "NETWORK"];

function serviceInit(o: Obj, path: string): WorkloadInit {
  const lb = o["loadBalancer"];
  let loadBalancing:
    { routingPreference: number[]; mode: number; healthPolicy: number } | undefined;
  if (lb != null) {
    const l = obj(lb, `${path}.loadBalancer`);
    const lp = `${path}.loadBalancer`;
    loadBalancing = {
      routingPreference: list(l, "routingPreferences", lp).map((v, i) =>
        enumOf({ v }, "v", `${lp}.routingPreferences[${i}]`, scopeNames),
      ),
      mode: enumOf(l, "mode", lp, ["STANDARD", "STRICT", "FAILOVER", "PASSTHROUGH"]),
      healthPolicy: enumOf(l, "healthPolicy", lp, ["ONLY_HEALTHY", "ALLOW_ALL"]),
    };
  }
  return {
    type: {
      case: "service",
      value: {
        name: str(o, "name", path),
        namespace: str(o, "namespace", path),
        hostname: str(o, "hostname", path),
        addresses: strings(o, "vips", path).map((s, i) => {
          // <network>/<ip>[/<prefix>]
          const parts = s.split("/");
          const vp = `${path}.vips[${i}]`;
          if (parts.length === 3) {
            const c = parseCidr(`${parts[1]}/${parts[2]}`);
            if (c === undefined) throw new Bad(`${vp}: "${s}" is not "<network>/<ip>/<prefix>"`);
            return {
              network: parts[0] as string,
              address: ipBytes(parts[1] as string, vp),
              length: Number(parts[2]),
            };
          }
          return networkAddress(s, vp);
        }),
        ports: ports(o["ports"], `${path}.ports`),
        subjectAltNames: strings(o, "subjectAltNames", path),
        ...(o["waypoint"] == null ? {} : { waypoint: gateway(o["waypoint"], `${path}.waypoint`) }),
        ...(loadBalancing === undefined ? {} : { loadBalancing }),
        ipFamilies: enumOf(o, "ipFamilies", path, ["AUTOMATIC", "IPV4_ONLY", "IPV6_ONLY", "DUAL"]),
        canonical: bool(o, "canonical", path),
        ingressUseWaypoint: bool(o, "ingressUseWaypoint", path),
        weightedWaypoints: list(o, "weightedWaypoints", path).map((v, i) => {
          const wp = `${path}.weightedWaypoints[${i}]`;
          const w = obj(v, wp);
          return { destination: gateway(w, wp), weight: num(w, "weight", wp) ?? 0 };
        }),
        visibility: enumOf(o, "visibility", path, ["PUBLIC", "NAMESPACE"]),
      },
    },
  } as WorkloadInit;
}

type StringMatchInit =
  | { matchType: { case: "exact" | "prefix" | "suffix"; value: string } }
  | { matchType: { case: "presence"; value: object } };

function stringMatch(v: unknown, path: string): StringMatchInit {
  const o = obj(v, path);
  const keys = Object.keys(o);
  const key = keys.length === 1 ? (keys[0] as string) : "";
  const k = key.toLowerCase();
  if (k === "presence") return { matchType: { case: "presence" as const, value: {} } };
  if (k === "exact" || k === "prefix" || k === "suffix") {
    return { matchType: { case: k, value: str(o, key, path) } };
  }
  throw new Bad(`${path}: expected one of {exact: s}, {prefix: s}, {suffix: s}, {presence: {}}`);
}

function addresses(m: Obj, k: string, path: string) {
  return strings(m, k, path).map((s, i) => {
    const c = parseCidr(s);
    if (c === undefined) throw new Bad(`${path}.${k}[${i}]: "${s}" is not an IP or CIDR`);
    return { address: c.bytes, length: c.prefixLength };
  });
}

function policyInit(o: Obj, path: string): AuthInit {
  const sms = (m: Obj, k: string, p: string) =>
    list(m, k, p).map((v, i) => stringMatch(v, `${p}.${k}[${i}]`));
  const sas = (m: Obj, k: string, p: string) =>
    list(m, k, p).map((v, i) => {
      const s = obj(v, `${p}.${k}[${i}]`);
      return { namespace: str(s, "namespace", p), serviceAccount: str(s, "serviceAccount", p) };
    });
  const portList = (m: Obj, k: string, p: string) =>
    list(m, k, p).map((v, i) => {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0)
        throw new Bad(`${p}.${k}[${i}]: expected a port number`);
      return v;
    });
  return {
    name: str(o, "name", path),
    namespace: str(o, "namespace", path),
    scope: enumOf(o, "scope", path, ["GLOBAL", "NAMESPACE", "WORKLOAD_SELECTOR"]),
    action: enumOf(o, "action", path, ["ALLOW", "DENY"]),
    dryRun: bool(o, "dryRun", path),
    rules: list(o, "rules", path).map((rule, r) => {
      const rp = `${path}.rules[${r}]`;
      if (!Array.isArray(rule)) throw new Bad(`${rp}: expected a list of clauses`);
      return {
        clauses: (rule as unknown[]).map((clause, c) => {
          const cp = `${rp}[${c}]`;
          if (!Array.isArray(clause)) throw new Bad(`${cp}: expected a list of matches`);
          return {
            matches: (clause as unknown[]).map((mv, i) => {
              const mp = `${cp}[${i}]`;
              const m = obj(mv, mp);
              return {
                namespaces: sms(m, "namespaces", mp),
                notNamespaces: sms(m, "notNamespaces", mp),
                principals: sms(m, "principals", mp),
                notPrincipals: sms(m, "notPrincipals", mp),
                sourceIps: addresses(m, "sourceIps", mp),
                notSourceIps: addresses(m, "notSourceIps", mp),
                destinationIps: addresses(m, "destinationIps", mp),
                notDestinationIps: addresses(m, "notDestinationIps", mp),
                destinationPorts: portList(m, "destinationPorts", mp),
                notDestinationPorts: portList(m, "notDestinationPorts", mp),
                serviceAccounts: sas(m, "serviceAccounts", mp),
                notServiceAccounts: sas(m, "notServiceAccounts", mp),
              };
            }),
          };
        }),
      };
    }),
  };
}

/** Parses and validates a local config; every problem is listed, each with its path. */
export function parseLocalConfig(text: string): Result<LocalConfig, string[]> {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    return fail([`not valid YAML: ${err instanceof Error ? err.message : String(err)}`]);
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isObj(doc))
    return fail(["the document must be a mapping with workloads, services, policies"]);
  const problems: string[] = [];
  const out: { name: string; address: XdsAddress }[] = [];
  const auths: { name: string; authorization: XdsAuthorization }[] = [];
  for (const k of Object.keys(doc)) {
    if (k !== "workloads" && k !== "services" && k !== "policies")
      problems.push(`${k}: unknown key (expected workloads, services, policies)`);
  }
  const each = (key: string, f: (o: Obj, path: string) => void) => {
    let items: unknown[];
    try {
      items = list(doc, key, "");
    } catch {
      problems.push(`${key}: expected a list`);
      return;
    }
    items.forEach((v, i) => {
      const path = `${key}[${i}]`;
      try {
        f(obj(v, path), path);
      } catch (err) {
        if (err instanceof Bad) problems.push(err.message.replace(/^\./, ""));
        else throw err;
      }
    });
  };
  const addAddress = (init: WorkloadInit, path: string) => {
    const address = create(AddressSchema, init);
    const c = addressFromXds(address);
    if (!c.ok) {
      problems.push(`${path}: ${c.reason}`);
      return;
    }
    const name =
      c.value.kind === "workload"
        ? c.value.workload.uid
        : `${c.value.service.namespace}/${c.value.service.hostname}`;
    out.push({ name, address });
  };
  each("workloads", (o, path) => addAddress(workloadInit(o, path), path));
  each("services", (o, path) => addAddress(serviceInit(o, path), path));
  each("policies", (o, path) => {
    const authorization = create(AuthorizationSchema, policyInit(o, path));
    const c = authorizationFromXds(authorization);
    if (!c.ok) problems.push(`${path}: ${c.reason}`);
    else auths.push({ name: `${authorization.namespace}/${authorization.name}`, authorization });
  });
  return problems.length > 0 ? fail(problems) : ok({ addresses: out, authorizations: auths });
}

/** Applies a parsed local config to `state` and commits the batch. */
export function applyLocalConfig(state: ProxyState, cfg: LocalConfig): void {
  for (const a of cfg.addresses) {
    const r = state.applyAddress(a.address);
    // parseLocalConfig validated every entry with the same conversion.
    if (!r.ok) throw new Error(`local config entry ${a.name} became invalid: ${r.reason}`);
  }
  for (const p of cfg.authorizations) {
    const r = state.applyAuthorization(p.name, p.authorization);
    if (!r.ok) throw new Error(`local config policy ${p.name} became invalid: ${r.reason}`);
  }
  state.commit();
}
