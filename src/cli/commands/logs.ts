import { closeSync, openSync, readSync, statSync, watch } from "node:fs";
import type { Command } from "../command.ts";
import {
  CLUSTER_OPTIONS,
  CLUSTER_USAGE,
  isRoot,
  needRoot,
  openFromFlags,
  parse,
  str,
  usageError,
} from "./local-cluster.ts";

const USAGE = `ambient logs [--cluster NAME] <namespace>/<pod|deployment> [-c CONTAINER] [-p] [-f]
ambient logs [--cluster NAME] <component>            [-f]

A container's output (stdout and stderr, as the kernel wrote them to its log file), or a
component's log: apiserver, control-plane, supervisor, ztunnel/<node>, node-agent/<node>,
kubelet/<node>.

  -c, --container NAME   the container (default: the pod's first)
  -p, --previous         the run before the last restart
  -f, --follow           keep printing what is appended (Ctrl-C stops)
${CLUSTER_USAGE}`;

const CLUSTER_COMPONENTS = ["apiserver", "control-plane", "supervisor"];
const NODE_COMPONENTS = ["ztunnel", "node-agent", "kubelet"];

export const logs: Command = {
  name: "logs",
  summary: "print a pod's container log or a component's log",
  usage: USAGE,
  async run(args) {
    const p = parse(args, {
      ...CLUSTER_OPTIONS,
      container: { type: "string", short: "c" },
      previous: { type: "boolean", short: "p" },
      follow: { type: "boolean", short: "f" },
    });
    if (!p.ok) return usageError("logs", p.reason, USAGE);
    const [target, ...extra] = p.value.positionals;
    if (target === undefined || extra.length > 0) {
      return usageError("logs", "expected one <namespace>/<pod> or component", USAGE);
    }
    if (!isRoot()) return needRoot("logs");
    const o = await openFromFlags("logs", p.value.values);
    if (o === undefined) return 1;
    const follow = p.value.values["follow"] === true;
    const [kind, node] = target.split("/");
    const isComponent =
      CLUSTER_COMPONENTS.includes(target) ||
      (NODE_COMPONENTS.includes(kind ?? "") && o.open.topology.nodes.some((n) => n.name === node));
    let file: string;
    if (isComponent) {
      file =
        target === "supervisor"
          ? o.open.layout.supervisorLog
          : o.open.plan.components.find((c) => c.name === target)!.logFile;
    } else {
      const pod = await o.local.findPod(o.open.api, target);
      if (!pod.ok) {
        console.error(`ambient logs: ${pod.reason}`);
        return 1;
      }
      const names = pod.value.spec.containers.map((c) => c.name);
      const container = str(p.value.values["container"]) ?? names[0];
      if (container === undefined || !names.includes(container)) {
        console.error(
          `ambient logs: pod ${pod.value.metadata.name} has no container "${container}"; containers: ${names.join(", ")}`,
        );
        return 1;
      }
      const path = o.local.containerLog(
        o.open.layout,
        pod.value,
        container,
        p.value.values["previous"] === true,
      );
      if (!path.ok) {
        console.error(`ambient logs: ${path.reason}`);
        return 1;
      }
      file = path.value;
    }
    return printFile(file, follow);
  },
};

/** Copies the file to stdout; with `follow`, keeps copying what is appended until SIGINT. */
async function printFile(file: string, follow: boolean): Promise<number> {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (err) {
    console.error(`ambient logs: cannot read ${file}: ${(err as Error).message}`);
    return 1;
  }
  const buf = Buffer.allocUnsafe(64 * 1024);
  let pos = 0;
  const drain = async () => {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) return;
      pos += n;
      if (!process.stdout.write(buf.subarray(0, n))) {
        await new Promise((r) => process.stdout.once("drain", r));
      }
    }
  };
  await drain();
  if (!follow) {
    closeSync(fd);
    return 0;
  }
  await new Promise<void>((resolve) => {
    let busy = false;
    const again = () => {
      if (busy) return;
      busy = true;
      // A truncated file (rotation by hand) starts over.
      if ((statSync(file, { throwIfNoEntry: false })?.size ?? 0) < pos) pos = 0;
      void drain().finally(() => (busy = false));
    };
    const watcher = watch(file, again);
    // fs.watch can miss appends on some filesystems; a slow poll backs it up.
    const timer = setInterval(again, 1000);
    process.once("SIGINT", () => {
      watcher.close();
      clearInterval(timer);
      resolve();
    });
  });
  closeSync(fd);
  return 0;
}
