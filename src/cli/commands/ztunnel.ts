import type { Command } from "../command.ts";

// The ztunnel component is loaded only when this command runs, so other commands start fast.
const load = () => import("../../ztunnel/index.ts");

export const ztunnel: Command = {
  name: "ztunnel",
  summary: "run ztunnel, the node proxy (configured by Istio's environment variables or flags)",
  usage: async () => `ambient ztunnel [flags]

Each flag sets the environment variable named after it (a flag wins over the variable).
Endpoints: admin 127.0.0.1:15000 (/config_dump, /logging, /quitquitquit),
metrics :15020 (/metrics, /stats/prometheus), readiness :15021 (/healthz/ready).

flags:
${(await load()).formatFlagsHelp()}`,
  async run(args) {
    const { envFromFlags, runZtunnel } = await load();
    const env = envFromFlags(args);
    if (!env.ok) {
      console.error(`ambient ztunnel: ${env.reason}`);
      return 2;
    }
    return runZtunnel({ overrides: env.value });
  },
};
