/**
 * `ambient node-agent` — runs the node agent (istio-cni's ambient role) for one node until
 * SIGTERM/SIGINT. Flags override the environment variables of the same meaning (Istio's names
 * where Istio has one). The agent is loaded only when the command runs, so other commands do not
 * pay for its imports.
 */
import { parseArgs } from "node:util";
import type { Command } from "../command.ts";

/** Each flag: the environment variable it sets, and what it means. */
const FLAGS: Readonly<Record<string, readonly [env: string, help: string]>> = {
  "node-name": ["NODE_NAME", "this node's name (required)"],
  "system-namespace": [
    "SYSTEM_NAMESPACE",
    "Istio's namespace (default POD_NAMESPACE, else istio-system)",
  ],
  kubeconfig: ["KUBECONFIG", "kubeconfig path (default ~/.kube/config, then in-cluster)"],
  "ztunnel-socket": ["ZTUNNEL_UDS_ADDRESS", "ZDS socket (default /var/run/ztunnel/ztunnel.sock)"],
  "run-dir": ["CNI_AGENT_RUN_DIR", "run directory (default /var/run/istio-cni)"],
  "plugin-socket": [
    "CNI_EVENT_ADDRESS",
    "plugin-event socket (default <run dir>/pluginevent.sock)",
  ],
  "state-file": ["AMBIENT_STATE_FILE", "pods' netns paths (default <run dir>/ambient-pods.json)"],
  "dns-capture": ["AMBIENT_DNS_CAPTURE", "redirect pods' DNS to ztunnel (default true)"],
  ipv6: ["AMBIENT_IPV6", "IPv6 rules too (default true)"],
  "reconcile-on-startup": [
    "AMBIENT_RECONCILE_POD_RULES_ON_STARTUP",
    "re-apply enrolled pods' rules at start (default true)",
  ],
  "host-probe-rules": ["AMBIENT_HOST_PROBE_RULES", "node probe SNAT rules (default true)"],
  "host-netns": ["HOST_NETNS_PATH", "the node's network namespace (default this process's)"],
  "probe-snat-ip": ["HOST_PROBE_SNAT_IP", "probe SNAT address (default 169.254.7.127)"],
  "probe-snat-ipv6": ["HOST_PROBE_SNAT_IPV6", "IPv6 probe SNAT address"],
  "monitoring-host": ["MONITORING_HOST", "bind address of metrics and readiness (default 0.0.0.0)"],
  "monitoring-port": ["MONITORING_PORT", "/metrics port (default 15014; 0: any free port)"],
  "readiness-port": ["READINESS_PORT", "/readyz and /healthz port (default 8000; 0: any)"],
  "max-concurrent": ["AMBIENT_MAX_CONCURRENT_ENROLLMENTS", "pods enrolled at once (default 8)"],
  "pod-lookup-timeout-ms": [
    "AMBIENT_POD_LOOKUP_TIMEOUT_MS",
    "how long an ADD waits for its pod in the watch (default 10000)",
  ],
  "log-level": ["LOG_LEVEL", "e.g. info or info,zds=debug (default info)"],
  "log-as-json": ["LOG_AS_JSON", "JSON log lines (default false)"],
};

const usage = [
  "ambient node-agent [--flag=value ...]",
  "",
  "flags (each overrides its environment variable):",
  ...Object.entries(FLAGS).map(
    ([flag, [env, help]]) => `  --${flag.padEnd(22)} ${env.padEnd(39)} ${help}`,
  ),
  "",
  "Pod events: POST /cmdadd and /cmddel (istio-cni's CNIPluginAddEvent JSON) on the plugin socket.",
].join("\n");

export const nodeAgent: Command = {
  name: "node-agent",
  summary: "run the node agent: enroll this node's pods into ambient mode (istio-cni's role)",
  usage,
  async run(args) {
    let values: Record<string, string | boolean | undefined>;
    try {
      values = parseArgs({
        args: [...args],
        options: Object.fromEntries(Object.keys(FLAGS).map((f) => [f, { type: "string" }])),
        strict: true,
        allowPositionals: false,
      }).values;
    } catch (err) {
      console.error(`ambient node-agent: ${(err as Error).message}\n\nusage: ${usage}`);
      return 2;
    }
    const env: Record<string, string | undefined> = { ...process.env };
    for (const [flag, [name]] of Object.entries(FLAGS)) {
      const v = values[flag];
      if (typeof v === "string") env[name] = v;
    }
    const { loadConfig, runNodeAgent } = await import("../../node-agent/index.ts");
    let config;
    try {
      config = loadConfig(env);
    } catch (err) {
      console.error(`ambient node-agent: ${(err as Error).message}`);
      return 2;
    }
    let running;
    try {
      running = await runNodeAgent(config);
    } catch (err) {
      console.error(`ambient node-agent: cannot start: ${(err as Error).message}`);
      return 1;
    }
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off("SIGTERM", stop);
        process.off("SIGINT", stop);
        resolve();
      };
      process.on("SIGTERM", stop);
      process.on("SIGINT", stop);
    });
    await running.close();
    return 0;
  },
};
