/**
 * The control plane's settings: the one place that reads flags and environment variables. Istio's
 * env names where istiod has one (`CLUSTER_ID`, `TRUST_DOMAIN`, `CA_TRUSTED_NODE_ACCOUNTS`,
 * `MAX_WORKLOAD_CERT_TTL`, `DEFAULT_WORKLOAD_CERT_TTL`, `PILOT_AUTO_ALLOW_WAYPOINT_POLICY`,
 * `ROOT_CA_DIR`, `PILOT_DEBOUNCE_AFTER`, ...); a flag wins over its env variable. Every bad key is
 * reported at once in one error; the result is frozen.
 */
import { isAbsolute, join, resolve } from "node:path";
import { isIP } from "node:net";
import { AmbientError } from "../lib/errors.ts";
import { parseLevelSpec } from "../lib/log/index.ts";
import type { Format } from "../lib/log/index.ts";

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type ConfigSourceSetting =
  | { readonly type: "files"; readonly dir: string }
  | { readonly type: "kubernetes"; readonly kubeconfig: string | undefined };

export interface ControlPlaneConfig {
  readonly source: ConfigSourceSetting;
  /** xDS + CA, gRPC over TLS (istiod 15012). */
  readonly grpcAddress: HostPort;
  /** Metrics, readiness and debug over HTTP (istiod 15014). */
  readonly httpAddress: HostPort;
  /** CA files (self-signed mode), the token signing key. */
  readonly stateDir: string;
  /** Where per-node tokens are written (local authentication). */
  readonly credentialsDir: string;
  /** Istio's plug-in CA directory (`cacerts`); when it holds `ca-cert.pem` it is used. */
  readonly rootCaDir: string | undefined;
  /** Nodes to issue tokens for besides the Node objects in the config. */
  readonly extraNodes: readonly string[];
  /** How callers prove who they are: our own tokens, or Kubernetes TokenReview. */
  readonly authentication: "local" | "kubernetes";
  /** Audiences accepted on tokens (`TOKEN_AUDIENCES`). */
  readonly tokenAudiences: readonly string[];
  readonly clusterId: string;
  readonly trustDomain: string;
  readonly domainSuffix: string;
  readonly systemNamespace: string;
  readonly rootNamespace: string;
  readonly network: string;
  /** `<namespace>/<serviceaccount>` allowed to ask for other identities (ztunnel). */
  readonly trustedNodeAccounts: readonly string[];
  readonly defaultCertTtlSeconds: number;
  readonly maxCertTtlSeconds: number;
  readonly autoAllowWaypointPolicy: boolean;
  readonly enableServiceEntrySelectPods: boolean;
  readonly enableK8sSelectWorkloadEntries: boolean;
  readonly debounceMs: number;
  readonly debounceMaxMs: number;
  readonly logLevel: string;
  readonly logFormat: Format;
}

interface FlagSpec {
  readonly name: string;
  readonly env?: string;
  readonly value: string;
  readonly help: string;
  readonly repeat?: boolean;
  readonly boolean?: boolean;
}

/** Every flag, its env variable and default; `--help` prints this table. */
export const FLAGS: readonly FlagSpec[] = [
  { name: "config-dir", value: "DIR", help: "directory of YAML manifests (the default source)" },
  {
    name: "kubeconfig",
    value: "FILE",
    help: "read configuration from the Kubernetes API with this kubeconfig",
  },
  {
    name: "in-cluster",
    value: "",
    boolean: true,
    help: "read configuration from the Kubernetes API with the pod's service account",
  },
  {
    name: "grpc-address",
    value: "HOST:PORT",
    help: "xDS and CA (gRPC over TLS); default 0.0.0.0:15012",
  },
  {
    name: "http-address",
    value: "HOST:PORT",
    help: "metrics, /ready and /debug/*; default 0.0.0.0:15014",
  },
  {
    name: "state-dir",
    env: "AMBIENT_STATE_DIR",
    value: "DIR",
    help: "CA files and the token signing key; default /var/lib/ambient/control-plane",
  },
  {
    name: "credentials-dir",
    value: "DIR",
    help: "where <node>.token files are written; default <state-dir>/credentials",
  },
  {
    name: "node",
    value: "NAME",
    repeat: true,
    help: "also issue a token for this node; Node objects get one anyway",
  },
  {
    name: "root-ca-dir",
    env: "ROOT_CA_DIR",
    value: "DIR",
    help: "Istio plug-in CA files (cacerts); default: a self-signed CA in <state-dir>/ca",
  },
  {
    name: "authentication",
    value: "local|kubernetes",
    help: "token checks: our signed node tokens, or TokenReview; default follows the source",
  },
  { name: "cluster-id", env: "CLUSTER_ID", value: "ID", help: "default Kubernetes" },
  { name: "trust-domain", env: "TRUST_DOMAIN", value: "DOMAIN", help: "default cluster.local" },
  { name: "domain-suffix", env: "DOMAIN_SUFFIX", value: "SUFFIX", help: "default cluster.local" },
  {
    name: "system-namespace",
    env: "POD_NAMESPACE",
    value: "NS",
    help: "the control plane's namespace; default istio-system",
  },
  {
    name: "root-namespace",
    value: "NS",
    help: "mesh-wide policies live here; default the system namespace",
  },
  { name: "network", env: "NETWORK", value: "NAME", help: "default network; default empty" },
  {
    name: "trusted-node-accounts",
    env: "CA_TRUSTED_NODE_ACCOUNTS",
    value: "NS/SA,...",
    help: "who may ask for other identities; default istio-system/ztunnel",
  },
  {
    name: "token-audiences",
    env: "TOKEN_AUDIENCES",
    value: "AUD,...",
    help: "accepted token audiences; default istio-ca",
  },
  {
    name: "default-cert-ttl",
    env: "DEFAULT_WORKLOAD_CERT_TTL",
    value: "DURATION",
    help: "default 24h",
  },
  { name: "max-cert-ttl", env: "MAX_WORKLOAD_CERT_TTL", value: "DURATION", help: "default 2160h" },
  {
    name: "auto-allow-waypoint-policy",
    env: "PILOT_AUTO_ALLOW_WAYPOINT_POLICY",
    value: "BOOL",
    help: "implicit ALLOW-from-waypoint policies; default false",
  },
  {
    name: "serviceentry-select-pods",
    env: "PILOT_ENABLE_SERVICEENTRY_SELECT_PODS",
    value: "BOOL",
    help: "default true",
  },
  {
    name: "k8s-select-workload-entries",
    env: "PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES",
    value: "BOOL",
    help: "default true",
  },
  {
    name: "debounce-after",
    env: "PILOT_DEBOUNCE_AFTER",
    value: "DURATION",
    help: "quiet time before a push; default 100ms",
  },
  {
    name: "debounce-max",
    env: "PILOT_DEBOUNCE_MAX",
    value: "DURATION",
    help: "longest a change waits under steady churn; default 1s",
  },
  { name: "log-level", env: "LOG_LEVEL", value: "SPEC", help: "e.g. info,xds=debug; default info" },
  { name: "log-format", env: "LOG_FORMAT", value: "plain|json", help: "default plain" },
];

/** The flag table as `--help` shows it. */
export function flagHelp(): string {
  const rows = FLAGS.map((f) => {
    const left = `--${f.name}${f.value !== "" ? ` ${f.value}` : ""}`;
    const env = f.env !== undefined ? ` [${f.env}]` : "";
    return [left, `${f.help}${env}${f.repeat === true ? " (repeatable)" : ""}`] as const;
  });
  const width = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([l, r]) => `  ${l.padEnd(width)}  ${r}`).join("\n");
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** A Go duration (`24h`, `1h30m`, `100ms`) in milliseconds; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (s === "0") return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (m === null) return undefined;
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    pos = re.lastIndex;
  }
  return pos === 0 ? undefined : total;
}

function parseHostPort(text: string): HostPort | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  const host = m[1] ?? m[2] ?? "";
  return { host: host === "" ? "0.0.0.0" : host, port };
}

function parseBool(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (t === "true" || t === "1" || t === "yes") return true;
  if (t === "false" || t === "0" || t === "no") return false;
  return undefined;
}

const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Reads the settings from command-line arguments and the environment. Throws one AmbientError
 * (`CONFIG_INVALID`) naming every bad flag or variable.
 */
export function loadConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
  cwd: string = process.cwd(),
): ControlPlaneConfig {
  const problems: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) {
      problems.push(`unexpected argument "${arg}" (flags start with --)`);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = FLAGS.find((f) => f.name === name);
    if (spec === undefined) {
      problems.push(`unknown flag --${name}; run with --help for the list`);
      continue;
    }
    let value: string;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (spec.boolean === true) value = "true";
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith("--")) value = argv[++i]!;
    else {
      problems.push(`--${name} needs a value (${spec.value})`);
      continue;
    }
    const list = flags.get(name) ?? [];
    if (list.length > 0 && spec.repeat !== true) {
      problems.push(`--${name} given more than once`);
      continue;
    }
    list.push(value);
    flags.set(name, list);
  }

  /** The flag's value, else its env variable's, with where it came from for messages. */
  const raw = (name: string): { value: string; from: string } | undefined => {
    const f = flags.get(name)?.[0];
    if (f !== undefined) return { value: f, from: `--${name}` };
    const spec = FLAGS.find((s) => s.name === name);
    const e = spec?.env !== undefined ? env[spec.env] : undefined;
    if (e !== undefined && e !== "") return { value: e, from: spec!.env! };
    return undefined;
  };
  const str = (name: string, def: string): string => raw(name)?.value.trim() ?? def;
  const path = (name: string, def: string): string => {
    const v = str(name, def);
    return isAbsolute(v) ? v : resolve(cwd, v);
  };
  const bool = (name: string, def: boolean): boolean => {
    const r = raw(name);
    if (r === undefined) return def;
    const b = parseBool(r.value);
    if (b === undefined) problems.push(`${r.from}: "${r.value}" is not true or false`);
    return b ?? def;
  };
  const durationMs = (name: string, defMs: number, minMs: number): number => {
    const r = raw(name);
    if (r === undefined) return defMs;
    const d = parseDuration(r.value);
    if (d === undefined) {
      problems.push(`${r.from}: "${r.value}" is not a duration (e.g. 24h, 90m, 100ms)`);
      return defMs;
    }
    if (d < minMs) {
      problems.push(`${r.from}: ${r.value} is too short (at least ${minMs} ms)`);
      return defMs;
    }
    return d;
  };
  const address = (name: string, def: string): HostPort => {
    const r = raw(name);
    const hp = parseHostPort(r?.value ?? def);
    if (hp === undefined || (hp.host !== "localhost" && isIP(hp.host) === 0)) {
      problems.push(
        `--${name}: "${r?.value ?? def}" is not IP:PORT (e.g. 0.0.0.0:15012, [::1]:15012)`,
      );
      return parseHostPort(def)!;
    }
    return hp;
  };
  const list = (name: string, def: string): string[] =>
    str(name, def)
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
  const dnsName = (name: string, def: string): string => {
    const v = str(name, def);
    if (!NAME_RE.test(v)) problems.push(`${raw(name)?.from ?? name}: "${v}" is not a DNS label`);
    return v;
  };

  const kubeconfig = raw("kubeconfig");
  const inCluster = bool("in-cluster", false);
  const configDir = flags.get("config-dir")?.[0];
  if (configDir !== undefined && (inCluster || flags.has("kubeconfig"))) {
    problems.push("--config-dir cannot be combined with --kubeconfig or --in-cluster");
  }
  if (inCluster && flags.has("kubeconfig")) {
    problems.push("--in-cluster cannot be combined with --kubeconfig");
  }
  const kube = inCluster || flags.has("kubeconfig");
  const stateDir = path("state-dir", "/var/lib/ambient/control-plane");
  const source: ConfigSourceSetting = kube
    ? { type: "kubernetes", kubeconfig: inCluster ? undefined : kubeconfig?.value }
    : {
        type: "files",
        dir: configDir !== undefined ? resolve(cwd, configDir) : join(stateDir, "config"),
      };

  const authRaw = raw("authentication");
  let authentication: "local" | "kubernetes" = kube ? "kubernetes" : "local";
  if (authRaw !== undefined) {
    if (authRaw.value === "local" || authRaw.value === "kubernetes") authentication = authRaw.value;
    else problems.push(`--authentication: "${authRaw.value}" is not local or kubernetes`);
  }
  if (authentication === "kubernetes" && !kube) {
    problems.push(
      "--authentication kubernetes needs a Kubernetes source (--kubeconfig or --in-cluster)",
    );
  }

  const trustedNodeAccounts = list("trusted-node-accounts", "istio-system/ztunnel");
  for (const a of trustedNodeAccounts) {
    if (!/^[^/\s]+\/[^/\s]+$/.test(a)) {
      problems.push(`CA_TRUSTED_NODE_ACCOUNTS: "${a}" is not <namespace>/<serviceaccount>`);
    }
  }
  const extraNodes = flags.get("node") ?? [];
  for (const n of extraNodes) {
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(n))
      problems.push(`--node: "${n}" is not a node name`);
  }
  const trustDomain = str("trust-domain", "cluster.local");
  if (!/^[a-z0-9._-]+$/.test(trustDomain)) {
    problems.push(`trust domain "${trustDomain}" may hold only a-z, 0-9, ".", "-" and "_"`);
  }
  const logFormat = str("log-format", "plain");
  if (logFormat !== "plain" && logFormat !== "json") {
    problems.push(`log format "${logFormat}" is not plain or json`);
  }
  const systemNamespace = dnsName("system-namespace", "istio-system");
  const defaultTtl = durationMs("default-cert-ttl", 24 * 3_600_000, 60_000);
  const maxTtl = durationMs("max-cert-ttl", 90 * 24 * 3_600_000, 60_000);
  if (defaultTtl > maxTtl) {
    problems.push(
      "DEFAULT_WORKLOAD_CERT_TTL is longer than MAX_WORKLOAD_CERT_TTL; the default must fit under the cap",
    );
  }
  const rootCa = raw("root-ca-dir");
  const logLevel = str("log-level", "info");
  const levelSpec = parseLevelSpec(logLevel);
  if (!levelSpec.ok) problems.push(`log level: ${levelSpec.reason}`);

  const config: ControlPlaneConfig = {
    source,
    grpcAddress: address("grpc-address", "0.0.0.0:15012"),
    httpAddress: address("http-address", "0.0.0.0:15014"),
    stateDir,
    credentialsDir: path("credentials-dir", join(stateDir, "credentials")),
    rootCaDir: rootCa === undefined ? undefined : resolve(cwd, rootCa.value),
    extraNodes,
    authentication,
    tokenAudiences: list("token-audiences", "istio-ca"),
    clusterId: str("cluster-id", "Kubernetes"),
    trustDomain,
    domainSuffix: str("domain-suffix", "cluster.local"),
    systemNamespace,
    rootNamespace: dnsName("root-namespace", systemNamespace),
    network: str("network", ""),
    trustedNodeAccounts,
    defaultCertTtlSeconds: Math.floor(defaultTtl / 1000),
    maxCertTtlSeconds: Math.floor(maxTtl / 1000),
    autoAllowWaypointPolicy: bool("auto-allow-waypoint-policy", false),
    enableServiceEntrySelectPods: bool("serviceentry-select-pods", true),
    enableK8sSelectWorkloadEntries: bool("k8s-select-workload-entries", true),
    debounceMs: durationMs("debounce-after", 100, 0),
    debounceMaxMs: durationMs("debounce-max", 1000, 0),
    logLevel,
    logFormat: logFormat === "json" ? "json" : "plain",
  };
  if (problems.length > 0) {
    throw new AmbientError(
      "CONFIG_INVALID",
      `control plane configuration is invalid:\n  - ${problems.join("\n  - ")}`,
    );
  }
  return Object.freeze(config);
}
