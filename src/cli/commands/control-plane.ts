import type { Command } from "../command.ts";

// The control plane is loaded only when this command runs, so other commands start fast.
const load = () => import("../../control-plane/index.ts");

export const controlPlane: Command = {
  name: "control-plane",
  summary: "run the control plane: xDS and CA on 15012 (gRPC/TLS), metrics and debug on 15014",
  usage: async () => `ambient control-plane [flags]

Endpoints: xDS + CA 0.0.0.0:15012 (gRPC over TLS), HTTP 0.0.0.0:15014 (/metrics, /ready, /debug).

flags (a flag wins over its [ENV] variable):
${(await load()).flagHelp()}`,
  async run(args) {
    return (await load()).runControlPlane(args);
  },
};
