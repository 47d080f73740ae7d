/**
 * Pid files: a process is known by pid and start time (from /proc), so a pid reused by another
 * process after a crash is never mistaken for ours.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { processStartTicks } from "../kubelet/index.ts";

export interface PidRecord {
  readonly pid: number;
  readonly startTicks: string;
  readonly startedAt: string;
  /** The command line, for operators reading the file. */
  readonly command?: readonly string[];
}

export function writePidFile(path: string, record: PidRecord): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(record) + "\n", { mode: 0o644 });
  renameSync(tmp, path);
}

export function readPidFile(path: string): PidRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(path, "utf8")) as Partial<PidRecord>;
    if (typeof r.pid !== "number" || typeof r.startTicks !== "string") return undefined;
    return { pid: r.pid, startTicks: r.startTicks, startedAt: r.startedAt ?? "" };
  } catch {
    return undefined;
  }
}

export function removePidFile(path: string): void {
  rmSync(path, { force: true });
}

/** The record, when its process still runs (same pid, same start time). */
export function livePid(path: string): PidRecord | undefined {
  const r = readPidFile(path);
  return r !== undefined && processStartTicks(r.pid) === r.startTicks ? r : undefined;
}

/** A record for a process that runs now (this one, or a child just spawned). */
export function recordFor(pid: number, command?: readonly string[]): PidRecord | undefined {
  const startTicks = processStartTicks(pid);
  if (startTicks === undefined) return undefined;
  return {
    pid,
    startTicks,
    startedAt: new Date().toISOString(),
    ...(command !== undefined ? { command } : {}),
  };
}
