import type { Command } from "../command.ts";
import { loadLocal, parse, str, usageError } from "./local-cluster.ts";

const USAGE = `ambient supervise --state-dir PATH

(Started by 'ambient up'; not for direct use.) Keeps a local cluster's components running:
starts them in order, adopts running ones, restarts crashed ones with backoff, writes
PATH/run/status.json. SIGTERM stops the cluster's processes, then itself; SIGUSR1 retries now.`;

export const supervise: Command = {
  name: "supervise",
  summary: "(internal) the supervisor process 'ambient up' starts",
  usage: USAGE,
  async run(args) {
    const p = parse(
      args,
      { "state-dir": { type: "string" }, "log-level": { type: "string" } },
      false,
    );
    if (!p.ok) return usageError("supervise", p.reason, USAGE);
    const stateDir = str(p.value.values["state-dir"]);
    if (stateDir === undefined) return usageError("supervise", "--state-dir is required", USAGE);
    const local = await loadLocal();
    const { LogOutput, parseLevelSpec } = await import("../../lib/log/index.ts");
    const level = parseLevelSpec(str(p.value.values["log-level"]) ?? "info");
    if (!level.ok) return usageError("supervise", level.reason, USAGE);
    const log = new LogOutput({ spec: level.value }).logger("supervisor");
    try {
      const code = await local.runSupervisor(stateDir, log);
      // Exit now: nothing of the cluster may keep this process alive.
      process.exit(code);
    } catch (err) {
      log.error("supervisor failed", { error: err instanceof Error ? err.message : String(err) });
      return 1;
    }
  },
};
