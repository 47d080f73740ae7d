import { LogOutput, parseLevelSpec } from "../../lib/log/index.ts";
import type { Command } from "../command.ts";
import { loadLocal } from "./local-cluster.ts";
import { parseFlags, parseHostPort } from "./local-flags.ts";

const USAGE = `ambient apiserver --state-dir DIR --config-dir DIR [options]

Runs the local cluster's API server, controllers (Deployments, ReplicaSets, scheduler, garbage
collection) and cluster DNS. Start it inside the control plane's network namespace:
  nsenter --net=/run/netns/amb-<cluster>-cp ambient apiserver --state-dir DIR --config-dir DIR

  --state-dir DIR          cluster state directory (network.json from the network setup; the API
                           server keeps its objects in DIR/apiserver and writes DIR/kubeconfig)
  --config-dir DIR         directory of manifests (watched; read-only through the API)
  --listen HOST:PORT       API address (default: the control plane's address, port 6443, plain HTTP)
  --dns-listen HOST:PORT   cluster DNS address (default: the control plane's address, port 53)
  --no-dns                 do not run cluster DNS
  --no-controllers         do not run the controllers and scheduler
  --socket PATH            also serve the API on this unix socket (default DIR/apiserver.sock)
  --token-file FILE        require bearer tokens (lines "token,user,uid"); the first goes into
                           the kubeconfig
  --tls-cert-file FILE     serve HTTPS with this certificate (and --tls-private-key-file)
  --tls-private-key-file FILE
  --log-level SPEC         e.g. info, debug, info,apiserver=debug

SIGTERM or SIGINT stops it (runtime objects are kept in DIR/apiserver).`;

export const apiserver: Command = {
  name: "apiserver",
  summary: "run the local cluster's API server, controllers and cluster DNS",
  usage: USAGE,
  async run(args) {
    const { flags, problems } = parseFlags(args, {
      "state-dir": "string",
      "config-dir": "string",
      listen: "string",
      "dns-listen": "string",
      dns: "boolean",
      controllers: "boolean",
      socket: "string",
      "token-file": "string",
      "tls-cert-file": "string",
      "tls-private-key-file": "string",
      "log-level": "string",
    });
    for (const req of ["state-dir", "config-dir"]) {
      if (typeof flags[req] !== "string") problems.push(`--${req} is required`);
    }
    const listen = typeof flags["listen"] === "string" ? parseHostPort(flags["listen"]) : undefined;
    if (typeof flags["listen"] === "string" && listen === undefined)
      problems.push(`--listen must be HOST:PORT`);
    const dnsListen =
      typeof flags["dns-listen"] === "string" ? parseHostPort(flags["dns-listen"]) : undefined;
    if (typeof flags["dns-listen"] === "string" && dnsListen === undefined)
      problems.push(`--dns-listen must be HOST:PORT`);
    const tlsCert = flags["tls-cert-file"];
    const tlsKey = flags["tls-private-key-file"];
    if ((typeof tlsCert === "string") !== (typeof tlsKey === "string")) {
      problems.push("--tls-cert-file and --tls-private-key-file go together");
    }
    const level = parseLevelSpec(
      typeof flags["log-level"] === "string" ? flags["log-level"] : "info",
    );
    if (!level.ok) problems.push(`--log-level: ${level.reason}`);
    if (problems.length > 0 || !level.ok) {
      console.error(`ambient apiserver: ${problems.join("; ")}\n\nusage: ${USAGE}`);
      return 2;
    }
    const log = new LogOutput({ spec: level.value }).logger("local");
    // A stop asked for while starting is acted on once started.
    let stopRequested = false;
    let wake: (() => void) | undefined;
    const onSignal = () => {
      stopRequested = true;
      wake?.();
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
    let services;
    try {
      services = await (
        await loadLocal()
      ).startControlPlaneServices({
        stateDir: flags["state-dir"] as string,
        configDir: flags["config-dir"] as string,
        log,
        ...(listen ? { host: listen.host, port: listen.port } : {}),
        ...(flags["dns"] === false
          ? { dnsPort: false as const }
          : dnsListen
            ? { dnsPort: dnsListen.port }
            : {}),
        ...(flags["controllers"] === false ? { controllers: false } : {}),
        ...(typeof flags["socket"] === "string" ? { socketPath: flags["socket"] } : {}),
        ...(typeof flags["token-file"] === "string" ? { tokenFile: flags["token-file"] } : {}),
        ...(typeof tlsCert === "string" && typeof tlsKey === "string"
          ? { tls: { certFile: tlsCert, keyFile: tlsKey } }
          : {}),
      });
    } catch (err) {
      log.error("cannot start the API server", {
        error: err instanceof Error ? err.message : String(err),
      });
      return 1;
    }
    const s = services;
    if (!stopRequested) await new Promise<void>((resolve) => (wake = resolve));
    log.info("stopping");
    await s.close();
    // Exit now: timers and handles of a closed runtime must not keep the process alive.
    process.exit(0);
  },
};
