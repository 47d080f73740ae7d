import type { Command } from "../command.ts";
import {
  CLUSTER_OPTIONS,
  CLUSTER_USAGE,
  isRoot,
  loadLocal,
  needRoot,
  parse,
  str,
  usageError,
} from "./local-cluster.ts";

const USAGE = `ambient down [--cluster NAME] [--state-dir PATH]

Stops the local cluster and removes every trace of it: processes (kubelets first, so pods stop
with their grace period; then ztunnels, node agents, the control plane, the API server), the
network namespaces with their interfaces and iptables rules, /etc/netns entries, sockets and
the state directory. Works after crashes too (pid files, the network state, and a scan for the
cluster's amb-<cluster>-* namespaces). Safe to run when nothing is left.

${CLUSTER_USAGE}`;

export const down: Command = {
  name: "down",
  summary: "stop a local cluster and remove everything it left (root)",
  usage: USAGE,
  async run(args) {
    const p = parse(args, { ...CLUSTER_OPTIONS }, false);
    if (!p.ok) return usageError("down", p.reason, USAGE);
    if (!isRoot()) return needRoot("down");
    const local = await loadLocal();
    const ref = local.resolveCluster({
      cluster: str(p.value.values["cluster"]),
      stateDir: str(p.value.values["state-dir"]),
    });
    if (!ref.ok) return usageError("down", ref.reason, USAGE);
    const { LogOutput } = await import("../../lib/log/index.ts");
    const log = new LogOutput({ spec: { defaultLevel: "warn", scopes: new Map() } }).logger("down");
    console.log(`ambient down: cluster "${ref.value.cluster}" (state ${ref.value.stateDir})`);
    try {
      const r = await local.clusterDown({
        ...ref.value,
        log,
        say: (line) => console.log(`  ${line}`),
      });
      const nothing =
        r.supervisor === "not running" &&
        r.namespaces.length === 0 &&
        r.swept.length === 0 &&
        r.removed.length === 0;
      console.log(nothing ? "nothing was running; nothing left" : "down: nothing left");
      return 0;
    } catch (err) {
      console.error(`ambient down: ${err instanceof Error ? err.message : String(err)}`);
      console.error("  run it again; it continues from what is left");
      return 1;
    }
  },
};
