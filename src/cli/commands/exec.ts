import { spawn } from "node:child_process";
import { constants } from "node:os";
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

const USAGE = `ambient exec [--cluster NAME] <namespace>/<pod|deployment> -- <command> [args...]

Runs a command inside a pod's network namespace, with the pod's resolv.conf (cluster DNS) —
so its traffic is the pod's: captured by ztunnel when the pod is in the mesh. For a
Deployment, one of its ready pods. The command's exit code is passed through.

  ambient exec bookinfo/client -- curl -s http://productpage:9080/productpage

${CLUSTER_USAGE}`;

export const exec: Command = {
  name: "exec",
  summary: "run a command in a pod's network namespace (exit code passed through)",
  usage: USAGE,
  async run(args) {
    const dash = args.indexOf("--");
    if (dash === -1) return usageError("exec", "the command goes after --", USAGE);
    const command = args.slice(dash + 1);
    const p = parse(args.slice(0, dash), { ...CLUSTER_OPTIONS });
    if (!p.ok) return usageError("exec", p.reason, USAGE);
    const [target, ...extra] = p.value.positionals;
    if (target === undefined || extra.length > 0 || command.length === 0) {
      return usageError("exec", "expected <namespace>/<pod> -- <command>", USAGE);
    }
    if (!isRoot()) return needRoot("exec");
    const o = await openFromFlags("exec", p.value.values);
    if (o === undefined) return 1;
    const pod = await o.local.findPod(o.open.api, target);
    if (!pod.ok) {
      console.error(`ambient exec: ${pod.reason}`);
      return 1;
    }
    if (pod.value.status?.podIP === undefined) {
      console.error(
        `ambient exec: pod ${target} has no network yet (${o.local.podProblem(pod.value)})`,
      );
      return 1;
    }
    const netns = o.local.podNetnsName(o.ref.cluster, pod.value);
    // `ip netns exec` bind-mounts /etc/netns/<netns>/resolv.conf: the pod's cluster DNS.
    const child = spawn("ip", ["netns", "exec", netns, ...command], {
      stdio: "inherit",
      env: { ...process.env, PATH: `${o.local.NODE_BIN_DIR}:${process.env["PATH"] ?? ""}` },
    });
    return new Promise<number>((resolve) => {
      child.on("error", (err) => {
        console.error(`ambient exec: ${err.message}`);
        resolve(1);
      });
      child.on("exit", (code, signal) =>
        resolve(code ?? 128 + (signal !== null ? (constants.signals[signal] ?? 0) : 0)),
      );
    });
  },
};
