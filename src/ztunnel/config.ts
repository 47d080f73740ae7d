/**
 * ztunnel's configuration: the one place that reads the environment, with Istio's variable names
 * and defaults (istio/ztunnel `src/config.rs`). Every bad value is reported at once, in one error
 * naming each variable; the result is frozen, and `proxy` is the slice the data path gets in
 * `ProxyInputs`.
 *
 * Our additions (no Istio equivalent): `ADMIN_ADDRESS`, `METRICS_ADDRESS`, `READINESS_ADDRESS`
 * (ztunnel takes the ports from mesh config; tests need port 0), `LOCAL_CA_DIR` (where `FAKE_CA`
 * keeps its CA), `LOG_FORMAT`, and `INPOD_ENABLED=false` to run shared mode without a node agent.
 */
import { existsSync } from "node:fs";
import { availableParallelism, hostname } from "node:os";
import { isIP } from "node:net";
import type { JsonValue } from "@bufbuild/protobuf";
import { AmbientError, type Result } from "../lib/errors.ts";
import { makeIdentity, type Identity } from "../lib/identity/index.ts";
import { formatLevelSpec, parseLevelSpec } from "../lib/log/index.ts";
import type { Format, LevelSpec } from "../lib/log/index.ts";
import { parseXdsAddress, proxyMetadataFromEnv } from "../lib/xds/index.ts";
import { ZDS_DEFAULT_SOCKET_PATH } from "../lib/zds/index.ts";
import type { WorkloadInfo } from "../lib/zds/index.ts";
import { parseProxyBindAddress } from "./inpod/index.ts";
import type { ProxyConfig } from "./proxy/inputs.ts";
import {
  parseBool,
  parseDuration,
  parseInteger,
  parseListenAddress,
  type ListenAddress,
} from "./env-values.ts";

export type Env = Readonly<Record<string, string | undefined>>;

/** Where a root certificate bundle comes from (`XDS_ROOT_CA` / `CA_ROOT_CA`). */
export type RootCertSource =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "pem"; readonly pem: string }
  /** `SYSTEM`: the system's trusted roots. */
  | { readonly kind: "system" };

/** The bearer token for xDS and the CA (`AUTH_TOKEN`). */
export type TokenSource =
  /** Re-read on every connection and certificate request (projected tokens rotate). */
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "static"; readonly token: string }
  | { readonly kind: "none" };

/** ztunnel's static configuration instead of xDS (`LOCAL_XDS_PATH` / `LOCAL_XDS`). */
export type LocalXdsSource =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "inline"; readonly yaml: string };

export type ProxyMode = "shared" | "dedicated";

export interface ZtunnelConfig {
  /** The data path's slice (ProxyInputs.config). */
  readonly proxy: ProxyConfig;
  /** `PROXY_MODE`: `shared` (node proxy, in-pod) or `dedicated` (one workload). */
  readonly proxyMode: ProxyMode;
  /** `PROXY_WORKLOAD_INFO` (`namespace/name/service-account`), required in dedicated mode. */
  readonly proxyWorkloadInfo: WorkloadInfo | undefined;
  /** Shared mode: take pods from the node agent over ZDS (`INPOD_ENABLED`, default true). */
  readonly inpodEnabled: boolean;
  /** `INPOD_UDS`: the node agent's socket. */
  readonly inpodUds: string;
  /** `NODE_NAME`; undefined treats every workload as local. */
  readonly nodeName: string | undefined;
  /** `POD_NAME` (default the host name), `POD_NAMESPACE` (default `istio-system`). */
  readonly podName: string;
  readonly podNamespace: string;
  /** `INSTANCE_IP` ("" when unset; the node id then says 1.1.1.1, like ztunnel). */
  readonly instanceIp: string;
  /** ztunnel's own pod (POD_NAMESPACE + SERVICE_ACCOUNT + POD_NAME all set) and identity. */
  readonly ztunnelWorkload: WorkloadInfo | undefined;
  readonly ztunnelIdentity: Identity | undefined;
  /** `TRUST_DOMAIN` (default `cluster.local`). */
  readonly trustDomain: string;
  readonly clusterId: string;
  readonly clusterDomain: string;

  /** `XDS_ADDRESS` with a scheme; undefined when set empty (no xDS). */
  readonly xdsAddress: string | undefined;
  readonly xdsRootCert: RootCertSource;
  readonly altXdsHostname: string | undefined;
  /** `XDS_HEADER_<name>`. */
  readonly xdsHeaders: Readonly<Record<string, string>>;
  readonly xdsOnDemand: boolean;
  /** Static config; when set ztunnel does not connect to xDS. */
  readonly localXds: LocalXdsSource | undefined;

  /** `CA_ADDRESS` (default `XDS_ADDRESS`); undefined with `FAKE_CA` or when set empty. */
  readonly caAddress: string | undefined;
  readonly caRootCert: RootCertSource;
  readonly altCaHostname: string | undefined;
  /** `CA_HEADER_<name>`. */
  readonly caHeaders: Readonly<Record<string, string>>;
  /** `FAKE_CA`: certificates from a local CA, no network. */
  readonly fakeCa: boolean;
  /** `LOCAL_CA_DIR`: where the fake CA's root lives (created if missing); in memory when unset. */
  readonly localCaDir: string | undefined;
  /** `SECRET_TTL` in seconds (requested certificate lifetime). */
  readonly secretTtlSeconds: number;
  readonly auth: TokenSource;

  /** `ISTIO_META_<K>` (as `K`) and `ISTIO_METAJSON_<K>`, for the xDS node. */
  readonly proxyMetadata: Readonly<Record<string, string>>;
  readonly jsonMetadata: Readonly<Record<string, JsonValue>>;
  /** `ZTUNNEL_WORKER_THREADS` (a count or a percentage of `ZTUNNEL_CPU_LIMIT`/the CPUs). */
  readonly workerThreads: number;

  /** `RUST_LOG`-style spec, e.g. `info,xds=debug`. */
  readonly logLevel: string;
  readonly logSpec: LevelSpec;
  readonly logFormat: Format;

  readonly adminAddress: ListenAddress;
  readonly metricsAddress: ListenAddress;
  readonly readinessAddress: ListenAddress;
}

export interface LoadConfigOptions {
  /** Checks the default token file; default `fs.existsSync`. */
  readonly fileExists?: (path: string) => boolean;
  /** For `ZTUNNEL_WORKER_THREADS=<n>%` without `ZTUNNEL_CPU_LIMIT`; default the machine's. */
  readonly cpuCount?: number;
  /** Default POD_NAME; default the host name. */
  readonly hostname?: string;
  /** Values that win over `env` (the CLI's flags). */
  readonly overrides?: Env;
}

export const DEFAULT_ROOT_CERT_PATH = "/var/run/secrets/istio/root-cert.pem";
export const DEFAULT_TOKEN_PATH = "/var/run/secrets/tokens/istio-token";
export const DEFAULT_CLUSTER_ID = "Kubernetes";
export const DEFAULT_CLUSTER_DOMAIN = "cluster.local";
export const DEFAULT_TRUST_DOMAIN = "cluster.local";
export const DEFAULT_SECRET_TTL_SECONDS = 24 * 3600;
export const DEFAULT_TERMINATION_DEADLINE_MS = 5000;
export const DEFAULT_WORKER_THREADS = 2;
export const INPOD_PACKET_MARK = 1337;
export const SOCKS5_PORT = 15080;
export const DNS_PROXY_PORT = 15053;
const KUBERNETES_ISTIOD = "https://istiod.istio-system.svc:15012";
const LOCAL_ISTIOD = "https://localhost:15012";

const XDS_HEADER_PREFIX = "XDS_HEADER_";
const CA_HEADER_PREFIX = "CA_HEADER_";
// gRPC metadata keys: lower-cased by grpc-js; `-bin` keys would need binary values.
const headerName = /^[A-Za-z0-9_.-]+$/;
const headerValue = /^[\x20-\x7e]*$/;

/**
 * Reads ztunnel's configuration from `env` (default `process.env`). Throws `AmbientError`
 * (`ZTUNNEL_CONFIG_INVALID`) naming every bad variable.
 */
export function loadConfig(env: Env = process.env, options: LoadConfigOptions = {}): ZtunnelConfig {
  const r = parseConfig(env, options);
  if (!r.ok) {
    throw new AmbientError(
      "ZTUNNEL_CONFIG_INVALID",
      `invalid ztunnel configuration:\n  ${r.reason.join("\n  ")}`,
    );
  }
  return r.value;
}

/** loadConfig's work, with the problems as a value. */
export function parseConfig(
  env: Env,
  options: LoadConfigOptions = {},
): Result<ZtunnelConfig, string[]> {
  const problems: string[] = [];
  const fileExists = options.fileExists ?? existsSync;
  if (options.overrides !== undefined) env = { ...env, ...options.overrides };

  /** The variable's value; unset and (for most) empty mean "not given". */
  const raw = (name: string): string | undefined => env[name];
  const given = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v === "" ? undefined : v;
  };
  function typed<T>(name: string, parse: (s: string) => Result<T>, fallback: T): T {
    const v = given(name);
    if (v === undefined) return fallback;
    const r = parse(v);
    if (r.ok) return r.value;
    problems.push(`${name}: ${r.reason}`);
    return fallback;
  }
  const bool = (name: string, fallback: boolean) => typed(name, parseBool, fallback);
  const duration = (name: string, fallback: number) => typed(name, parseDuration, fallback);

  // --- identity of this ztunnel and its node
  const nodeName = given("NODE_NAME");
  const podName = given("POD_NAME") ?? options.hostname ?? hostname();
  const podNamespace = given("POD_NAMESPACE") ?? "istio-system";
  const instanceIp = given("INSTANCE_IP") ?? "";
  if (instanceIp !== "" && isIP(instanceIp) === 0) {
    problems.push(`INSTANCE_IP: "${instanceIp}" is not an IP address`);
  }
  const trustDomain = given("TRUST_DOMAIN") ?? DEFAULT_TRUST_DOMAIN;
  const serviceAccount = given("SERVICE_ACCOUNT");
  const ztunnelWorkload =
    given("POD_NAMESPACE") !== undefined &&
    serviceAccount !== undefined &&
    given("POD_NAME") !== undefined
      ? { name: podName, namespace: podNamespace, serviceAccount }
      : undefined;
  let ztunnelIdentity: Identity | undefined;
  if (ztunnelWorkload !== undefined) {
    const id = makeIdentity(trustDomain, ztunnelWorkload.namespace, ztunnelWorkload.serviceAccount);
    if (id.ok) ztunnelIdentity = id.value;
    else problems.push(`TRUST_DOMAIN, POD_NAMESPACE, SERVICE_ACCOUNT: ${id.reason}`);
  }

  const metadata = proxyMetadataFromEnv(env);
  if (!metadata.ok) problems.push(...metadata.reason);
  // The string metadata is checked below (DNS_CAPTURE, ...) even when a JSON value is bad.
  const stringsOnly = metadata.ok
    ? metadata
    : proxyMetadataFromEnv(
        Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith("ISTIO_METAJSON_"))),
      );
  const proxyMetadata = stringsOnly.ok ? stringsOnly.value.metadata : {};
  const jsonMetadata = metadata.ok ? metadata.value.jsonMetadata : {};

  const clusterId = given("ISTIO_META_CLUSTER_ID") ?? given("CLUSTER_ID") ?? DEFAULT_CLUSTER_ID;
  const clusterDomain = given("CLUSTER_DOMAIN") ?? DEFAULT_CLUSTER_DOMAIN;
  const network = given("NETWORK") ?? "";

  // --- proxy mode
  let proxyMode: ProxyMode = "shared";
  const mode = given("PROXY_MODE");
  if (mode !== undefined) {
    if (mode === "shared" || mode === "dedicated") proxyMode = mode;
    else problems.push(`PROXY_MODE: "${mode}" must be one of dedicated, shared`);
  }
  let proxyWorkloadInfo: WorkloadInfo | undefined;
  const pwi = given("PROXY_WORKLOAD_INFO");
  if (pwi !== undefined) {
    const parts = pwi.split("/");
    if (parts.length !== 3 || parts.some((p) => p === "")) {
      problems.push(
        `PROXY_WORKLOAD_INFO: "${pwi}" must be namespace/name/service-account (three non-empty parts)`,
      );
    } else {
      proxyWorkloadInfo = { namespace: parts[0]!, name: parts[1]!, serviceAccount: parts[2]! };
    }
  }
  if (proxyMode === "dedicated" && pwi === undefined) {
    problems.push("PROXY_WORKLOAD_INFO: PROXY_MODE=dedicated requires it (namespace/name/sa)");
  }
  const inpodEnabled = proxyMode === "shared" && bool("INPOD_ENABLED", true);
  const inpodUds = given("INPOD_UDS") ?? ZDS_DEFAULT_SOCKET_PATH;

  // --- xDS
  const defaultIstiod =
    given("KUBERNETES_SERVICE_HOST") !== undefined ? KUBERNETES_ISTIOD : LOCAL_ISTIOD;
  const controlPlaneAddress = (name: string, fallback: string): string | undefined => {
    const v = raw(name);
    if (v === "") return undefined; // set empty: not used
    const text = v ?? fallback;
    const parsed = parseXdsAddress(text);
    if (!parsed.ok) {
      problems.push(`${name}: "${text}" is not [https://|http://]host:port`);
      return undefined;
    }
    return /^[a-z]+:\/\//.test(text.trim()) ? text.trim() : `https://${text.trim()}`;
  };
  const xdsAddress = controlPlaneAddress("XDS_ADDRESS", defaultIstiod);
  const rootCert = (name: string): RootCertSource => {
    const v = given(name) ?? DEFAULT_ROOT_CERT_PATH;
    if (v === "SYSTEM") return { kind: "system" };
    if (v.includes("-----BEGIN")) return { kind: "pem", pem: v };
    return { kind: "file", path: v };
  };
  const xdsRootCert = rootCert("XDS_ROOT_CA");
  const headers = (prefix: string): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(env)) {
      if (!key.startsWith(prefix) || value === undefined) continue;
      const name = key.slice(prefix.length);
      if (!headerName.test(name)) {
        problems.push(`${key}: "${name}" is not a valid header name`);
      } else if (!headerValue.test(value)) {
        problems.push(`${key}: the value must be printable ASCII`);
      } else {
        out[name.toLowerCase()] = value;
      }
    }
    return out;
  };
  const xdsHeaders = headers(XDS_HEADER_PREFIX);
  const xdsOnDemand = bool("XDS_ON_DEMAND", false);

  let localXds: LocalXdsSource | undefined;
  const localPath = given("LOCAL_XDS_PATH");
  const localInline = given("LOCAL_XDS");
  if (localPath !== undefined && localInline !== undefined) {
    problems.push("LOCAL_XDS_PATH, LOCAL_XDS: only one of them may be set");
  } else if (localPath !== undefined) {
    localXds = { kind: "file", path: localPath };
  } else if (localInline !== undefined) {
    localXds = { kind: "inline", yaml: localInline };
  }

  // --- CA and identity
  const fakeCa = bool("FAKE_CA", false);
  const caAddress = fakeCa
    ? undefined
    : controlPlaneAddress("CA_ADDRESS", xdsAddress ?? defaultIstiod);
  const caRootCert = rootCert("CA_ROOT_CA");
  const caHeaders = headers(CA_HEADER_PREFIX);
  const localCaDir = given("LOCAL_CA_DIR");
  const secretTtlMs = duration("SECRET_TTL", DEFAULT_SECRET_TTL_SECONDS * 1000);
  if (secretTtlMs < 1000) problems.push("SECRET_TTL: must be at least 1s");
  const secretTtlSeconds = Math.max(1, Math.round(secretTtlMs / 1000));

  let auth: TokenSource;
  const token = raw("AUTH_TOKEN");
  if (token === undefined) {
    auth = fileExists(DEFAULT_TOKEN_PATH)
      ? { kind: "file", path: DEFAULT_TOKEN_PATH }
      : { kind: "none" };
  } else if (token === "") {
    auth = { kind: "none" };
  } else if (token.startsWith("/") || token.startsWith("./") || fileExists(token)) {
    auth = { kind: "file", path: token };
  } else {
    auth = { kind: "static", token };
  }

  // --- data path
  const socks5 = bool("UNSTABLE_ENABLE_SOCKS5", false);
  const illegalPorts = new Set([15001, 15006, 15008]);
  if (socks5) illegalPorts.add(SOCKS5_PORT);
  const dnsCapture = proxyMetadata["DNS_CAPTURE"];
  const dnsProxy = dnsCapture === undefined || dnsCapture.toLowerCase() === "true";
  let dnsProxyAddress = { address: "localhost", port: DNS_PROXY_PORT };
  const dnsAddr = proxyMetadata["DNS_PROXY_ADDR"];
  if (dnsAddr !== undefined) {
    const r = parseProxyBindAddress(dnsAddr);
    if (!r.ok) problems.push(`ISTIO_META_DNS_PROXY_ADDR: ${r.reason}`);
    else
      dnsProxyAddress =
        r.value.kind === "localhost"
          ? { address: "localhost", port: r.value.port }
          : { address: r.value.address, port: r.value.port };
  }
  if (dnsProxy && xdsOnDemand) {
    problems.push(
      "XDS_ON_DEMAND: the DNS proxy does not support on-demand mode (set ISTIO_META_DNS_CAPTURE=false or XDS_ON_DEMAND=false)",
    );
  }
  let originalSource: ProxyConfig["originalSource"] = "try";
  const origSrc = given("ENABLE_ORIG_SRC");
  if (origSrc !== undefined) {
    const r = parseBool(origSrc);
    if (!r.ok) problems.push(`ENABLE_ORIG_SRC: ${r.reason}`);
    else originalSource = r.value ? "require" : "off";
  }

  let terminationDeadlineMs = DEFAULT_TERMINATION_DEADLINE_MS;
  if (given("CONNECTION_TERMINATION_DEADLINE") !== undefined) {
    terminationDeadlineMs = duration("CONNECTION_TERMINATION_DEADLINE", terminationDeadlineMs);
  } else if (given("TERMINATION_GRACE_PERIOD_SECONDS") !== undefined) {
    const secs = typed(
      "TERMINATION_GRACE_PERIOD_SECONDS",
      (s) => parseInteger(s, 0, 1_000_000),
      -1,
    );
    // Leave Kubernetes' SIGKILL some room: 5 s off long grace periods, 1 s off short ones.
    if (secs >= 0) terminationDeadlineMs = Math.max(secs > 10 ? secs - 5 : secs - 1, 1) * 1000;
  }

  const packetMark = typed("PACKET_MARK", (s) => parseInteger(s, 0, 0xffffffff), INPOD_PACKET_MARK);
  const proxy: ProxyConfig = {
    network,
    clusterId,
    nodeName: nodeName ?? "",
    clusterDomain,
    illegalPorts,
    hbonePort: 15008,
    packetMark,
    inpodPortReuse: bool("INPOD_PORT_REUSE", true),
    originalSource,
    socks5,
    dnsProxy,
    dnsProxyAddress,
    responseBaggage: bool("ENABLE_RESPONSE_BAGGAGE", true),
    sourceWaitMs: 5000,
    terminationDeadlineMs,
    poolMaxStreamsPerConnection: typed(
      "POOL_MAX_STREAMS_PER_CONNECTION",
      (s) => parseInteger(s, 1, 65535),
      100,
    ),
    poolUnusedReleaseTimeoutMs: duration("POOL_UNUSED_RELEASE_TIMEOUT", 5 * 60_000),
    connectTimeoutMs: 10_000,
    tls12Enabled: bool("TLS12_ENABLED", false),
  };

  // --- process
  const cpuLimit = typed("ZTUNNEL_CPU_LIMIT", (s) => parseInteger(s, 1, 4096), 0);
  const workerThreads = typed(
    "ZTUNNEL_WORKER_THREADS",
    (s) =>
      parseWorkerThreads(s, cpuLimit > 0 ? cpuLimit : (options.cpuCount ?? availableParallelism())),
    DEFAULT_WORKER_THREADS,
  );

  const logLevel = given("RUST_LOG") ?? "info";
  const spec = parseLevelSpec(logLevel);
  if (!spec.ok) problems.push(`RUST_LOG: ${spec.reason}`);
  let logFormat: Format = "plain";
  const format = given("LOG_FORMAT");
  if (format !== undefined) {
    if (format === "plain" || format === "json") logFormat = format;
    else problems.push(`LOG_FORMAT: "${format}" must be plain or json`);
  }

  const listen = (name: string, fallback: ListenAddress) =>
    typed(name, parseListenAddress, fallback);
  const adminAddress = listen("ADMIN_ADDRESS", { host: "127.0.0.1", port: 15000 });
  const metricsAddress = listen("METRICS_ADDRESS", { host: "0.0.0.0", port: 15020 });
  const readinessAddress = listen("READINESS_ADDRESS", { host: "0.0.0.0", port: 15021 });

  if (problems.length > 0) return { ok: false, reason: problems };
  const logSpec = spec.ok ? spec.value : { defaultLevel: "info" as const, scopes: new Map() };
  return {
    ok: true,
    value: deepFreeze({
      proxy,
      proxyMode,
      proxyWorkloadInfo,
      inpodEnabled,
      inpodUds,
      nodeName,
      podName,
      podNamespace,
      instanceIp,
      ztunnelWorkload,
      ztunnelIdentity,
      trustDomain,
      clusterId,
      clusterDomain,
      xdsAddress: localXds === undefined ? xdsAddress : undefined,
      xdsRootCert,
      altXdsHostname: given("ALT_XDS_HOSTNAME"),
      xdsHeaders,
      xdsOnDemand,
      localXds,
      caAddress,
      caRootCert,
      altCaHostname: given("ALT_CA_HOSTNAME"),
      caHeaders,
      fakeCa,
      localCaDir,
      secretTtlSeconds,
      auth,
      proxyMetadata,
      jsonMetadata,
      workerThreads,
      logLevel: formatLevelSpec(logSpec),
      logSpec,
      logFormat,
      adminAddress,
      metricsAddress,
      readinessAddress,
    }),
  };
}

/** A count, or `<n>%` of the CPUs (rounded up, at least 1). */
function parseWorkerThreads(text: string, cpus: number): Result<number> {
  const t = text.trim();
  if (t.endsWith("%")) {
    const pct = Number(t.slice(0, -1));
    if (!Number.isFinite(pct) || pct <= 0 || pct > 100) {
      return { ok: false, reason: `"${text}": a percentage must be in (0, 100]` };
    }
    return { ok: true, value: Math.max(1, Math.ceil((cpus * pct) / 100)) };
  }
  return parseInteger(t, 1, 1024);
}

/** Freezes plain objects, arrays, Sets and Maps all the way down. */
function deepFreeze<T>(value: T): T {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return value;
  if (value instanceof Set) {
    const frozen = new FrozenSet(value);
    return frozen as T;
  }
  if (value instanceof Map) {
    for (const v of value.values()) deepFreeze(v);
    return Object.freeze(value);
  }
  for (const k of Object.keys(value)) {
    const obj = value as Record<string, unknown>;
    obj[k] = deepFreeze(obj[k]);
  }
  return Object.freeze(value);
}

/** A Set whose mutators throw (Object.freeze does not stop Set.add). */
class FrozenSet<T> extends Set<T> {
  #ready = false;
  constructor(values: Iterable<T>) {
    super();
    for (const v of values) super.add(v);
    this.#ready = true;
    Object.freeze(this);
  }
  override add(value: T): this {
    if (this.#ready) throw new TypeError("the configuration is frozen");
    return super.add(value);
  }
  override delete(): boolean {
    throw new TypeError("the configuration is frozen");
  }
  override clear(): void {
    throw new TypeError("the configuration is frozen");
  }
}
