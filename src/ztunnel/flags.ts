/**
 * Command-line flags for `ambient ztunnel`. The environment stays the source of truth, as in
 * Istio: each flag only sets its variable (a flag wins over the same variable already in the
 * environment), then loadConfig reads the result.
 */
import { fail, ok, type Result } from "../lib/errors.ts";

export interface FlagSpec {
  readonly name: string;
  readonly env: string;
  /** Placeholder in help; "" for a boolean flag (`--fake-ca` sets `true`). */
  readonly value: string;
  readonly help: string;
}

export const ZTUNNEL_FLAGS: readonly FlagSpec[] = [
  {
    name: "xds-address",
    env: "XDS_ADDRESS",
    value: "URL",
    help: "control plane xDS; default https://localhost:15012 (istiod's service in Kubernetes); empty disables xDS",
  },
  {
    name: "xds-root-ca",
    env: "XDS_ROOT_CA",
    value: "FILE|PEM|SYSTEM",
    help: "roots to verify the control plane; default /var/run/secrets/istio/root-cert.pem",
  },
  {
    name: "alt-xds-hostname",
    env: "ALT_XDS_HOSTNAME",
    value: "NAME",
    help: "another name accepted in the control plane's certificate",
  },
  {
    name: "xds-on-demand",
    env: "XDS_ON_DEMAND",
    value: "BOOL",
    help: "fetch addresses on demand instead of all up front; default false",
  },
  {
    name: "ca-address",
    env: "CA_ADDRESS",
    value: "URL",
    help: "certificate authority; default the xDS address",
  },
  {
    name: "ca-root-ca",
    env: "CA_ROOT_CA",
    value: "FILE|PEM|SYSTEM",
    help: "roots to verify the CA; default /var/run/secrets/istio/root-cert.pem",
  },
  {
    name: "alt-ca-hostname",
    env: "ALT_CA_HOSTNAME",
    value: "NAME",
    help: "another name accepted in the CA's certificate",
  },
  {
    name: "auth-token",
    env: "AUTH_TOKEN",
    value: "FILE|TOKEN",
    help: "bearer token file (re-read per call) or literal; default /var/run/secrets/tokens/istio-token if present",
  },
  {
    name: "cluster-id",
    env: "CLUSTER_ID",
    value: "ID",
    help: "default Kubernetes (ISTIO_META_CLUSTER_ID wins)",
  },
  { name: "cluster-domain", env: "CLUSTER_DOMAIN", value: "DOMAIN", help: "default cluster.local" },
  {
    name: "trust-domain",
    env: "TRUST_DOMAIN",
    value: "DOMAIN",
    help: "for ztunnel's own identity and the fake CA; default cluster.local",
  },
  { name: "network", env: "NETWORK", value: "NAME", help: "this node's network; default empty" },
  {
    name: "node-name",
    env: "NODE_NAME",
    value: "NAME",
    help: "the node this ztunnel serves; unset = every workload is local",
  },
  {
    name: "pod-name",
    env: "POD_NAME",
    value: "NAME",
    help: "ztunnel's pod (xDS node id); default the host name",
  },
  { name: "pod-namespace", env: "POD_NAMESPACE", value: "NS", help: "default istio-system" },
  { name: "instance-ip", env: "INSTANCE_IP", value: "IP", help: "ztunnel's IP (xDS node id)" },
  {
    name: "service-account",
    env: "SERVICE_ACCOUNT",
    value: "SA",
    help: "ztunnel's service account",
  },
  {
    name: "proxy-mode",
    env: "PROXY_MODE",
    value: "shared|dedicated",
    help: "default shared (node proxy, in-pod)",
  },
  {
    name: "proxy-workload-info",
    env: "PROXY_WORKLOAD_INFO",
    value: "NS/NAME/SA",
    help: "the workload a dedicated proxy serves",
  },
  {
    name: "secret-ttl",
    env: "SECRET_TTL",
    value: "DURATION",
    help: "requested certificate lifetime; default 24h",
  },
  {
    name: "fake-ca",
    env: "FAKE_CA",
    value: "",
    help: "sign certificates locally (no CA); see --local-ca-dir",
  },
  {
    name: "local-ca-dir",
    env: "LOCAL_CA_DIR",
    value: "DIR",
    help: "the fake CA's files (created when missing); default in memory",
  },
  {
    name: "local-xds-path",
    env: "LOCAL_XDS_PATH",
    value: "FILE",
    help: "static workloads/services/policies YAML instead of xDS",
  },
  { name: "local-xds", env: "LOCAL_XDS", value: "YAML", help: "the same, inline" },
  {
    name: "inpod-uds",
    env: "INPOD_UDS",
    value: "PATH",
    help: "the node agent's ZDS socket; default /var/run/ztunnel/ztunnel.sock",
  },
  {
    name: "inpod-enabled",
    env: "INPOD_ENABLED",
    value: "BOOL",
    help: "shared mode: take pods from the node agent; default true",
  },
  {
    name: "inpod-port-reuse",
    env: "INPOD_PORT_REUSE",
    value: "BOOL",
    help: "SO_REUSEPORT on in-pod listeners; default true",
  },
  {
    name: "enable-orig-src",
    env: "ENABLE_ORIG_SRC",
    value: "BOOL",
    help: "require (true) or disable (false) original-source spoofing; default best effort",
  },
  {
    name: "enable-socks5",
    env: "UNSTABLE_ENABLE_SOCKS5",
    value: "BOOL",
    help: "SOCKS5 on 127.0.0.1:15080 in each pod; default false",
  },
  {
    name: "response-baggage",
    env: "ENABLE_RESPONSE_BAGGAGE",
    value: "BOOL",
    help: "baggage on inbound HBONE responses; default true",
  },
  {
    name: "termination-deadline",
    env: "CONNECTION_TERMINATION_DEADLINE",
    value: "DURATION",
    help: "drain deadline; default 5s or from TERMINATION_GRACE_PERIOD_SECONDS",
  },
  {
    name: "termination-grace-period",
    env: "TERMINATION_GRACE_PERIOD_SECONDS",
    value: "SECONDS",
    help: "the pod's grace period; the deadline is 5 s (short periods: 1 s) less",
  },
  {
    name: "pool-max-streams",
    env: "POOL_MAX_STREAMS_PER_CONNECTION",
    value: "N",
    help: "HBONE streams per pooled connection; default 100",
  },
  {
    name: "pool-unused-release-timeout",
    env: "POOL_UNUSED_RELEASE_TIMEOUT",
    value: "DURATION",
    help: "idle pooled connections released after; default 5m",
  },
  {
    name: "worker-threads",
    env: "ZTUNNEL_WORKER_THREADS",
    value: "N|N%",
    help: "data-path workers; default 2",
  },
  {
    name: "tls12",
    env: "TLS12_ENABLED",
    value: "BOOL",
    help: "also allow TLS 1.2 on HBONE; default false",
  },
  {
    name: "log-level",
    env: "RUST_LOG",
    value: "SPEC",
    help: "e.g. info,xds=debug,access=off; default info",
  },
  { name: "log-format", env: "LOG_FORMAT", value: "plain|json", help: "default plain" },
  {
    name: "admin-address",
    env: "ADMIN_ADDRESS",
    value: "HOST:PORT",
    help: "admin (config_dump, logging, quitquitquit); default 127.0.0.1:15000",
  },
  {
    name: "metrics-address",
    env: "METRICS_ADDRESS",
    value: "HOST:PORT",
    help: "Prometheus /metrics, /stats/prometheus; default 0.0.0.0:15020",
  },
  {
    name: "readiness-address",
    env: "READINESS_ADDRESS",
    value: "HOST:PORT",
    help: "/healthz/ready; default 0.0.0.0:15021",
  },
];

/** The flags table for `--help`, one per line, with the variable each sets. */
export function formatFlagsHelp(): string {
  const rows = ZTUNNEL_FLAGS.map((f) => {
    const left = `--${f.name}${f.value !== "" ? ` ${f.value}` : ""}`;
    return [left, `${f.help} [${f.env}]`] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length));
  return rows.map(([l, r]) => `  ${l.padEnd(width)}  ${r}`).join("\n");
}

/**
 * The environment variables the arguments set: `--name value`, `--name=value`, or a bare
 * `--fake-ca` for a boolean. Unknown flags and missing values are errors.
 */
export function envFromFlags(args: readonly string[]): Result<Record<string, string>> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("--")) return fail(`unexpected argument "${arg}" (flags start with --)`);
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const spec = ZTUNNEL_FLAGS.find((f) => f.name === name);
    if (spec === undefined) return fail(`unknown flag --${name}; see --help`);
    if (eq !== -1) {
      out[spec.env] = arg.slice(eq + 1);
    } else if (spec.value === "") {
      out[spec.env] = "true";
    } else {
      const next = args[i + 1];
      if (next === undefined) return fail(`--${name} needs a value (${spec.value})`);
      out[spec.env] = next;
      i++;
    }
  }
  return ok(out);
}
