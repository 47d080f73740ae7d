import type { Command } from "../command.ts";
import {
  CLUSTER_OPTIONS,
  CLUSTER_USAGE,
  isRoot,
  loadLocal,
  needRoot,
  parse,
  str,
  usageError,
} from "./local-cluster.ts";

const USAGE = `ambient up [-f FILE|DIR ...] [--nodes N] [--cluster NAME] [--state-dir PATH]

Runs a whole ambient mesh on this machine (root): the API server, controllers and cluster DNS,
the control plane, and per node a node agent, a ztunnel and a kubelet, each in its network
namespace; then the pods of the manifests, enrolled in the mesh where their namespace says
istio.io/dataplane-mode=ambient. Waits until everything is ready and prints what runs where.
Running it again is safe: what runs is kept, what is missing is started, changed manifests
are applied. Processes keep running after it returns; 'ambient down' stops them.

  -f, --filename PATH  manifests: a YAML file or a directory of them (repeatable); validated
                       first — nothing starts if any document is invalid
  --nodes N            number of nodes (default: the cluster's, else 2)
${CLUSTER_USAGE}
  --timeout SECONDS    how long to wait for the components, then for the pods (default 180)
  --log-level SPEC     the components' log level (default info)`;

export const up: Command = {
  name: "up",
  summary: "start a local ambient mesh from Kubernetes YAML (root)",
  usage: USAGE,
  async run(args) {
    const p = parse(args, {
      filename: { type: "string", short: "f", multiple: true },
      nodes: { type: "string" },
      timeout: { type: "string" },
      "log-level": { type: "string" },
      ...CLUSTER_OPTIONS,
    });
    if (!p.ok) return usageError("up", p.reason, USAGE);
    const { values, positionals } = p.value;
    if (positionals.length > 0) {
      return usageError(
        "up",
        `unexpected argument "${positionals[0]}" (manifests go after -f)`,
        USAGE,
      );
    }
    return runUp("up", {
      sources: (values["filename"] as string[] | undefined) ?? [],
      nodes: str(values["nodes"]),
      timeout: str(values["timeout"]),
      logLevel: str(values["log-level"]),
      cluster: str(values["cluster"]),
      stateDir: str(values["state-dir"]),
    });
  },
};

export interface UpArgs {
  readonly sources: readonly string[];
  readonly nodes: string | undefined;
  readonly timeout: string | undefined;
  readonly logLevel: string | undefined;
  readonly cluster: string | undefined;
  readonly stateDir: string | undefined;
}

/** `up` and `demo`: resolves to the exit code; prints progress, then the cluster. */
export async function runUp(
  command: string,
  a: UpArgs,
  extraTry: readonly string[] = [],
): Promise<number> {
  if (!isRoot()) return needRoot(command);
  const problems: string[] = [];
  const nodes = a.nodes === undefined ? undefined : Number(a.nodes);
  if (nodes !== undefined && !(Number.isInteger(nodes) && nodes >= 1 && nodes <= 16)) {
    problems.push(`--nodes must be a whole number from 1 to 16, not "${a.nodes}"`);
  }
  const timeout = a.timeout === undefined ? 180 : Number(a.timeout);
  if (!(timeout > 0)) problems.push(`--timeout must be a number of seconds, not "${a.timeout}"`);
  const local = await loadLocal();
  const { LogOutput, parseLevelSpec } = await import("../../lib/log/index.ts");
  if (a.logLevel !== undefined) {
    const lv = parseLevelSpec(a.logLevel);
    if (!lv.ok) problems.push(`--log-level: ${lv.reason}`);
  }
  const ref = local.resolveCluster({ cluster: a.cluster, stateDir: a.stateDir });
  if (!ref.ok) problems.push(ref.reason);
  if (problems.length > 0 || !ref.ok) return usageError(command, problems.join("; "), USAGE);
  const log = new LogOutput({ spec: { defaultLevel: "warn", scopes: new Map() } }).logger("up");
  const say = (line: string) => console.log(line);
  say(`ambient ${command}: cluster "${ref.value.cluster}" (state ${ref.value.stateDir})`);
  let result;
  try {
    result = await local.clusterUp({
      cluster: ref.value.cluster,
      stateDir: ref.value.stateDir,
      ...(nodes !== undefined ? { nodes } : {}),
      sources: a.sources,
      log,
      say,
      timeoutMs: timeout * 1000,
      ...(a.logLevel !== undefined ? { logLevel: a.logLevel } : {}),
    });
  } catch (err) {
    console.error(`ambient ${command}: ${err instanceof Error ? err.message : String(err)}`);
    console.error(
      `  'ambient down${clusterFlag(ref.value.cluster, local.DEFAULT_CLUSTER)}' removes whatever was started`,
    );
    return 1;
  }
  if (!result.ok) {
    const refusedInput = result.exitCode === 2;
    console.error(
      refusedInput
        ? `ambient ${command}: refusing to start:`
        : `ambient ${command}: the cluster did not come up:`,
    );
    for (const line of result.problems) console.error(`  ${line}`);
    if (!refusedInput) {
      console.error(
        `  what runs is left running: 'ambient status${clusterFlag(ref.value.cluster, local.DEFAULT_CLUSTER)}' to look, 'ambient down${clusterFlag(ref.value.cluster, local.DEFAULT_CLUSTER)}' to remove it`,
      );
    }
    return result.exitCode;
  }
  const view = await local.gatherView(result.plan.layout, result.plan, result.topology);
  say("");
  for (const line of local.formatView(view)) say(line);
  say("");
  say("Try:");
  for (const c of [...extraTry, ...local.tryCommands(view, local.DEFAULT_CLUSTER)]) say(`  ${c}`);
  return 0;
}

function clusterFlag(cluster: string, def: string): string {
  return cluster === def ? "" : ` --cluster ${cluster}`;
}
