/**
 * HBONE benchmark: the same path shape for each candidate, all on this machine, in one run:
 *
 *   loadgen → proxy A → encrypted hop → proxy B → sink
 *
 *   raw      no proxy: loadgen → sink
 *   hbone    our pair: TCP → HBONE client ==mTLS HTTP/2 CONNECT==> HBONE server → TCP
 *   haproxy  HAProxy as an mTLS pair (TCP mode, one thread each)
 *   stunnel  stunnel as an mTLS pair
 *
 * For each: Gbit/s with 1 and 8 connections, 1 KB ping-pong round trip p50/p99 (µs), new
 * tunnelled connections per second, CPU seconds per GB of both proxies (/proc/<pid>/stat), peak
 * RSS of both proxies (VmHWM). The load generator and sink are one small C program
 * (loadgen.c), built with the machine's gcc at the start.
 *
 *   npm run bench -- hbone [--seconds N] [--workers N] [--only hbone,haproxy] [--json FILE]
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { tlsCredentials } from "../../src/lib/identity/index.ts";
import { createTestPki } from "../../src/testing/pki.ts";

const here = import.meta.dirname;
const root = join(here, "..", "..");
const nodeBin = process.execPath;
const CLK_TCK = 100;

type Kind = "raw" | "hbone" | "haproxy" | "stunnel";
const allKinds: readonly Kind[] = ["raw", "hbone", "haproxy", "stunnel"];

/** One thing to measure: a kind, and for HBONE variants the knobs its proxies get. */
interface Candidate {
  name: string;
  kind: Kind;
  env: Record<string, string>;
  workersA: number;
  workersB: number;
}

interface Options {
  seconds: number;
  rounds: number;
  workersA: number;
  workersB: number;
  only: readonly Kind[];
  variants: readonly string[];
  json: string | undefined;
  rrSize: number;
  cpsConcurrency: number;
}

export interface CandidateResult {
  candidate: string;
  gbps1: number;
  gbps8: number;
  rrP50us: number;
  rrP99us: number;
  cps: number;
  cpsErrors: number;
  /** CPU of both proxies per tunnelled connection during the conn/s run (ms). */
  cpuMsPerConn: number | undefined;
  cpuSecPerGB: number | undefined;
  cpuSecPerGBA: number | undefined;
  cpuSecPerGBB: number | undefined;
  peakRssMB: number | undefined;
}

function parseOptions(argv: readonly string[]): Options {
  const o: Options = {
    seconds: 5,
    rounds: 3,
    // One thread per proxy: on this 2-core machine, shared with the load generator and the sink,
    // a second worker per proxy lowered every number (BENCHMARKS.md); --workers 2 shows it.
    workersA: 1,
    workersB: 1,
    only: allKinds,
    variants: [],
    json: undefined,
    rrSize: 1024,
    cpsConcurrency: 32,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    switch (a) {
      case "--seconds":
        o.seconds = Number(v);
        i++;
        break;
      case "--workers":
        o.workersA = o.workersB = Number(v);
        i++;
        break;
      case "--workers-a":
        o.workersA = Number(v);
        i++;
        break;
      case "--workers-b":
        o.workersB = Number(v);
        i++;
        break;
      case "--rounds":
        o.rounds = Number(v);
        i++;
        break;
      case "--only":
        o.only = (v ?? "").split(",").filter((c): c is Kind => allKinds.includes(c as Kind));
        i++;
        break;
      case "--variant":
        o.variants = [...o.variants, v ?? ""];
        i++;
        break;
      case "--json":
        o.json = v;
        i++;
        break;
      case "--cps-concurrency":
        o.cpsConcurrency = Number(v);
        i++;
        break;
      default:
        throw new Error(`unknown option ${a}`);
    }
  }
  if (!(o.seconds > 0 && o.seconds <= 60)) throw new Error("--seconds must be in (0, 60]");
  if (!(o.rounds >= 1 && o.rounds <= 10)) throw new Error("--rounds must be in [1, 10]");
  return o;
}

/**
 * The candidates: the kinds picked with --only, plus one HBONE candidate per
 * `--variant name:KEY=VALUE,...` (keys: HBONE_COPY_HWM, HBONE_COALESCE, HBONE_WINDOWS,
 * HBONE_NODE_ARGS (space-separated Node flags), WORKERS_A, WORKERS_B).
 */
function candidates(o: Options): Candidate[] {
  const out: Candidate[] = o.only.map((kind) => ({
    name: kind,
    kind,
    env: {},
    workersA: o.workersA,
    workersB: o.workersB,
  }));
  for (const spec of o.variants) {
    const colon = spec.indexOf(":");
    const name = colon === -1 ? spec : spec.slice(0, colon);
    const env: Record<string, string> = {};
    for (const kv of colon === -1 ? [] : spec.slice(colon + 1).split(",")) {
      const eq = kv.indexOf("=");
      if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    out.push({
      name: `hbone:${name}`,
      kind: "hbone",
      env,
      workersA: Number(env["WORKERS_A"] ?? o.workersA),
      workersB: Number(env["WORKERS_B"] ?? o.workersB),
    });
  }
  return out;
}

/** A free TCP port on 127.0.0.1 (bound and released; good enough on a quiet loopback). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function waitListening(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = net.connect({ port, host: "127.0.0.1" });
      s.once("connect", () => {
        s.destroy();
        resolve();
      });
      s.once("error", () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

const children = new Set<ChildProcess>();
function start(
  cmd: string,
  args: readonly string[],
  name: string,
  env: Record<string, string> = {},
): ChildProcess {
  const p = spawn(cmd, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  children.add(p);
  p.on("exit", () => children.delete(p));
  let err = "";
  p.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
    if (err.length > 4096) err = err.slice(-4096);
  });
  p.on("exit", (code, signal) => {
    if (code !== 0 && code !== null && signal === null) {
      process.stderr.write(`bench: ${name} exited with ${code}: ${err}\n`);
    }
  });
  return p;
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once("exit", () => r()));
  p.kill("SIGTERM");
  const t = setTimeout(() => p.kill("SIGKILL"), 2000);
  await exited;
  clearTimeout(t);
}

process.on("exit", () => {
  for (const p of children) p.kill("SIGKILL");
});

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime (fields 14 and 15)
}

function peakRssKB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : 0;
}

function loadgen(bin: string, args: readonly string[], timeoutS: number): Record<string, number> {
  const r = spawnSync(bin, args, { encoding: "utf8", timeout: timeoutS * 1000 });
  if (r.status !== 0) {
    throw new Error(`loadgen ${args.join(" ")} failed (${r.status ?? r.signal}): ${r.stderr}`);
  }
  return JSON.parse(r.stdout.trim()) as Record<string, number>;
}

interface Pair {
  /** Where the load generator connects. */
  entry: number;
  /** Proxy processes whose CPU and memory count. */
  procs: ChildProcess[];
}

async function startPair(cand: Candidate, dir: string, sinkPort: number): Promise<Pair> {
  const c = cand.kind;
  if (c === "raw") return { entry: sinkPort, procs: [] };
  const pa = await freePort();
  const pb = await freePort();
  let a: ChildProcess;
  let b: ChildProcess;
  if (c === "hbone") {
    const proxy = join(here, "hbone-proxy.ts");
    const certs = join(dir, "certs.json");
    // Extra Node flags for a variant (e.g. --max-semi-space-size=32).
    const nodeArgs = (cand.env["HBONE_NODE_ARGS"] ?? "").split(" ").filter((x) => x !== "");
    b = start(
      nodeBin,
      [...nodeArgs, proxy, "inbound", String(pb), certs, String(cand.workersB)],
      "hbone B",
      cand.env,
    );
    a = start(
      nodeBin,
      [
        ...nodeArgs,
        proxy,
        "outbound",
        String(pa),
        certs,
        String(cand.workersA),
        String(pb),
        String(sinkPort),
      ],
      "hbone A",
      cand.env,
    );
  } else if (c === "haproxy") {
    const common = `global\n  nbthread 1\n  maxconn 9000\n  log stderr format raw local0 emerg\ndefaults\n  mode tcp\n  timeout connect 10s\n  timeout client 60s\n  timeout server 60s\n`;
    writeFileSync(
      join(dir, "haproxy-b.cfg"),
      `${common}frontend fb\n  bind 127.0.0.1:${pb} ssl crt ${dir}/server.pem ca-file ${dir}/ca.pem verify required ssl-min-ver TLSv1.3\n  default_backend bb\nbackend bb\n  server s 127.0.0.1:${sinkPort}\n`,
    );
    writeFileSync(
      join(dir, "haproxy-a.cfg"),
      `${common}frontend fa\n  bind 127.0.0.1:${pa}\n  default_backend ba\nbackend ba\n  server b 127.0.0.1:${pb} ssl crt ${dir}/client.pem ca-file ${dir}/ca.pem verify required ssl-min-ver TLSv1.3\n`,
    );
    b = start("haproxy", ["-db", "-f", join(dir, "haproxy-b.cfg")], "haproxy B");
    a = start("haproxy", ["-db", "-f", join(dir, "haproxy-a.cfg")], "haproxy A");
  } else {
    const common = `foreground = yes\npid =\ndebug = 0\nsocket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\n`;
    writeFileSync(
      join(dir, "stunnel-b.conf"),
      `${common}[b]\naccept = 127.0.0.1:${pb}\nconnect = 127.0.0.1:${sinkPort}\ncert = ${dir}/server.crt\nkey = ${dir}/server.key\nCAfile = ${dir}/ca.pem\nverifyChain = yes\nrequireCert = yes\nsslVersionMin = TLSv1.3\n`,
    );
    writeFileSync(
      join(dir, "stunnel-a.conf"),
      `${common}[a]\nclient = yes\naccept = 127.0.0.1:${pa}\nconnect = 127.0.0.1:${pb}\ncert = ${dir}/client.crt\nkey = ${dir}/client.key\nCAfile = ${dir}/ca.pem\nverifyChain = yes\nsslVersionMin = TLSv1.3\n`,
    );
    b = start("stunnel", [join(dir, "stunnel-b.conf")], "stunnel B");
    a = start("stunnel", [join(dir, "stunnel-a.conf")], "stunnel A");
  }
  await waitListening(pb);
  await waitListening(pa);
  return { entry: pa, procs: [a, b] };
}

async function measure(
  c: Candidate,
  o: Options,
  dir: string,
  bin: string,
  sinkPort: number,
): Promise<CandidateResult> {
  const pair = await startPair(c, dir, sinkPort);
  const lg = (args: string[]) => loadgen(bin, args, o.seconds + 90);
  const cpu = () => pair.procs.map((p) => cpuTicks(p.pid!));
  try {
    // Warm-up: pools, JIT, TLS sessions.
    lg(["cps", String(pair.entry), "1", "8"]);
    lg(["tput", String(pair.entry), "2", "1"]);
    const tputRun = (conns: number) => {
      const before = cpu();
      const r = lg(["tput", String(pair.entry), String(conns), String(o.seconds)]);
      const after = cpu();
      const gb = r["bytes"]! / 1e9;
      const perProc = after.map((t, i) => (t - before[i]!) / CLK_TCK / gb);
      return { gbps: r["gbps"]!, perProc, gb };
    };
    const t1 = tputRun(1);
    const t8 = tputRun(8);
    const rr = lg(["rr", String(pair.entry), String(o.seconds), String(o.rrSize)]);
    const cpuBeforeCps = cpu();
    const cps = lg(["cps", String(pair.entry), String(o.seconds), String(o.cpsConcurrency)]);
    const cpuAfterCps = cpu();
    const cpsTicks = cpuAfterCps.reduce((sum, t, i) => sum + t - cpuBeforeCps[i]!, 0);
    // CPU per GB over both throughput runs, weighted by bytes.
    const cpuPerGB = (i: number): number | undefined =>
      pair.procs.length === 0
        ? undefined
        : (t1.perProc[i]! * t1.gb + t8.perProc[i]! * t8.gb) / (t1.gb + t8.gb);
    const a = cpuPerGB(0);
    const b = cpuPerGB(1);
    return {
      candidate: c.name,
      gbps1: t1.gbps,
      gbps8: t8.gbps,
      rrP50us: rr["p50_us"]!,
      rrP99us: rr["p99_us"]!,
      cps: cps["cps"]!,
      cpsErrors: cps["errors"]!,
      cpuMsPerConn:
        pair.procs.length === 0 ? undefined : (cpsTicks * (1000 / CLK_TCK)) / cps["conns"]!,
      cpuSecPerGBA: a,
      cpuSecPerGBB: b,
      cpuSecPerGB: a === undefined || b === undefined ? undefined : a + b,
      peakRssMB:
        pair.procs.length === 0
          ? undefined
          : pair.procs.reduce((s, p) => s + peakRssKB(p.pid!), 0) / 1024,
    };
  } finally {
    for (const p of pair.procs) await stop(p);
  }
}

function med(xs: readonly (number | undefined)[]): number | undefined {
  const v = xs
    .filter((x): x is number => x !== undefined && Number.isFinite(x))
    .sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1]! + v[mid]!) / 2;
}

/** Per-metric medians over rounds. */
function median(rs: readonly CandidateResult[]): CandidateResult {
  const pick = <K extends keyof CandidateResult>(k: K) =>
    med(rs.map((r) => r[k] as number | undefined));
  return {
    candidate: rs[0]!.candidate,
    gbps1: pick("gbps1")!,
    gbps8: pick("gbps8")!,
    rrP50us: pick("rrP50us")!,
    rrP99us: pick("rrP99us")!,
    cps: pick("cps")!,
    cpsErrors: pick("cpsErrors")!,
    cpuMsPerConn: pick("cpuMsPerConn"),
    cpuSecPerGB: pick("cpuSecPerGB"),
    cpuSecPerGBA: pick("cpuSecPerGBA"),
    cpuSecPerGBB: pick("cpuSecPerGBB"),
    peakRssMB: pick("peakRssMB"),
  };
}

function fmt(n: number | undefined, digits: number): string {
  return n === undefined ? "-" : n.toFixed(digits);
}

function table(results: readonly CandidateResult[]): string {
  const rows = [
    [
      "",
      "Gbit/s x1",
      "Gbit/s x8",
      "RTT p50 µs",
      "RTT p99 µs",
      "conn/s",
      "CPU ms/conn",
      "CPU s/GB (A+B)",
      "peak RSS MB",
    ],
    ...results.map((r) => [
      r.candidate,
      fmt(r.gbps1, 2),
      fmt(r.gbps8, 2),
      fmt(r.rrP50us, 0),
      fmt(r.rrP99us, 0),
      fmt(r.cps, 0) + (r.cpsErrors > 0 ? ` (${r.cpsErrors} err)` : ""),
      fmt(r.cpuMsPerConn, 3),
      r.cpuSecPerGB === undefined
        ? "-"
        : `${fmt(r.cpuSecPerGB, 2)} (${fmt(r.cpuSecPerGBA, 2)}+${fmt(r.cpuSecPerGBB, 2)})`,
      fmt(r.peakRssMB, 0),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padStart(widths[i]!)).join("  ")).join("\n");
}

function ratios(results: readonly CandidateResult[]): string {
  const lines: string[] = [];
  for (const hb of results.filter((r) => r.candidate.startsWith("hbone")))
    for (const base of ["haproxy", "stunnel"] as const) {
      const b = results.find((r) => r.candidate === base);
      if (b === undefined) continue;
      lines.push(
        `${hb.candidate} / ${base}: throughput x1 ${fmt(hb.gbps1 / b.gbps1, 2)}, x8 ${fmt(hb.gbps8 / b.gbps8, 2)}; ` +
          `RTT p50 ${fmt(hb.rrP50us / b.rrP50us, 2)} (lower is better), p99 ${fmt(hb.rrP99us / b.rrP99us, 2)}; ` +
          `conn/s ${fmt(hb.cps / b.cps, 2)}; CPU/GB ${fmt((hb.cpuSecPerGB ?? NaN) / (b.cpuSecPerGB ?? NaN), 2)} (lower is better); ` +
          `RSS ${fmt((hb.peakRssMB ?? NaN) / (b.peakRssMB ?? NaN), 1)}`,
      );
    }
  return lines.join("\n");
}

async function writeCerts(dir: string): Promise<void> {
  const pki = await createTestPki();
  const server = await pki.issue("spiffe://cluster.local/ns/bench/sa/server");
  const client = await pki.issue("spiffe://cluster.local/ns/bench/sa/client");
  const asJson = (c: typeof server) => ({
    identity: `spiffe://${c.identity.trustDomain}/ns/${c.identity.namespace}/sa/${c.identity.serviceAccount}`,
    privateKeyPem: c.privateKeyPem,
    chainPem: c.chainPem,
    rootsPem: c.rootsPem,
  });
  writeFileSync(
    join(dir, "certs.json"),
    JSON.stringify({ server: asJson(server), client: asJson(client) }),
  );
  writeFileSync(join(dir, "ca.pem"), pki.rootPem);
  for (const [name, c] of [
    ["server", server],
    ["client", client],
  ] as const) {
    const cred = tlsCredentials(c);
    writeFileSync(join(dir, `${name}.crt`), cred.cert);
    writeFileSync(join(dir, `${name}.key`), cred.key);
    writeFileSync(join(dir, `${name}.pem`), cred.cert + cred.key);
  }
}

export async function run(argv: readonly string[]): Promise<void> {
  const o = parseOptions(argv);
  const dir = mkdtempSync(join(tmpdir(), "ambient-bench-hbone-"));
  let sink: ChildProcess | undefined;
  try {
    const bin = join(dir, "loadgen");
    const cc = spawnSync("gcc", ["-O2", "-o", bin, join(here, "loadgen.c")], { encoding: "utf8" });
    if (cc.status !== 0) throw new Error(`building loadgen failed: ${cc.stderr}`);
    await writeCerts(dir);
    const sinkPort = await freePort();
    sink = start(bin, ["sink", String(sinkPort)], "sink");
    await waitListening(sinkPort);
    const cands = candidates(o);
    console.log(
      `HBONE benchmark: ${o.rounds} rounds (medians shown), ${o.seconds} s per measurement, ` +
        `HBONE workers A=${o.workersA} B=${o.workersB}, RR ${o.rrSize} B, conn/s with ` +
        `${o.cpsConcurrency} in flight; machine load average ${loadavg()[0]!.toFixed(2)}`,
    );
    const rounds: CandidateResult[][] = [];
    for (let r = 0; r < o.rounds; r++) {
      const round: CandidateResult[] = [];
      // Candidates take turns within each round, so load from elsewhere hits them alike.
      for (const c of cands) {
        process.stdout.write(`  round ${r + 1}/${o.rounds}: ${c.name} ...\n`);
        round.push(await measure(c, o, dir, bin, sinkPort));
      }
      rounds.push(round);
    }
    const results = cands.map((c, i) => median(rounds.map((round) => round[i]!)));
    console.log("\n" + table(results));
    const r = ratios(results);
    if (r !== "") console.log("\n" + r);
    const out =
      o.json ??
      join(
        root,
        "bench",
        "results",
        `hbone-${new Date().toISOString().replace(/[:.]/g, "-")}.json`,
      );
    mkdirSync(join(out, ".."), { recursive: true });
    writeFileSync(out, JSON.stringify({ options: o, candidates: cands, results, rounds }, null, 2));
    console.log(`\nresults: ${out}`);
  } finally {
    if (sink !== undefined) await stop(sink);
    rmSync(dir, { recursive: true, force: true });
  }
}
