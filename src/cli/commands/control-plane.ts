import type { Command } from "../command.ts";
import { flagHelp, runControlPlane } from "../../control-plane/index.ts";

export const controlPlane: Command = {
  name: "control-plane",
  summary: "run the control plane: xDS and CA on 15012 (gRPC/TLS), metrics and debug on 15014",
  usage: `ambient control-plane [flags]\n\nflags (a flag wins over its [ENV] variable):\n${flagHelp()}`,
  run(args) {
    return runControlPlane(args);
  },
};
