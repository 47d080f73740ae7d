/**
 * Starting and stopping component processes. Each runs detached (its own session, so a signal to
 * `up`'s terminal or to the supervisor never reaches it), entered into its namespace with
 * nsenter, with stdout and stderr appended straight to its log file by the kernel (no pipe for
 * anyone to drain, and the process outlives whoever started it).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { errnoCode } from "../../lib/errors.ts";
import { isAlive } from "../kubelet/index.ts";
import { NODE_BIN_DIR, REPO_ROOT } from "../node-runtime.ts";
import { commandLine, type ComponentSpec } from "./components.ts";
import { recordFor, writePidFile, type PidRecord } from "./pid-file.ts";

/** The CLI entry point every component runs (`ambient <command>`). */
export const CLI_MAIN = join(REPO_ROOT, "src", "cli", "main.ts");

/**
 * The environment a component gets: the project's Node 24 first on PATH, the system tools
 * (ip, iptables, nsenter) after it, and the component's own variables — nothing else of the
 * caller's, so a stray NODE_NAME or XDS_ADDRESS in a user's shell cannot change a component.
 */
export function componentEnv(spec: ComponentSpec): Record<string, string> {
  const system = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  return {
    PATH: `${NODE_BIN_DIR}:${system}`,
    HOME: process.env["HOME"] ?? "/root",
    ...spec.env,
  };
}

export interface Started {
  readonly record: PidRecord;
  readonly child: ChildProcess;
}

/** Starts a component and writes its pid file; undefined when it died at once. */
export function startComponent(spec: ComponentSpec): Started | undefined {
  mkdirSync(dirname(spec.logFile), { recursive: true });
  const out = openSync(spec.logFile, "a", 0o640);
  const { file, args } = commandLine(spec, process.execPath, CLI_MAIN);
  let child: ChildProcess;
  try {
    child = spawn(file, args, {
      cwd: REPO_ROOT,
      env: componentEnv(spec),
      detached: true,
      stdio: ["ignore", out, out],
    });
  } finally {
    closeSync(out);
  }
  // An exec failure is reported on the child; the caller sees the exit.
  child.on("error", () => {});
  if (child.pid === undefined) return undefined;
  const record = recordFor(child.pid, [file, ...args]);
  if (record === undefined) return undefined;
  writePidFile(spec.pidFile, record);
  return { record, child };
}

function signal(pid: number, sig: NodeJS.Signals, group: boolean): boolean {
  try {
    process.kill(group ? -pid : pid, sig);
    return true;
  } catch (err) {
    return errnoCode(err) === "EPERM";
  }
}

/**
 * SIGTERM, then waits up to `timeoutMs` for the process to go; then SIGKILL to its whole process
 * group. Resolves with how it ended.
 */
export async function stopProcess(
  record: PidRecord,
  timeoutMs: number,
  term: NodeJS.Signals = "SIGTERM",
): Promise<"stopped" | "killed" | "gone"> {
  if (!isAlive(record.pid, record.startTicks)) return "gone";
  signal(record.pid, term, false);
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (!isAlive(record.pid, record.startTicks)) return "stopped";
    await sleep(100);
  }
  signal(record.pid, "SIGKILL", true);
  signal(record.pid, "SIGKILL", false);
  for (let i = 0; i < 50 && isAlive(record.pid, record.startTicks); i++) await sleep(100);
  return "killed";
}
