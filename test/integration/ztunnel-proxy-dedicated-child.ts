/**
 * Runs ztunnel in dedicated mode for the proxy tests: started with `ip netns exec <pod>`, so its
 * own namespace is the pod's. Reads `{cert, info}` as JSON on stdin (the parent's test PKI),
 * prints "ready" once listening, prints a JSON line per access-log line, and stops gracefully on
 * SIGTERM.
 */
import { Registry } from "prom-client";
import type { WorkloadCertificate } from "../../src/lib/identity/index.ts";
import { LogOutput } from "../../src/lib/log/index.ts";
import { startDedicatedProxy } from "../../src/ztunnel/proxy/index.ts";
import { applyLocalConfig, parseLocalConfig, ProxyState } from "../../src/ztunnel/state/index.ts";
import { NODE_NAME, STATE_YAML, proxyConfig } from "./ztunnel-proxy-world.ts";

interface Input {
  readonly cert: Omit<WorkloadCertificate, "notBefore" | "notAfter"> & {
    notBefore: string;
    notAfter: string;
  };
  readonly info: { name: string; namespace: string; serviceAccount: string };
}

let text = "";
for await (const chunk of process.stdin) text += String(chunk);
const input = JSON.parse(text) as Input;
const cert: WorkloadCertificate = {
  ...input.cert,
  notBefore: new Date(input.cert.notBefore),
  notAfter: new Date(input.cert.notAfter),
};
const state = new ProxyState({ localNode: NODE_NAME });
const cfg = parseLocalConfig(STATE_YAML);
if (!cfg.ok) throw new Error(cfg.reason.join("; "));
applyLocalConfig(state, cfg.value);
const out = new LogOutput({
  spec: { defaultLevel: "warn", scopes: new Map([["access", "info"]]) },
  format: "json",
  sink: { write: (line) => process.stdout.write(line) },
});
const proxy = await startDedicatedProxy(
  {
    config: proxyConfig(),
    state,
    certificates: {
      certificate: () => Promise.resolve(cert),
      roots: () => cert.rootsPem,
    },
    registry: new Registry(),
    accessLog: out.logger("access"),
    log: out.logger("proxy"),
  },
  { workloadInfo: input.info },
  { dnsUpstreams: [] },
);
process.stdout.write("ready\n");
process.once("SIGTERM", () => {
  void proxy.stop("graceful").then(() => process.exit(0));
});
