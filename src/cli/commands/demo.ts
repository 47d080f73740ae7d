import { join } from "node:path";
import type { Command } from "../command.ts";
import { CLUSTER_OPTIONS, CLUSTER_USAGE, parse, str, usageError } from "./local-cluster.ts";
import { runUp } from "./up.ts";

const USAGE = `ambient demo [--nodes N] [--cluster NAME] [--state-dir PATH]

'ambient up -f examples/bookinfo' (root): Istio's Bookinfo in ambient mode on two nodes, plus
a client pod to run curl from; prints commands to try.

  --nodes N           number of nodes (default 2)
${CLUSTER_USAGE}`;

export const demo: Command = {
  name: "demo",
  summary: "start a local mesh running Bookinfo and print commands to try (root)",
  usage: USAGE,
  async run(args) {
    const p = parse(args, { nodes: { type: "string" }, ...CLUSTER_OPTIONS }, false);
    if (!p.ok) return usageError("demo", p.reason, USAGE);
    const v = p.value.values;
    const c = str(v["cluster"]);
    const flag = c === undefined ? "" : ` --cluster ${c}`;
    const bookinfo = join(import.meta.dirname, "..", "..", "..", "examples", "bookinfo");
    return runUp(
      "demo",
      {
        sources: [bookinfo],
        nodes: str(v["nodes"]),
        timeout: undefined,
        logLevel: undefined,
        cluster: c,
        stateDir: str(v["state-dir"]),
      },
      [
        `ambient exec${flag} bookinfo/client -- curl -s http://productpage:9080/api/v1/products/0`,
        `for i in 1 2 3 4 5 6; do ambient exec${flag} bookinfo/client -- curl -s http://reviews:9080/reviews/0; echo; done`,
        `ambient label${flag} namespace bookinfo istio.io/dataplane-mode=none     # out of the mesh, pods keep running`,
        `ambient label${flag} namespace bookinfo istio.io/dataplane-mode=ambient  # and back`,
        `ambient apply${flag} -f examples/policies/reviews-allow-productpage.yaml  # L4 policy`,
      ],
    );
  },
};
