/**
 * Where the control plane's memory goes at the benchmark's scale, step by step, in one process:
 * the config objects, the ambient index, the xDS server's resource store. Run with --expose-gc:
 *
 *   node --expose-gc --max-old-space-size=4096 bench/control-plane/memory.ts [nodes pods services]
 */
import { AmbientIndex } from "../../src/control-plane/ambient/index.ts";
import type { ConfigBatch } from "../../src/lib/config/index.ts";
import { objectKey } from "../../src/lib/config/index.ts";
import { ok } from "../../src/lib/errors.ts";
import { XdsServer } from "../../src/lib/xds/index.ts";
import {
  AmbientPublisher,
  registerAmbientTypes,
  type AmbientXdsServer,
} from "../../src/control-plane/xds/ambient-xds.ts";
import { clusterObjects } from "./synthetic.ts";

const [nodes = 1000, pods = 100_000, services = 10_000] = process.argv.slice(2).map(Number);
const step = (label: string, ms?: number) => {
  global.gc?.();
  const m = process.memoryUsage();
  console.log(
    `${label.padEnd(22)} rss ${(m.rss / 2 ** 20).toFixed(0).padStart(5)} MB  heap ${(m.heapUsed / 2 ** 20).toFixed(0).padStart(5)} MB  buffers ${(m.arrayBuffers / 2 ** 20).toFixed(0).padStart(4)} MB` +
      (ms === undefined ? "" : `  ${ms.toFixed(0)} ms`),
  );
};
step("start");
const objects = clusterObjects({ nodes, pods, services, namespaces: 100 });
step(`${objects.length} objects`);
const index = new AmbientIndex({});
const events = objects.map((o) => ({
  type: "added" as const,
  kind: o.kind,
  key: objectKey(o.kind, o.metadata.namespace, o.metadata.name),
  new: o,
}));
objects.length = 0;
let t = performance.now();
const delta = index.applyBatch({ events, initial: true } as unknown as ConfigBatch);
const indexMs = performance.now() - t;
events.length = 0;
step("+ ambient index", indexMs);
const xds = new XdsServer({
  authenticate: () => Promise.resolve(ok(undefined)),
}) as unknown as AmbientXdsServer;
const provider = registerAmbientTypes(xds);
t = performance.now();
new AmbientPublisher(xds, provider).publish(delta);
const xdsMs = performance.now() - t;
delta.addresses.updated.length = 0;
delta.authorizations.updated.length = 0;
step("+ xDS resource store", xdsMs);
let bytes = 0;
for (const name of provider.names()) bytes += provider.get(name)?.encoded.length ?? 0;
console.log(
  `a full Address push carries ${provider.size} resources, ${(bytes / 2 ** 20).toFixed(1)} MB encoded`,
);
xds.close();
