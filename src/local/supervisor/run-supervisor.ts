/**
 * `ambient supervise --state-dir S`: the supervisor process (started detached by `up`). Exits
 * at once if another supervisor runs for the cluster; stops the cluster's processes on SIGTERM
 * or SIGINT and exits; SIGUSR1 makes it start whatever waits (in backoff) now.
 */
import { AmbientError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log/index.ts";
import { loadTopology } from "../network/index.ts";
import { readClusterFile } from "./cluster-file.ts";
import { planCluster } from "./components.ts";
import { clusterLayout } from "./layout.ts";
import { livePid, recordFor, removePidFile, writePidFile } from "./pid-file.ts";
import { Supervisor } from "./supervisor.ts";

export async function runSupervisor(stateDir: string, log: Logger): Promise<number> {
  const file = readClusterFile(clusterLayout("", stateDir).clusterFile);
  if (file === undefined) {
    log.error("no cluster here: cluster.json is missing; run 'ambient up' first", { stateDir });
    return 2;
  }
  const layout = clusterLayout(file.cluster, stateDir);
  const other = livePid(layout.supervisorPidFile);
  if (other !== undefined && other.pid !== process.pid) {
    log.error("another supervisor runs for this cluster", { pid: other.pid });
    return 1;
  }
  const topology = await loadTopology(stateDir);
  if (topology === undefined) {
    throw new AmbientError(
      "LOCAL_NO_NETWORK",
      `no network state in ${stateDir}; run 'ambient up' (it creates the network first)`,
    );
  }
  const plan = planCluster({
    cluster: file.cluster,
    stateDir,
    topology,
    ...(file.logLevel !== undefined ? { logLevel: file.logLevel } : {}),
  });
  const me = recordFor(process.pid, process.argv);
  if (me !== undefined) writePidFile(layout.supervisorPidFile, me);
  const supervisor = new Supervisor({ plan, log });
  log.info("supervising", {
    cluster: file.cluster,
    components: plan.components.length,
    state_dir: stateDir,
  });
  const stopped = new Promise<string>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  process.on("SIGUSR1", () => supervisor.retryNow());
  // A hang-up of whatever terminal started `up` must not end the cluster.
  process.on("SIGHUP", () => {});
  supervisor.start();
  const reason = await stopped;
  await supervisor.stop(reason);
  removePidFile(layout.supervisorPidFile);
  return 0;
}
