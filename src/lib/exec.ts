/**
 * Running `ip`, `iptables`, `sysctl` and friends, optionally inside a network namespace given by
 * path (`/run/netns/<name>`, `/proc/<pid>/ns/net`): `nsenter --net=<path>` enters it for one
 * command, so this process never changes namespace.
 */
import { spawn } from "node:child_process";
import { AmbientError, errnoCode } from "./errors.ts";

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Namespace path to run in; the caller's namespace when absent. */
  readonly netns?: string;
  readonly input?: string;
  readonly timeoutMs?: number;
  /** The `AmbientError` code for failures, so each caller keeps its own stable code. */
  readonly errorCode?: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;

function describe(cmd: string, args: readonly string[], netns: string | undefined): string {
  const line = [cmd, ...args].join(" ");
  return netns === undefined ? `"${line}"` : `"${line}" in netns ${netns}`;
}

/** Runs a command to completion. Throws only when it cannot run at all (missing binary, timeout). */
export function run(
  cmd: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<CommandResult> {
  const argv =
    opts.netns === undefined
      ? [cmd, ...args]
      : ["nsenter", `--net=${opts.netns}`, "--", cmd, ...args];
  const [file, ...rest] = argv as [string, ...string[]];
  const errorCode = opts.errorCode ?? "COMMAND_FAILED";
  return new Promise((resolve, reject) => {
    const child = spawn(file, rest, { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    // A command that exits before reading its input makes the write fail with EPIPE; its exit
    // status and stderr tell the real story.
    child.stdin.on("error", () => {});
    child.on("error", (e) => {
      clearTimeout(timer);
      const missing = errnoCode(e) === "ENOENT";
      reject(
        new AmbientError(
          errorCode,
          missing
            ? `cannot run ${describe(cmd, args, opts.netns)}: ${file} is not installed (looked in PATH)`
            : `cannot run ${describe(cmd, args, opts.netns)}: ${e.message}`,
          { cause: e },
        ),
      );
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(
          new AmbientError(
            errorCode,
            `${describe(cmd, args, opts.netns)} did not finish within ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms and was killed`,
          ),
        );
        return;
      }
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
    child.stdin.end(opts.input ?? "");
  });
}

/** Runs a command and throws (code `opts.errorCode`) naming the command, namespace and stderr. */
export async function runChecked(
  cmd: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const stderr = r.stderr.trim() || r.stdout.trim() || "(no output)";
    throw new AmbientError(
      opts.errorCode ?? "COMMAND_FAILED",
      `${describe(cmd, args, opts.netns)} failed with exit code ${r.code}: ${stderr}`,
    );
  }
  return r.stdout;
}
