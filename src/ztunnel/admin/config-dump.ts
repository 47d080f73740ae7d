/**
 * `/config_dump` (INTEROP §6.2): ztunnel's state as JSON with its camelCase layout —
 * `workloads`, `services`, `policies`, `stagedServices`, `staticConfig`, `version`, `config`,
 * `certificates`, `workloadState`. Pure: the admin server gathers the inputs and serialises the
 * result. Lists are sorted by key so two dumps of the same state are identical.
 */
import { formatCidr } from "../../lib/net/index.ts";
import type { Authorization, RbacMatch, StringMatch } from "../../lib/rbac/index.ts";
import type { CertificatesDump } from "../identity/index.ts";
import type { WorkloadStateEntry } from "../inpod/index.ts";
import type {
  Endpoint,
  GatewayAddress,
  PortMap,
  ProxyState,
  Service,
  Workload,
} from "../state/index.ts";
import { serviceKey } from "../state/index.ts";
import type { RootCertSource, TokenSource, ZtunnelConfig } from "../config.ts";
import { formatListenAddress } from "../env-values.ts";

export interface ConfigDumpInput {
  readonly state: ProxyState;
  readonly config: ZtunnelConfig;
  /** The local config document (static mode); `{}`-like default otherwise. */
  readonly staticConfig: unknown;
  readonly version: Readonly<Record<string, string>>;
  readonly certificates: readonly CertificatesDump[];
  /** In-pod mode's pods; omitted otherwise. */
  readonly workloadState?: Readonly<Record<string, WorkloadStateEntry>>;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json | undefined };

const byKey =
  <T>(key: (t: T) => string) =>
  (a: T, b: T) => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };

export function buildConfigDump(input: ConfigDumpInput): Record<string, unknown> {
  const { state } = input;
  const staged: Record<string, Json> = {};
  const stagedEntries = [...state.stagedServices()].sort(byKey(([k]) => k));
  for (const [key, eps] of stagedEntries) staged[key] = endpointsJson(eps);
  const dump: Record<string, unknown> = {
    workloads: [...state.workloads()].sort(byKey((w) => w.uid)).map(workloadJson),
    services: [...state.services()]
      .sort(byKey((s) => serviceKey(s)))
      .map((s) => serviceJson(s, state.endpoints(serviceKey(s)))),
    policies: [...state.policies()].sort(byKey(([k]) => k)).map(([, p]) => policyJson(p)),
    stagedServices: staged,
    staticConfig: input.staticConfig ?? { workloads: [], services: [], policies: [] },
    version: input.version,
    config: configJson(input.config),
    certificates: input.certificates,
  };
  if (input.workloadState !== undefined) dump["workloadState"] = input.workloadState;
  return dump;
}

function gatewayJson(g: GatewayAddress | undefined): Json | undefined {
  if (g === undefined) return undefined;
  const d = g.destination;
  return {
    destination:
      d.kind === "address"
        ? `${d.address.network}/${d.address.address}`
        : `${d.hostname.namespace}/${d.hostname.hostname}`,
    hboneMtlsPort: g.hboneMtlsPort,
  };
}

function portsJson(ports: PortMap): Json {
  const out: Record<string, Json> = {};
  for (const [k, v] of [...ports].sort((a, b) => a[0] - b[0])) out[String(k)] = v;
  return out;
}

export function workloadJson(w: Workload): Json {
  return {
    uid: w.uid,
    workloadIps: [...w.workloadIps],
    waypoint: gatewayJson(w.waypoint),
    networkGateway: gatewayJson(w.networkGateway),
    protocol: w.protocol,
    networkMode: w.networkMode,
    name: w.name,
    namespace: w.namespace,
    trustDomain: w.trustDomain,
    serviceAccount: w.serviceAccount,
    network: w.network,
    workloadName: w.workloadName,
    workloadType: w.workloadType,
    canonicalName: w.canonicalName,
    canonicalRevision: w.canonicalRevision,
    hostname: w.hostname === "" ? undefined : w.hostname,
    node: w.node,
    nativeTunnel: w.nativeTunnel,
    applicationTunnel:
      w.applicationTunnel === undefined
        ? undefined
        : {
            protocol: w.applicationTunnel.protocol,
            port: w.applicationTunnel.port ?? undefined,
          },
    authorizationPolicies: [...w.authorizationPolicies],
    status: w.status,
    clusterId: w.clusterId,
    locality:
      w.locality.region === "" && w.locality.zone === "" && w.locality.subzone === ""
        ? undefined
        : { region: w.locality.region, zone: w.locality.zone, subzone: w.locality.subzone },
    services: w.services.map((s) => serviceKey(s)),
    capacity: w.capacity,
  };
}

function endpointsJson(eps: ReadonlyMap<string, Endpoint>): Json {
  const out: Record<string, Json> = {};
  for (const [uid, ep] of [...eps].sort(byKey(([k]) => k))) {
    out[uid] = { workloadUid: ep.workloadUid, port: portsJson(ep.ports), status: ep.status };
  }
  return out;
}

export function serviceJson(s: Service, endpoints: ReadonlyMap<string, Endpoint>): Json {
  return {
    name: s.name,
    namespace: s.namespace,
    hostname: s.hostname,
    vips: s.vips.map((v) => {
      const full = v.family === 4 ? 32 : 128;
      const base = `${v.network}/${v.address}`;
      return v.prefixLength === full ? base : `${base}/${v.prefixLength}`;
    }),
    ports: portsJson(s.ports),
    endpoints: endpointsJson(endpoints),
    subjectAltNames: [...s.subjectAltNames],
    waypoint: gatewayJson(s.waypoint),
    weightedWaypoints:
      s.weightedWaypoints.length === 0
        ? undefined
        : s.weightedWaypoints.map((w) => ({
            destination: gatewayJson(w.destination) ?? null,
            weight: w.weight,
          })),
    loadBalancer:
      s.loadBalancing === undefined
        ? undefined
        : {
            routingPreferences: [...s.loadBalancing.routingPreference],
            mode: s.loadBalancing.mode,
            healthPolicy: s.loadBalancing.healthPolicy,
          },
    ipFamilies: s.ipFamilies,
    canonical: s.canonical,
    ingressUseWaypoint: s.ingressUseWaypoint,
    visibility: s.visibility,
  };
}

function stringMatchJson(m: StringMatch): Json {
  return m.kind === "presence" ? { presence: {} } : { [m.kind]: m.value };
}

function matchJson(m: RbacMatch): Json {
  const out: Record<string, Json> = {};
  const strings = (k: string, l: readonly StringMatch[]) => {
    if (l.length > 0) out[k] = l.map(stringMatchJson);
  };
  strings("namespaces", m.namespaces);
  strings("notNamespaces", m.notNamespaces);
  strings("principals", m.principals);
  strings("notPrincipals", m.notPrincipals);
  const cidrs = (k: string, l: RbacMatch["sourceIps"]) => {
    if (l.length > 0) out[k] = l.map(formatCidr);
  };
  cidrs("sourceIps", m.sourceIps);
  cidrs("notSourceIps", m.notSourceIps);
  cidrs("destinationIps", m.destinationIps);
  cidrs("notDestinationIps", m.notDestinationIps);
  if (m.destinationPorts.length > 0) out["destinationPorts"] = [...m.destinationPorts];
  if (m.notDestinationPorts.length > 0) out["notDestinationPorts"] = [...m.notDestinationPorts];
  const accounts = (k: string, l: RbacMatch["serviceAccounts"]) => {
    if (l.length > 0)
      out[k] = l.map((a) => ({ namespace: a.namespace, serviceAccount: a.serviceAccount }));
  };
  accounts("serviceAccounts", m.serviceAccounts);
  accounts("notServiceAccounts", m.notServiceAccounts);
  return out;
}

export function policyJson(p: Authorization): Json {
  return {
    name: p.name,
    namespace: p.namespace,
    scope: p.scope,
    action: p.action,
    dryRun: p.dryRun,
    rules: p.rules.map((rule) => rule.map((clause) => clause.map(matchJson))),
  };
}

function rootCertJson(r: RootCertSource): Json {
  return r.kind === "file" ? { file: r.path } : r.kind === "pem" ? { static: "(PEM)" } : "SYSTEM";
}

function tokenJson(t: TokenSource): Json {
  // Never the token itself.
  return t.kind === "file"
    ? { file: t.path }
    : t.kind === "static"
      ? { static: "(redacted)" }
      : "None";
}

/** The configuration as ztunnel dumps it: everything but secrets. */
export function configJson(c: ZtunnelConfig): Json {
  const p = c.proxy;
  return {
    proxyMode: c.proxyMode,
    proxyWorkloadInformation: c.proxyWorkloadInfo ? { ...c.proxyWorkloadInfo } : undefined,
    inpodEnabled: c.inpodEnabled,
    inpodUds: c.inpodUds,
    inpodPortReuse: p.inpodPortReuse,
    localNode: c.nodeName,
    podName: c.podName,
    podNamespace: c.podNamespace,
    instanceIp: c.instanceIp === "" ? undefined : c.instanceIp,
    ztunnelIdentity: c.ztunnelIdentity
      ? `spiffe://${c.ztunnelIdentity.trustDomain}/ns/${c.ztunnelIdentity.namespace}/sa/${c.ztunnelIdentity.serviceAccount}`
      : undefined,
    trustDomain: c.trustDomain,
    network: p.network,
    clusterId: c.clusterId,
    clusterDomain: c.clusterDomain,
    xdsAddress: c.xdsAddress,
    xdsRootCert: rootCertJson(c.xdsRootCert),
    altXdsHostname: c.altXdsHostname,
    xdsHeaders: Object.keys(c.xdsHeaders).sort(),
    xdsOnDemand: c.xdsOnDemand,
    localXdsConfig:
      c.localXds === undefined
        ? undefined
        : c.localXds.kind === "file"
          ? { file: c.localXds.path }
          : { static: "(inline)" },
    caAddress: c.caAddress,
    caRootCert: rootCertJson(c.caRootCert),
    altCaHostname: c.altCaHostname,
    caHeaders: Object.keys(c.caHeaders).sort(),
    fakeCa: c.fakeCa,
    localCaDir: c.localCaDir,
    secretTtl: `${c.secretTtlSeconds}s`,
    auth: tokenJson(c.auth),
    proxyMetadata: { ...c.proxyMetadata },
    numWorkerThreads: c.workerThreads,
    dnsProxy: p.dnsProxy,
    dnsProxyAddr: `${p.dnsProxyAddress.address}:${p.dnsProxyAddress.port}`,
    socks5: p.socks5,
    illegalPorts: [...p.illegalPorts].sort((a, b) => a - b),
    packetMark: p.packetMark,
    requireOriginalSource: p.originalSource,
    enableResponseBaggage: p.responseBaggage,
    tls12Enabled: p.tls12Enabled,
    poolMaxStreamsPerConn: p.poolMaxStreamsPerConnection,
    poolUnusedReleaseTimeout: `${p.poolUnusedReleaseTimeoutMs}ms`,
    selfTerminationDeadline: `${p.terminationDeadlineMs}ms`,
    logLevel: c.logLevel,
    logFormat: c.logFormat,
    adminAddr: formatListenAddress(c.adminAddress),
    statsAddr: formatListenAddress(c.metricsAddress),
    readinessAddr: formatListenAddress(c.readinessAddress),
  };
}
