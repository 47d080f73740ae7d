/**
 * Control-plane benchmark: a synthetic cluster (default 1,000 nodes, 100,000 pods, 10,000
 * services, 100 namespaces) served to 1,000 simulated ztunnels in separate processes — one per
 * node, `--wildcard` of them full wildcard subscribers, the rest on-demand (they hold their node's
 * workloads). Measures the control plane's RSS, the time to the first full push to every proxy,
 * and the latency from a single pod change to its arrival at the subscribed proxies (p50/p99),
 * checking that the change pushes only that workload and only to proxies whose view holds it.
 *
 *   npm run bench -- control-plane [--nodes 1000 --pods 100000 --services 10000 --wildcard 10
 *                                   --changes 200 --debounce 100ms --proxy-procs 4]
 */
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { nodeName, podAt, type ClusterShape } from "./synthetic.ts";

const now = () => performance.timeOrigin + performance.now();
const here = import.meta.dirname;

type Msg = { type: string } & Record<string, unknown>;

function child(script: string, arg: unknown, execArgv: string[] = []): ChildProcess {
  return fork(join(here, script), [JSON.stringify(arg)], {
    execArgv: [...execArgv],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

function next(proc: ChildProcess, type: string, timeoutMs = 600_000): Promise<Msg> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      proc.off("message", on);
      reject(new Error(`no ${type} message within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (m: Msg) => {
      if (m.type !== type) return;
      clearTimeout(t);
      proc.off("message", on);
      resolve(m);
    };
    proc.on("message", on);
  });
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");

/** `npm run bench -- control-plane [options]` (see the header for the options). */
export async function run(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      nodes: { type: "string", default: "1000" },
      pods: { type: "string", default: "100000" },
      services: { type: "string", default: "10000" },
      namespaces: { type: "string", default: "100" },
      wildcard: { type: "string", default: "10" },
      "proxy-procs": { type: "string", default: "4" },
      changes: { type: "string", default: "200" },
      "gap-ms": { type: "string", default: "50" },
      debounce: { type: "string", default: "100ms" },
      "sync-timeout-s": { type: "string", default: "900" },
    },
  });

  const shape: ClusterShape = {
    nodes: Number(values.nodes),
    pods: Number(values.pods),
    services: Number(values.services),
    namespaces: Number(values.namespaces),
  };
  const wildcard = Math.min(Number(values.wildcard), shape.nodes);
  const proxyProcs = Math.max(1, Number(values["proxy-procs"]));
  const changes = Number(values.changes);
  const gapMs = Number(values["gap-ms"]);

  console.log(
    `control-plane bench: ${shape.nodes} nodes, ${shape.pods} pods, ${shape.services} services, ` +
      `${shape.namespaces} namespaces; ${shape.nodes} proxies (${wildcard} wildcard, ` +
      `${shape.nodes - wildcard} on-demand) in ${proxyProcs}+ processes; debounce ${values.debounce}`,
  );
  const cp = child("cp-process.ts", { ...shape, debounce: values.debounce }, [
    "--expose-gc",
    "--max-old-space-size=4096",
    // CP_BENCH_PROFILE=dir writes a V8 CPU profile of the control plane there.
    ...(process.env["CP_BENCH_PROFILE"] !== undefined
      ? ["--cpu-prof", `--cpu-prof-dir=${process.env["CP_BENCH_PROFILE"]}`]
      : []),
  ]);
  const procs: ChildProcess[] = [];
  try {
    const ready = await next(cp, "ready");
    const mem0 = ready["memory"] as { rssMb: number; heapUsedMb: number };
    console.log(
      `loaded: ${String(ready["addresses"])} addresses; objects built ${fmt(ready["buildObjectsMs"] as number, 0)} ms, ` +
        `index + xDS store ${fmt(ready["loadMs"] as number, 0)} ms; RSS ${fmt(mem0.rssMb, 0)} MB, heap ${fmt(mem0.heapUsedMb, 0)} MB; ` +
        `CPU ${fmt(ready["cpuSeconds"] as number, 1)} s`,
    );

    // Expected holdings per proxy.
    const podsOnNode = new Array<number>(shape.nodes).fill(0);
    for (let i = 0; i < shape.pods; i++) podsOnNode[i % shape.nodes]! += 1;
    const totalAddresses = ready["addresses"] as number;
    const proxies = Array.from({ length: shape.nodes }, (_, n) => ({
      id: n,
      node: nodeName(n),
      onDemand: n >= wildcard,
      expectAddresses: n >= wildcard ? podsOnNode[n]! : totalAddresses,
      expectAuthorizations: shape.namespaces,
    }));
    // Wildcard proxies decode everything: one process each pair; on-demand ones share the rest.
    const groups: (typeof proxies)[] = [];
    const wild = proxies.slice(0, wildcard);
    for (let i = 0; i < wild.length; i += 2) groups.push(wild.slice(i, i + 2));
    const od = proxies.slice(wildcard);
    const per = Math.ceil(od.length / proxyProcs);
    for (let i = 0; i < od.length; i += per) groups.push(od.slice(i, i + per));

    const syncedAt = new Map<number, number>();
    const arrivals: Msg[] = [];
    const t0 = now();
    for (const g of groups) {
      const p = child("proxy-process.ts", {
        grpcPort: ready["grpcPort"],
        rootCertPem: ready["rootCertPem"],
        credentialsDir: ready["credentialsDir"],
        proxies: g,
      });
      p.on("message", (m: Msg) => {
        if (m.type === "synced") syncedAt.set(m["id"] as number, m["at"] as number);
        if (m.type === "arrival") arrivals.push(m);
      });
      procs.push(p);
    }
    const deadline = t0 + Number(values["sync-timeout-s"]) * 1000;
    while (syncedAt.size < proxies.length && now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const syncTimes = (filter: (id: number) => boolean) =>
      [...syncedAt]
        .filter(([id]) => filter(id))
        .map(([, at]) => at - t0)
        .sort((a, b) => a - b);
    const odTimes = syncTimes((id) => id >= wildcard);
    const wTimes = syncTimes((id) => id < wildcard);
    console.log(
      `first full push: ${syncedAt.size}/${proxies.length} proxies synced; on-demand ${odTimes.length}: ` +
        `last at ${fmt((odTimes.at(-1) ?? NaN) / 1000, 2)} s (p50 ${fmt(pct(odTimes, 50) / 1000, 2)} s); ` +
        `wildcard ${wTimes.length}: last at ${fmt((wTimes.at(-1) ?? NaN) / 1000, 2)} s`,
    );
    cp.send({ type: "stats" });
    const afterPush = await next(cp, "stats");
    const memPush = afterPush["memory"] as { rssMb: number; heapUsedMb: number };
    console.log(
      `after the first push: RSS ${fmt(memPush.rssMb, 0)} MB, heap ${fmt(memPush.heapUsedMb, 0)} MB, ` +
        `CPU ${fmt(afterPush["cpuSeconds"] as number, 1)} s`,
    );

    // Single pod changes: one at a time, each on a node whose proxy is on-demand.
    for (const p of procs) p.send({ type: "measure" });
    await new Promise((r) => setTimeout(r, 200));
    arrivals.length = 0;
    const nodeLatency: number[] = [];
    const wildLatency: number[] = [];
    let extraResources = 0;
    let unexpectedProxies = 0;
    let missed = 0;
    for (let seq = 0; seq < changes; seq++) {
      let index = Math.floor(Math.random() * shape.pods);
      while (index % shape.nodes < wildcard) index = (index + 1) % shape.pods;
      const pod = podAt(shape, index);
      const start = arrivals.length;
      cp.send({ type: "change", index, seq });
      const changed = await next(cp, "changed", 10_000);
      const name = changed["name"] as string;
      const at = changed["at"] as number;
      const wantNode = index % shape.nodes;
      const waitUntil = now() + 5000;
      const done = () => {
        const seen = new Set(
          arrivals
            .slice(start)
            .filter((a) => (a["names"] as string[]).includes(name))
            .map((a) => a["id"] as number),
        );
        return seen.has(wantNode) && [...Array(wildcard).keys()].every((w) => seen.has(w));
      };
      while (!done() && now() < waitUntil) await new Promise((r) => setTimeout(r, 2));
      await new Promise((r) => setTimeout(r, gapMs));
      for (const a of arrivals.slice(start)) {
        const names = a["names"] as string[];
        const id = a["id"] as number;
        if (!names.includes(name)) continue;
        extraResources += names.length - 1;
        const lat = (a["at"] as number) - at;
        if (id === wantNode) nodeLatency.push(lat);
        else if (id < wildcard) wildLatency.push(lat);
        else unexpectedProxies += 1;
      }
      if (!done()) missed += 1;
      void pod;
    }
    nodeLatency.sort((a, b) => a - b);
    wildLatency.sort((a, b) => a - b);
    cp.send({ type: "stats" });
    const end = await next(cp, "stats");
    const memEnd = end["memory"] as { rssMb: number; heapUsedMb: number };
    const result = {
      shape,
      wildcard,
      debounce: values.debounce,
      rssAfterLoadMb: Math.round(mem0.rssMb),
      rssAfterPushMb: Math.round(memPush.rssMb),
      rssEndMb: Math.round(memEnd.rssMb),
      heapAfterPushMb: Math.round(memPush.heapUsedMb),
      loadMs: Math.round(ready["loadMs"] as number),
      cpCpuAtReadyS: ready["cpuSeconds"],
      cpCpuAfterPushS: afterPush["cpuSeconds"],
      firstPush: {
        synced: syncedAt.size,
        onDemandLastS: (odTimes.at(-1) ?? NaN) / 1000,
        wildcardLastS: (wTimes.at(-1) ?? NaN) / 1000,
      },
      change: {
        changes,
        nodeProxy: { n: nodeLatency.length, p50: pct(nodeLatency, 50), p99: pct(nodeLatency, 99) },
        wildcardProxies: {
          n: wildLatency.length,
          p50: pct(wildLatency, 50),
          p99: pct(wildLatency, 99),
        },
        extraResourcesPushed: extraResources,
        proxiesOutsideTheView: unexpectedProxies,
        missed,
      },
      cpCpuSeconds: end["cpuSeconds"],
    };
    console.log(
      `pod change -> proxy on its node: p50 ${fmt(result.change.nodeProxy.p50)} ms, p99 ${fmt(result.change.nodeProxy.p99)} ms ` +
        `(n=${nodeLatency.length}); -> wildcard proxies: p50 ${fmt(result.change.wildcardProxies.p50)} ms, ` +
        `p99 ${fmt(result.change.wildcardProxies.p99)} ms (n=${wildLatency.length}); other resources in those pushes: ${extraResources}; ` +
        `pushes to proxies outside the view: ${unexpectedProxies}; changes not seen everywhere: ${missed}`,
    );
    console.log(
      `RSS at end ${fmt(memEnd.rssMb, 0)} MB; control plane CPU ${fmt(end["cpuSeconds"] as number, 1)} s`,
    );
    console.log(JSON.stringify(result));
  } finally {
    for (const p of procs) p.send({ type: "stop" });
    cp.send({ type: "stop" });
    await Promise.all(
      [cp, ...procs].map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null) return resolve();
            const t = setTimeout(() => {
              p.kill("SIGKILL");
              resolve();
            }, 10_000);
            p.once("exit", () => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
  }
}
