/** The supervisor's view of the components, written for `up` and `status` to read. */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export type ComponentPhase =
  /** Its dependencies are not ready yet. */
  | "waiting"
  /** Running, not ready yet. */
  | "starting"
  | "ready"
  /** Running, was ready, is not now. */
  | "unready"
  /** Exited; restarted after the backoff. */
  | "backoff"
  | "stopping"
  | "stopped";

export interface ComponentStatus {
  readonly name: string;
  readonly phase: ComponentPhase;
  readonly pid?: number;
  readonly startedAt?: string;
  /** Why it is not ready, or "ready". */
  readonly detail: string;
  readonly restarts: number;
  readonly lastExit?: {
    readonly code?: number;
    readonly signal?: string;
    readonly at: string;
  };
  /** When the next start is due (backoff). */
  readonly nextStartAt?: string;
  readonly log: string;
}

export interface SupervisorStatus {
  readonly supervisorPid: number;
  readonly updatedAt: string;
  readonly state: "running" | "stopping" | "stopped";
  readonly components: readonly ComponentStatus[];
}

export function writeStatus(path: string, status: SupervisorStatus): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(status, null, 2) + "\n");
  renameSync(tmp, path);
}

export function readStatus(path: string): SupervisorStatus | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as SupervisorStatus;
  } catch {
    return undefined;
  }
}
