/**
 * The node agent's configuration, read from the environment with istio-cni's names where it has
 * one (NODE_NAME, SYSTEM_NAMESPACE, ZTUNNEL_UDS_ADDRESS, CNI_AGENT_RUN_DIR, AMBIENT_DNS_CAPTURE,
 * AMBIENT_IPV6, ...). Every bad key is reported at once; the result is frozen. The CLI turns its
 * flags into these same names, so there is one validation path.
 */
import { isIPv4, isIPv6 } from "node:net";
import { join } from "node:path";
import { AmbientError } from "../lib/errors.ts";
import { parseLevelSpec, type Format, type LevelSpec } from "../lib/log/index.ts";
import { PROBE_SNAT_IPV4, PROBE_SNAT_IPV6 } from "./rules/index.ts";

export interface NodeAgentConfig {
  /** The node this agent serves: only pods scheduled here (spec.nodeName) are watched. */
  readonly nodeName: string;
  /** Where ztunnel runs; its pods are never enrolled. */
  readonly systemNamespace: string;
  /** Path of a kubeconfig; undefined: the default chain (KUBECONFIG, ~/.kube/config, in-cluster). */
  readonly kubeconfig: string | undefined;
  /** The ZDS socket ztunnel connects to. */
  readonly ztunnelSocket: string;
  /** istio-cni's run directory: the plugin-event socket and the state file live here by default. */
  readonly runDir: string;
  /** The unix socket the runtime (or CNI plugin) posts pod events to. */
  readonly pluginSocket: string;
  /** Where the pods' netns paths are kept across agent restarts. */
  readonly stateFile: string;
  readonly dnsCapture: boolean;
  readonly ipv6: boolean;
  /** Re-apply (diff) the rules of already-enrolled pods at start-up. */
  readonly reconcileRulesOnStartup: boolean;
  /** Keep the node's probe SNAT rules in step with the enrolled pods. */
  readonly hostProbeRules: boolean;
  /** The node's network namespace, where the probe SNAT rules go. */
  readonly hostNetns: string;
  readonly probeSnatIpv4: string;
  readonly probeSnatIpv6: string;
  /** Host the metrics and readiness servers bind to. */
  readonly monitoringHost: string;
  /** Prometheus `/metrics` port (istio-cni: 15014); 0 picks a free port. */
  readonly monitoringPort: number;
  /** `/readyz` and `/healthz` port (istio-cni: 8000); 0 picks a free port. */
  readonly readinessPort: number;
  /** Enrollments (rule applies, ZDS adds) running at once across pods. */
  readonly maxConcurrentEnrollments: number;
  /** How long a plugin ADD waits for its pod to show up in the watch. */
  readonly podLookupTimeoutMs: number;
  readonly logLevel: LevelSpec;
  readonly logFormat: Format;
}

export const DEFAULT_RUN_DIR = "/var/run/istio-cni";
export const PLUGIN_SOCKET_NAME = "pluginevent.sock";
export const STATE_FILE_NAME = "ambient-pods.json";
export const DEFAULT_ZTUNNEL_SOCKET = "/var/run/ztunnel/ztunnel.sock";

/** Go's strconv.ParseBool, which istio-cni's settings go through. */
function parseBool(v: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(v)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(v)) return false;
  return undefined;
}

/** Reads the configuration from `env`; throws one AmbientError naming every bad key. */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
): NodeAgentConfig {
  const problems: string[] = [];
  const get = (key: string): string | undefined => {
    const v = env[key];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  };
  const bool = (key: string, def: boolean): boolean => {
    const v = get(key);
    if (v === undefined) return def;
    const b = parseBool(v);
    if (b === undefined) problems.push(`${key}="${v}": expected true or false`);
    return b ?? def;
  };
  const int = (key: string, def: number, min: number, max: number): number => {
    const v = get(key);
    if (v === undefined) return def;
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) {
      problems.push(`${key}="${v}": expected a whole number from ${min} to ${max}`);
      return def;
    }
    return n;
  };
  const absPath = (key: string, def: string): string => {
    const v = get(key);
    if (v === undefined) return def;
    if (!v.startsWith("/")) problems.push(`${key}="${v}": expected an absolute path`);
    return v;
  };

  const nodeName = get("NODE_NAME") ?? "";
  if (nodeName === "") {
    problems.push("NODE_NAME: required (the name of the node this agent serves)");
  } else if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(nodeName)) {
    problems.push(`NODE_NAME="${nodeName}": not a valid Kubernetes node name`);
  }
  const runDir = absPath("CNI_AGENT_RUN_DIR", DEFAULT_RUN_DIR);
  const probeSnatIpv4 = get("HOST_PROBE_SNAT_IP") ?? PROBE_SNAT_IPV4;
  if (!isIPv4(probeSnatIpv4)) {
    problems.push(`HOST_PROBE_SNAT_IP="${probeSnatIpv4}": expected an IPv4 address`);
  }
  const probeSnatIpv6 = get("HOST_PROBE_SNAT_IPV6") ?? PROBE_SNAT_IPV6;
  if (!isIPv6(probeSnatIpv6)) {
    problems.push(`HOST_PROBE_SNAT_IPV6="${probeSnatIpv6}": expected an IPv6 address`);
  }
  let logLevel: LevelSpec = { defaultLevel: "info", scopes: new Map() };
  const level = get("LOG_LEVEL");
  if (level !== undefined) {
    const parsed = parseLevelSpec(level);
    if (parsed.ok) logLevel = parsed.value;
    else problems.push(`LOG_LEVEL="${level}": ${parsed.reason}`);
  }

  const config: NodeAgentConfig = {
    nodeName,
    systemNamespace: get("SYSTEM_NAMESPACE") ?? get("POD_NAMESPACE") ?? "istio-system",
    kubeconfig: get("KUBECONFIG"),
    ztunnelSocket: absPath("ZTUNNEL_UDS_ADDRESS", DEFAULT_ZTUNNEL_SOCKET),
    runDir,
    pluginSocket: absPath("CNI_EVENT_ADDRESS", join(runDir, PLUGIN_SOCKET_NAME)),
    stateFile: absPath("AMBIENT_STATE_FILE", join(runDir, STATE_FILE_NAME)),
    dnsCapture: bool("AMBIENT_DNS_CAPTURE", true),
    ipv6: bool("AMBIENT_IPV6", true),
    reconcileRulesOnStartup: bool("AMBIENT_RECONCILE_POD_RULES_ON_STARTUP", true),
    hostProbeRules: bool("AMBIENT_HOST_PROBE_RULES", true),
    hostNetns: absPath("HOST_NETNS_PATH", `/proc/${process.pid}/ns/net`),
    probeSnatIpv4,
    probeSnatIpv6,
    monitoringHost: get("MONITORING_HOST") ?? "0.0.0.0",
    monitoringPort: int("MONITORING_PORT", 15014, 0, 65535),
    readinessPort: int("READINESS_PORT", 8000, 0, 65535),
    maxConcurrentEnrollments: int("AMBIENT_MAX_CONCURRENT_ENROLLMENTS", 8, 1, 1024),
    podLookupTimeoutMs: int("AMBIENT_POD_LOOKUP_TIMEOUT_MS", 10_000, 0, 600_000),
    logLevel,
    logFormat: bool("LOG_AS_JSON", false) ? "json" : "plain",
  };
  if (problems.length > 0) {
    throw new AmbientError(
      "NODE_AGENT_CONFIG_INVALID",
      `the node agent's configuration is invalid:\n  - ${problems.join("\n  - ")}`,
    );
  }
  return Object.freeze(config);
}
