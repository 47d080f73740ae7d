import { LogOutput, parseLevelSpec } from "../../lib/log/index.ts";
import type { Command } from "../command.ts";
import { loadLocal } from "./local-cluster.ts";
import { parseFlags } from "./local-flags.ts";

const USAGE = `ambient kubelet --state-dir DIR --node NAME [options]

Runs one local node's kubelet (pods as network namespaces running their containers' commands)
and kube-proxy (Service VIPs via iptables). Start it inside the node's network namespace, after
the API server wrote DIR/kubeconfig, with nsenter (not "ip netns exec", whose private mount
namespace would hide the pod namespaces it creates):
  nsenter --net=/run/netns/amb-<cluster>-<node> ambient kubelet --state-dir DIR --node NAME

  --state-dir DIR      cluster state directory (network.json; records in DIR/kubelet/NAME,
                       container logs in DIR/logs/<ns>_<pod>_<uid>/<container>/<n>.log)
  --node NAME          this node (as in the network topology)
  --kubeconfig FILE    API server access (default DIR/kubeconfig)
  --cni-socket PATH    the node agent's plugin-event socket, called before containers start;
                       without it no CNI hook runs (nodes without the mesh)
  --no-proxy           do not run kube-proxy
  --log-level SPEC     e.g. info, debug

SIGTERM or SIGINT stops every pod on the node, removes its kube-proxy rules and marks the Node
NotReady. SIGHUP exits leaving pods and rules in place; the next kubelet adopts them.`;

export const kubelet: Command = {
  name: "kubelet",
  summary: "run a local node's kubelet and kube-proxy",
  usage: USAGE,
  async run(args) {
    const { flags, problems } = parseFlags(args, {
      "state-dir": "string",
      node: "string",
      kubeconfig: "string",
      "cni-socket": "string",
      proxy: "boolean",
      "log-level": "string",
    });
    for (const req of ["state-dir", "node"]) {
      if (typeof flags[req] !== "string") problems.push(`--${req} is required`);
    }
    const level = parseLevelSpec(
      typeof flags["log-level"] === "string" ? flags["log-level"] : "info",
    );
    if (!level.ok) problems.push(`--log-level: ${level.reason}`);
    if (problems.length > 0 || !level.ok) {
      console.error(`ambient kubelet: ${problems.join("; ")}\n\nusage: ${USAGE}`);
      return 2;
    }
    const log = new LogOutput({ spec: level.value }).logger(`node/${flags["node"] as string}`);
    // Signals that arrive while starting are acted on once started (never a half-done exit).
    let requested: "stop-pods" | "leave-pods" | undefined;
    let wake: (() => void) | undefined;
    const onSignal = (mode: "stop-pods" | "leave-pods") => () => {
      requested ??= mode;
      wake?.();
    };
    process.once("SIGTERM", onSignal("stop-pods"));
    process.once("SIGINT", onSignal("stop-pods"));
    process.once("SIGHUP", onSignal("leave-pods"));
    let services;
    try {
      services = await (
        await loadLocal()
      ).startNodeServices({
        stateDir: flags["state-dir"] as string,
        node: flags["node"] as string,
        log,
        ...(typeof flags["kubeconfig"] === "string" ? { kubeconfig: flags["kubeconfig"] } : {}),
        ...(typeof flags["cni-socket"] === "string" ? { cniSocket: flags["cni-socket"] } : {}),
        ...(flags["proxy"] === false ? { proxy: false } : {}),
      });
    } catch (err) {
      log.error("cannot start the kubelet", {
        error: err instanceof Error ? err.message : String(err),
      });
      return 1;
    }
    const s = services;
    if (requested === undefined) await new Promise<void>((resolve) => (wake = resolve));
    const mode = requested ?? "stop-pods";
    log.info("stopping", { mode });
    await s.close(mode);
    // Exit now: pods left running (SIGHUP) are children this process must not wait for.
    process.exit(0);
  },
};
