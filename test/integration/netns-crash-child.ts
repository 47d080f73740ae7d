/**
 * Runs `networkUp` and stops forever just before the interfaces are created, after the
 * namespaces exist and the state is written, so a test can kill it there (a simulated crash).
 * argv: <stateDir> <spec JSON>
 */
import { networkUp, type TopologySpec } from "../../src/local/network/index.ts";

const [stateDir = "", specJson = "{}"] = process.argv.slice(2);
await networkUp(JSON.parse(specJson) as TopologySpec, {
  stateDir,
  onPhase: async (phase) => {
    if (phase === "bridge+veth") {
      process.stdout.write("paused\n");
      // Keep the process alive (an unsettled await alone would let it exit) until killed.
      setInterval(() => {}, 60_000);
      await new Promise(() => {});
    }
  },
});
process.stdout.write("finished\n");
