/**
 * `ambient node-agent` — runs the node agent (istio-cni's ambient role) for one node until
 * SIGTERM/SIGINT. Flags override the environment variables of the same meaning (Istio's names).
 */
import { parseArgs } from "node:util";
import type { Command } from "../command.ts";
import { CONFIG_ENV, loadConfig, runNodeAgent } from "../../node-agent/index.ts";

/** Each flag and the environment variable it sets. */
const FLAGS: Readonly<Record<string, string>> = {
  "node-name": "NODE_NAME",
  "system-namespace": "SYSTEM_NAMESPACE",
  kubeconfig: "KUBECONFIG",
  "ztunnel-socket": "ZTUNNEL_UDS_ADDRESS",
  "run-dir": "CNI_AGENT_RUN_DIR",
  "plugin-socket": "CNI_EVENT_ADDRESS",
  "state-file": "AMBIENT_STATE_FILE",
  "dns-capture": "AMBIENT_DNS_CAPTURE",
  ipv6: "AMBIENT_IPV6",
  "reconcile-on-startup": "AMBIENT_RECONCILE_POD_RULES_ON_STARTUP",
  "host-probe-rules": "AMBIENT_HOST_PROBE_RULES",
  "host-netns": "HOST_NETNS_PATH",
  "probe-snat-ip": "HOST_PROBE_SNAT_IP",
  "probe-snat-ipv6": "HOST_PROBE_SNAT_IPV6",
  "monitoring-host": "MONITORING_HOST",
  "monitoring-port": "MONITORING_PORT",
  "readiness-port": "READINESS_PORT",
  "max-concurrent": "AMBIENT_MAX_CONCURRENT_ENROLLMENTS",
  "pod-lookup-timeout-ms": "AMBIENT_POD_LOOKUP_TIMEOUT_MS",
  "log-level": "LOG_LEVEL",
  "log-as-json": "LOG_AS_JSON",
};

const usage = [
  "ambient node-agent [flags]",
  "",
  "flags (each overrides its environment variable):",
  ...Object.entries(FLAGS).map(
    ([flag, env]) => `  --${flag.padEnd(22)} ${env.padEnd(40)} ${CONFIG_ENV[env] ?? ""}`,
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
    for (const [flag, name] of Object.entries(FLAGS)) {
      const v = values[flag];
      if (typeof v === "string") env[name] = v;
    }
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
