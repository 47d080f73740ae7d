/**
 * The state directory of a local cluster's network: what we allocated and every namespace we
 * may have created, written before we create anything (so a crash leaves a complete list behind),
 * and a lock so two `up`/`down` runs cannot interleave.
 */
import { mkdir, open, readFile, readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { AmbientError, errnoCode } from "../../lib/errors.ts";
import type { IpamState } from "./ipam.ts";
import type { NetnsRole } from "./plan.ts";
import type { TopologySpec } from "./spec.ts";

export interface NetworkState {
  readonly version: 1;
  readonly cluster: string;
  /** The last topology brought up (absent while the first `up` is still running). */
  readonly spec?: TopologySpec;
  readonly ipam?: IpamState;
  /** Every namespace that may exist, in creation order. */
  readonly namespaces: readonly { readonly netns: string; readonly role: NetnsRole }[];
}

const STATE_FILE = "network.json";
const LOCK_FILE = "network.lock";

export function stateFile(stateDir: string): string {
  return join(stateDir, STATE_FILE);
}

/** Reads the state; undefined when there is none. A damaged file is reported, not trusted. */
export async function readState(
  stateDir: string,
): Promise<{ state?: NetworkState; problem?: string }> {
  let text: string;
  try {
    text = await readFile(stateFile(stateDir), "utf8");
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return {};
    throw new AmbientError(
      "NETWORK_STATE_UNREADABLE",
      `cannot read ${stateFile(stateDir)}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    const parsed = JSON.parse(text) as Partial<NetworkState>;
    if (
      parsed.version !== 1 ||
      typeof parsed.cluster !== "string" ||
      !Array.isArray(parsed.namespaces)
    ) {
      return { problem: `${stateFile(stateDir)} is not a network state file (version 1)` };
    }
    return { state: parsed as NetworkState };
  } catch (err) {
    return { problem: `${stateFile(stateDir)} is damaged: ${(err as Error).message}` };
  }
}

/** Replaces the state file atomically (write, then rename over the old one). */
export async function writeState(stateDir: string, state: NetworkState): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  const tmp = `${stateFile(stateDir)}.${process.pid}.tmp`;
  const fh = await open(tmp, "w", 0o600);
  try {
    await fh.writeFile(JSON.stringify(state, null, 2) + "\n");
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, stateFile(stateDir));
}

export async function removeState(stateDir: string): Promise<void> {
  await rm(stateFile(stateDir), { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === "EPERM";
  }
}

/**
 * Takes the state directory's lock, or throws `NETWORK_LOCKED` naming the process holding it.
 * A lock left by a process that no longer runs (a crash) is taken over.
 */
export async function lock(stateDir: string): Promise<() => Promise<void>> {
  await mkdir(stateDir, { recursive: true });
  const path = join(stateDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, "wx", 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return async () => {
        await rm(path, { force: true });
      };
    } catch (err) {
      if (errnoCode(err) !== "EEXIST") throw err;
      const holder = Number((await readFile(path, "utf8").catch(() => "")).trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
        throw new AmbientError(
          "NETWORK_LOCKED",
          `${stateDir} is in use by process ${holder} (another "up" or "down" of this cluster); wait for it or stop it`,
        );
      }
      // No pid yet: the holder created the file and has not written it (a moment ago), so it
      // is held; only an old empty file is a crash's leftover.
      if (!(Number.isInteger(holder) && holder > 0)) {
        const age = Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? 0);
        if (age < 5000) {
          throw new AmbientError(
            "NETWORK_LOCKED",
            `${stateDir} is being locked by another process`,
          );
        }
      }
      await rm(path, { force: true });
    }
  }
  throw new AmbientError("NETWORK_LOCKED", `cannot take the lock ${path}`);
}

/** Removes the state directory if nothing but our files were in it. */
export async function removeStateDirIfEmpty(stateDir: string): Promise<void> {
  try {
    if ((await readdir(stateDir)).length === 0) await rmdir(stateDir);
  } catch (err) {
    if (errnoCode(err) !== "ENOENT") throw err;
  }
}
