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

const USAGE = `ambient label [--cluster NAME] <kind> [<namespace>/]<name> key=value|key- ...

Sets (key=value) or removes (key-) labels of an object defined in the cluster's manifests: its
document in the config directory is edited (comments kept), validated and applied. E.g. take a
namespace out of the mesh and back, without restarting its pods:

  ambient label namespace bookinfo istio.io/dataplane-mode=none
  ambient label namespace bookinfo istio.io/dataplane-mode=ambient

<kind>: namespace (ns), service (svc), deployment (deploy), pod, serviceaccount (sa), or any
kind the configuration knows (e.g. AuthorizationPolicy).

${CLUSTER_USAGE}`;

export const label: Command = {
  name: "label",
  summary: "set or remove labels of an object in a local cluster's manifests",
  usage: USAGE,
  async run(args) {
    const p = parse(args, { ...CLUSTER_OPTIONS });
    if (!p.ok) return usageError("label", p.reason, USAGE);
    const [kindArg, target, ...changesArgs] = p.value.positionals;
    if (kindArg === undefined || target === undefined || changesArgs.length === 0) {
      return usageError("label", "expected <kind> <name> key=value ...", USAGE);
    }
    const local = await loadLocal();
    const kind = local.kindFromArg(kindArg);
    if (kind === undefined) return usageError("label", `unknown kind "${kindArg}"`, USAGE);
    const changes = [];
    for (const a of changesArgs) {
      const c = local.parseLabelChange(a);
      if (c === undefined) return usageError("label", `"${a}" is not key=value or key-`, USAGE);
      changes.push(c);
    }
    const slash = target.indexOf("/");
    const namespace = slash === -1 ? "default" : target.slice(0, slash);
    const name = slash === -1 ? target : target.slice(slash + 1);
    if (!isRoot()) return needRoot("label");
    const ref = local.resolveCluster({
      cluster: str(p.value.values["cluster"]),
      stateDir: str(p.value.values["state-dir"]),
    });
    if (!ref.ok) return usageError("label", ref.reason, USAGE);
    const layout = local.clusterLayout(ref.value.cluster, ref.value.stateDir);
    const r = await local.labelInConfigDir(layout.configDir, kind, namespace, name, changes);
    if (!r.ok) {
      for (const l of r.reason) console.error(`ambient label: ${l}`);
      return 1;
    }
    console.log(`${r.value.key} ${r.value.action === "unchanged" ? "unchanged" : "labeled"}`);
    return 0;
  },
};
