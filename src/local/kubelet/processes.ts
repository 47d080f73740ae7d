/**
 * Container processes: started inside the pod's network namespace with `ip netns exec` (which
 * also bind-mounts `/etc/netns/<netns>/resolv.conf` over /etc/resolv.conf, giving the process
 * cluster DNS), in a session of their own (so the whole tree is signalled as one group and
 * survives a kubelet restart), with stdout and stderr written straight into a log file by the
 * kernel — no pipe the kubelet must drain, so a busy app never stalls on an unread pipe.
 *
 * A process is known by pid and start time (from /proc), so a kubelet that restarts can adopt
 * it without mistaking a reused pid for it.
 */
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { errnoCode } from "../../lib/errors.ts";

export interface Exit {
  /** Exit code, or 128 + signal number when killed by a signal; undefined when not known (adopted). */
  readonly code: number | undefined;
  readonly signal: string | undefined;
}

export interface ProcessHandle {
  readonly pid: number;
  /** /proc/<pid>/stat start time (clock ticks since boot). */
  readonly startTicks: string;
  readonly startedAt: string;
  readonly exited: Promise<Exit>;
}

export interface StartOptions {
  readonly netns: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  readonly logPath: string;
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGPIPE: 13,
  SIGTERM: 15,
  SIGABRT: 6,
};

/** The start time of a live (not zombie) process, or undefined. */
export function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return undefined;
    return fields[19];
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number, startTicks: string): boolean {
  return processStartTicks(pid) === startTicks;
}

/** Signals a process's whole group (it leads its own session); false if it is gone. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch (err) {
    if (errnoCode(err) === "ESRCH") {
      try {
        process.kill(pid, signal);
        return true;
      } catch {
        return false;
      }
    }
    return false;
  }
}

export function startProcess(o: StartOptions): ProcessHandle {
  mkdirSync(dirname(o.logPath), { recursive: true });
  const fd = openSync(o.logPath, "a", 0o640);
  let child;
  try {
    child = spawn("ip", ["netns", "exec", o.netns, ...o.argv], {
      env: { ...o.env },
      cwd: o.cwd,
      detached: true,
      stdio: ["ignore", fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  const exited = new Promise<Exit>((resolve) => {
    child.on("error", () => resolve({ code: 127, signal: undefined }));
    child.on("exit", (code, signal) => {
      resolve({
        code: code ?? (signal ? 128 + (SIGNALS[signal] ?? 0) : undefined),
        signal: signal ?? undefined,
      });
    });
  });
  if (pid === undefined) {
    return { pid: -1, startTicks: "", startedAt: new Date().toISOString(), exited };
  }
  return {
    pid,
    startTicks: processStartTicks(pid) ?? "",
    startedAt: new Date().toISOString(),
    exited,
  };
}

/** Watches a process this kubelet did not start (found after a restart); polls /proc. */
export function adoptProcess(
  pid: number,
  startTicks: string,
  startedAt: string,
  pollMs = 500,
): ProcessHandle {
  const exited = new Promise<Exit>((resolve) => {
    const t = setInterval(() => {
      if (!isAlive(pid, startTicks)) {
        clearInterval(t);
        resolve({ code: undefined, signal: undefined });
      }
    }, pollMs);
  });
  return { pid, startTicks, startedAt, exited };
}
