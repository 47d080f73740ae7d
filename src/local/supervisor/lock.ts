/**
 * The cluster lock, held by `up` and `down` while they change the cluster, so two of them never
 * interleave. A lock left by a process that no longer runs (a crash) is taken over.
 */
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { AmbientError, errnoCode } from "../../lib/errors.ts";
import { processStartTicks } from "../kubelet/index.ts";

export function takeLock(path: string, what: string): () => void {
  mkdirSync(dirname(path), { recursive: true });
  // Written whole, then linked into place: the lock never exists without its holder's name.
  const tmp = `${path}.${process.pid}`;
  writeFileSync(tmp, `${process.pid} ${processStartTicks(process.pid) ?? ""}\n`, { mode: 0o600 });
  try {
    return attempt(path, tmp, what);
  } finally {
    rmSync(tmp, { force: true });
  }
}

function attempt(path: string, tmp: string, what: string): () => void {
  for (let i = 0; i < 2; i++) {
    try {
      linkSync(tmp, path);
      return () => rmSync(path, { force: true });
    } catch (err) {
      if (errnoCode(err) !== "EEXIST") throw err;
      let holder = "";
      try {
        holder = readFileSync(path, "utf8").trim();
      } catch {
        // removed meanwhile
      }
      const [pid, ticks] = holder.split(" ");
      const held =
        pid !== undefined && ticks !== undefined && processStartTicks(Number(pid)) === ticks;
      if (held) {
        throw new AmbientError(
          "LOCAL_CLUSTER_BUSY",
          `${what} is being changed by process ${pid} (another 'ambient up' or 'down'); wait for it or stop it`,
        );
      }
      rmSync(path, { force: true });
    }
  }
  throw new AmbientError("LOCAL_CLUSTER_BUSY", `cannot take the lock ${path}`);
}
