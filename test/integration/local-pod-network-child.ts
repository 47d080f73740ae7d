/** Adds pods to a local network one by one (a kubelet's pattern), for local-pod-network.test.ts. */
import { podNetworkUp } from "../../src/local/network/index.ts";

const [cluster, stateDir, node, ...names] = process.argv.slice(2) as [
  string,
  string,
  string,
  ...string[],
];
const out: Record<string, string> = {};
await Promise.all(
  names.map(async (name) => {
    const net = await podNetworkUp(cluster, { namespace: "demo", name, node }, { stateDir });
    out[name] = net.ip;
  }),
);
process.stdout.write(JSON.stringify(out));
