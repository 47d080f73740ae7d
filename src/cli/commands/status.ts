import type { Command } from "../command.ts";
import {
  CLUSTER_OPTIONS,
  CLUSTER_USAGE,
  isRoot,
  needRoot,
  openFromFlags,
  parse,
  usageError,
} from "./local-cluster.ts";

const USAGE = `ambient status [--cluster NAME] [--state-dir PATH] [--json]

What the local cluster runs and where: components (pid, state, restarts, endpoints, logs),
nodes, pods (node, IP, ready, enrolled in the mesh), services (VIP, ports).
Exit code 0 when every component and pod is ready, 1 otherwise.

${CLUSTER_USAGE}
  --json              the same as JSON`;

export const status: Command = {
  name: "status",
  summary: "show what a local cluster runs and where",
  usage: USAGE,
  async run(args) {
    const p = parse(args, { ...CLUSTER_OPTIONS, json: { type: "boolean" } }, false);
    if (!p.ok) return usageError("status", p.reason, USAGE);
    if (!isRoot()) return needRoot("status");
    const o = await openFromFlags("status", p.value.values);
    if (o === undefined) return 1;
    const view = await o.local.gatherView(o.open.layout, o.open.plan, o.open.topology);
    if (p.value.values["json"] === true) console.log(JSON.stringify(view, null, 2));
    else for (const line of o.local.formatView(view)) console.log(line);
    const healthy =
      view.apiProblem === undefined &&
      view.components.every((c) => c.state === "ready") &&
      view.pods.every((pod) => pod.status === "Running");
    return healthy ? 0 : 1;
  },
};
