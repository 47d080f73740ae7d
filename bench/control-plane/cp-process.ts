/**
 * The control plane under test, in its own process so its CPU and RSS are measured alone. Forked
 * by index.ts with the cluster shape as argv[2] (JSON); talks over IPC: `ready` once serving,
 * `change` -> applies one pod edit and answers `changed` with the wall-clock time of the edit,
 * `stats` -> memory, CPU and xDS counters, `stop`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ControlPlane, loadConfig } from "../../src/control-plane/index.ts";
import { LogOutput, parseLevelSpec } from "../../src/lib/log/index.ts";
import { BenchStore } from "./bench-store.ts";
import { clusterObjects, podAt, podObject, type ClusterShape } from "./synthetic.ts";

interface Args extends ClusterShape {
  readonly debounce: string;
}

const args = JSON.parse(process.argv[2] ?? "{}") as Args;
const send = (m: unknown) => process.send?.(m);
const now = () => performance.timeOrigin + performance.now();

function memory() {
  global.gc?.();
  const m = process.memoryUsage();
  return { rssMb: m.rss / 2 ** 20, heapUsedMb: m.heapUsed / 2 ** 20 };
}

const stateDir = await mkdtemp(join(tmpdir(), "amb-cp-bench-"));
const t0 = now();
const store = new BenchStore(clusterObjects(args));
const built = now();
const spec = parseLevelSpec("warn");
const plane = await ControlPlane.start(
  loadConfig(
    [
      "--state-dir",
      stateDir,
      "--grpc-address",
      "127.0.0.1:0",
      "--http-address",
      "127.0.0.1:0",
      "--debounce-after",
      args.debounce,
      "--debounce-max",
      "1s",
    ],
    {},
  ),
  { store, logOutput: new LogOutput(spec.ok ? { spec: spec.value } : {}) },
);
const loaded = now();
send({
  type: "ready",
  grpcPort: plane.grpcPort,
  httpPort: plane.httpPort,
  rootCertPem: plane.rootCertPem,
  credentialsDir: plane.config.credentialsDir,
  buildObjectsMs: built - t0,
  loadMs: loaded - built,
  addresses: plane.index.addresses().length,
  memory: memory(),
  cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
});

process.on("message", (raw) => {
  const m = raw as { type: string; index?: number; seq?: number };
  if (m.type === "change") {
    const p = podAt(args, m.index!);
    const obj = podObject(p, `v${m.seq! + 2}`);
    const at = now();
    store.update(obj);
    send({
      type: "changed",
      seq: m.seq,
      at,
      applyMs: now() - at,
      name: `Kubernetes//Pod/${p.namespace}/${p.name}`,
    });
  } else if (m.type === "stats") {
    const cpu = process.cpuUsage();
    send({
      type: "stats",
      memory: memory(),
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      xds: plane.xds.stats(),
    });
  } else if (m.type === "stop") {
    void plane
      .stop()
      .then(() => rm(stateDir, { recursive: true, force: true }))
      .then(() => process.exit(0));
  }
});
