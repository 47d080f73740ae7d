/**
 * What the local-cluster commands (up, down, status, exec, logs, apply, ...) share: the lazy load
 * of the local runtime, the root check, and `--cluster` / `--state-dir`.
 */
import { enableCompileCache } from "node:module";
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/**
 * The local runtime, loaded when a command runs. Its import graph is large (the API server's
 * schemas, the Kubernetes client), so compiled code is cached on disk: later commands (and the
 * component processes, which are `ambient` too) start in about half the time.
 */
export async function loadLocal() {
  enableCompileCache();
  return import("../../local/index.ts");
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The plain refusal every cluster command gives without root. */
export function needRoot(command: string): number {
  console.error(
    `ambient ${command}: needs root — the local cluster is network namespaces, iptables rules and ` +
      `processes inside them. Run it as root, e.g. 'sudo ./bin/ambient ${command} ...'.`,
  );
  return 2;
}

export const CLUSTER_OPTIONS = {
  cluster: { type: "string" },
  "state-dir": { type: "string" },
} as const;

export const CLUSTER_USAGE = `  --cluster NAME      the cluster (default $AMBIENT_CLUSTER, else "ambient"; 1-12 of a-z, 0-9)
  --state-dir PATH    its state directory (default: where 'up' put it, /var/lib/ambient/NAME)`;

export type ParsedArgs = {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
};

/** parseArgs with the error as a value (usage errors exit 2). */
export function parse(
  args: readonly string[],
  options: ParseArgsOptionsConfig,
  allowPositionals = true,
): { ok: true; value: ParsedArgs } | { ok: false; reason: string } {
  try {
    const r = parseArgs({ args: [...args], options, allowPositionals, strict: true });
    return { ok: true, value: r };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

export function str(v: ParsedArgs["values"][string]): string | undefined {
  return typeof v === "string" ? v : undefined;
}

export function usageError(command: string, reason: string, usage: string): number {
  console.error(`ambient ${command}: ${reason}\n\nusage: ${usage}`);
  return 2;
}

/** Resolves and opens the cluster the flags name; prints why not and returns undefined. */
export async function openFromFlags(command: string, values: ParsedArgs["values"]) {
  const local = await loadLocal();
  const ref = local.resolveCluster({
    cluster: str(values["cluster"]),
    stateDir: str(values["state-dir"]),
  });
  if (!ref.ok) {
    console.error(`ambient ${command}: ${ref.reason}`);
    return undefined;
  }
  const open = await local.openCluster(ref.value);
  if (!open.ok) {
    console.error(`ambient ${command}: ${open.reason}`);
    return undefined;
  }
  return { local, ref: ref.value, open: open.value };
}
