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

const APPLY_USAGE = `ambient apply -f FILE|DIR [-f ...] [--dry-run] [--cluster NAME]

Validates every document (file, line and field path for each problem) and, only if all are
valid, writes them into the cluster's config directory; the API server and the control plane
pick the change up. Objects already there are updated in place.

  -f, --filename PATH   a YAML file or a directory of them (repeatable)
  --dry-run             validate and show what would change; write nothing
${CLUSTER_USAGE}`;

const DELETE_USAGE = `ambient delete -f FILE|DIR [-f ...] [--cluster NAME]

Removes the objects the files define from the cluster's config directory.

  -f, --filename PATH   a YAML file or a directory of them (repeatable)
${CLUSTER_USAGE}`;

async function configDirOf(command: string, values: Record<string, unknown>) {
  const local = await loadLocal();
  const ref = local.resolveCluster({
    cluster: str(values["cluster"] as string | undefined),
    stateDir: str(values["state-dir"] as string | undefined),
  });
  if (!ref.ok) {
    console.error(`ambient ${command}: ${ref.reason}`);
    return undefined;
  }
  const layout = local.clusterLayout(ref.value.cluster, ref.value.stateDir);
  if (local.readClusterFile(layout.clusterFile) === undefined) {
    console.error(
      `ambient ${command}: cluster "${ref.value.cluster}" is not up (nothing in ${ref.value.stateDir}); 'ambient up -f ...' starts it with these manifests`,
    );
    return undefined;
  }
  return { local, layout };
}

export const apply: Command = {
  name: "apply",
  summary: "validate manifests and apply them to a local cluster",
  usage: APPLY_USAGE,
  async run(args) {
    const p = parse(
      args,
      {
        filename: { type: "string", short: "f", multiple: true },
        "dry-run": { type: "boolean" },
        ...CLUSTER_OPTIONS,
      },
      false,
    );
    if (!p.ok) return usageError("apply", p.reason, APPLY_USAGE);
    const files = (p.value.values["filename"] as string[] | undefined) ?? [];
    if (files.length === 0) return usageError("apply", "-f is required", APPLY_USAGE);
    if (!isRoot()) return needRoot("apply");
    const c = await configDirOf("apply", p.value.values);
    if (c === undefined) return 1;
    const inputs = c.local.readManifestInputs(files);
    if (!inputs.ok) {
      for (const l of inputs.reason) console.error(`ambient apply: ${l}`);
      return 1;
    }
    const dryRun = p.value.values["dry-run"] === true;
    const r = await c.local.applyToConfigDir(c.layout.configDir, inputs.value, { dryRun });
    if (!r.ok) {
      console.error(`ambient apply: nothing applied; ${r.reason.length} problem(s):`);
      for (const l of r.reason) console.error(`  ${l}`);
      return 1;
    }
    for (const a of r.value)
      console.log(`${c.local.describeApplied(a)}${dryRun ? " (dry run)" : ""}`);
    return 0;
  },
};

export const del: Command = {
  name: "delete",
  summary: "remove the objects of manifests from a local cluster",
  usage: DELETE_USAGE,
  async run(args) {
    const p = parse(
      args,
      { filename: { type: "string", short: "f", multiple: true }, ...CLUSTER_OPTIONS },
      false,
    );
    if (!p.ok) return usageError("delete", p.reason, DELETE_USAGE);
    const files = (p.value.values["filename"] as string[] | undefined) ?? [];
    if (files.length === 0) return usageError("delete", "-f is required", DELETE_USAGE);
    if (!isRoot()) return needRoot("delete");
    const c = await configDirOf("delete", p.value.values);
    if (c === undefined) return 1;
    const inputs = c.local.readManifestInputs(files);
    if (!inputs.ok) {
      for (const l of inputs.reason) console.error(`ambient delete: ${l}`);
      return 1;
    }
    const r = await c.local.deleteFromConfigDir(c.layout.configDir, inputs.value);
    if (!r.ok) {
      for (const l of r.reason) console.error(`ambient delete: ${l}`);
      return 1;
    }
    for (const k of r.value.deleted) console.log(`${k} deleted`);
    for (const m of r.value.missing) console.error(`ambient delete: not found: ${m}`);
    return r.value.missing.length > 0 ? 1 : 0;
  },
};
