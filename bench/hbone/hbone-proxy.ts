/**
 * One side of the benchmarked HBONE pair, as a process:
 *
 *   outbound (proxy A): plain TCP listener → HBONE client (pooled) → proxy B
 *   inbound  (proxy B): HBONE server → plain TCP to the sink (the authority)
 *
 *   node bench/hbone/hbone-proxy.ts <outbound|inbound> <listenPort> <certs.json> <workers>
 *        [<hbonePort> <sinkPort>]        (outbound only)
 *
 * With workers > 1 the process runs that many worker threads, each with its own listener on the
 * same port (SO_REUSEPORT, the kernel spreads connections) and, outbound, its own pool. Prints
 * "ready" once every listener is up.
 */
import * as net from "node:net";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { readFileSync } from "node:fs";
import {
  HboneClient,
  HboneServer,
  clientCopyOptions,
  serverCopyOptions,
  type ClientTuning,
  type ServerTuning,
} from "../../src/lib/hbone/index.ts";
import { parseIdentity, type WorkloadCertificate } from "../../src/lib/identity/index.ts";
import { copyBidirectional, type CopyOptions } from "../../src/lib/net/copy.ts";

interface Args {
  role: "outbound" | "inbound";
  listenPort: number;
  certsFile: string;
  workers: number;
  hbonePort: number;
  sinkPort: number;
}

interface CertFile {
  server: Omit<WorkloadCertificate, "identity" | "notBefore" | "notAfter"> & { identity: string };
  client: Omit<WorkloadCertificate, "identity" | "notBefore" | "notAfter"> & { identity: string };
}

function parseArgs(argv: string[]): Args {
  const [role, listenPort, certsFile, workers, hbonePort, sinkPort] = argv;
  if (role !== "outbound" && role !== "inbound") throw new Error("role: outbound | inbound");
  return {
    role,
    listenPort: Number(listenPort),
    certsFile: certsFile ?? "",
    workers: Math.max(1, Number(workers ?? 1)),
    hbonePort: Number(hbonePort ?? 0),
    sinkPort: Number(sinkPort ?? 0),
  };
}

function loadCert(c: CertFile["server"]): WorkloadCertificate {
  const id = parseIdentity(c.identity);
  if (!id.ok) throw new Error(id.reason);
  return {
    identity: id.value,
    privateKeyPem: c.privateKeyPem,
    chainPem: c.chainPem,
    rootsPem: c.rootsPem,
    notBefore: new Date(0),
    notAfter: new Date(8640000000000000),
  };
}

/**
 * Knobs for comparing steps in one run (the benchmark's variants set them): the copy's buffering
 * (HBONE_COPY_HWM, bytes; 0 = pause as soon as write() returns false) and write coalescing
 * (HBONE_COALESCE=0/1), both defaulting to the library's, and HTTP/2 windows
 * (HBONE_WINDOWS=node: Node's 64 KiB defaults instead of HBONE's).
 */
function knobs(role: Args["role"]): {
  copy: CopyOptions;
  tuning: Partial<ClientTuning & ServerTuning>;
} {
  const env = process.env;
  const hwm = env["HBONE_COPY_HWM"];
  const coalesce = env["HBONE_COALESCE"];
  const copy: CopyOptions = {
    ...(role === "inbound" ? serverCopyOptions : clientCopyOptions),
    ...(hwm !== undefined ? { highWaterMark: Number(hwm) } : {}),
    ...(coalesce !== undefined ? { coalesce: coalesce === "1" } : {}),
  };
  const tuning =
    env["HBONE_WINDOWS"] === "node"
      ? { streamWindowSize: 65535, connectionWindowSize: 65535, frameSize: 16384 }
      : {};
  return { copy, tuning };
}

async function serve(a: Args): Promise<void> {
  const { copy, tuning } = knobs(a.role);
  const certs = JSON.parse(readFileSync(a.certsFile, "utf8")) as CertFile;
  const serverCert = loadCert(certs.server);
  const clientCert = loadCert(certs.client);
  const listen = { port: a.listenPort, host: "127.0.0.1", reusePort: a.workers > 1 };
  if (a.role === "inbound") {
    const server = new HboneServer({
      certificate: serverCert,
      copy,
      tuning,
      hook: (req) =>
        new Promise((resolve) => {
          if (req.authority.kind !== "ip") {
            resolve({ kind: "refuse", status: 503, reason: "not an IP" });
            return;
          }
          const up = net.connect({
            host: req.authority.ip,
            port: req.authority.port,
            noDelay: true,
            allowHalfOpen: true,
          });
          const onError = (): void => resolve({ kind: "refuse", status: 503, reason: "connect" });
          up.once("error", onError);
          up.once("connect", () => {
            up.off("error", onError);
            resolve({ kind: "accept", upstream: up });
          });
        }),
    });
    await server.listen(listen);
    return;
  }
  const client = new HboneClient({ certificates: () => clientCert, tuning });
  const destination = `127.0.0.1:${a.hbonePort}`;
  const authority = `127.0.0.1:${a.sinkPort}`;
  const source = clientCert.identity;
  const expected = [serverCert.identity];
  const done = (): void => {};
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (down) => {
    down.on("error", done);
    client.connect({ source, expected, destination, authority }).then(
      (t) => copyBidirectional(down, t.stream, done, copy),
      () => down.resetAndDestroy(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen, resolve);
  });
}

if (isMainThread) {
  // Exit normally on a signal so --cpu-prof and friends get written.
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => process.exit(0));
  const a = parseArgs(process.argv.slice(2));
  if (a.workers === 1) {
    await serve(a);
    process.stdout.write("ready\n");
  } else {
    let ready = 0;
    for (let i = 0; i < a.workers; i++) {
      const w = new Worker(new URL(import.meta.url), { workerData: a });
      w.on("message", () => {
        if (++ready === a.workers) process.stdout.write("ready\n");
      });
      w.on("error", (err) => {
        console.error(err);
        process.exit(1);
      });
    }
  }
} else {
  await serve(workerData as Args);
  parentPort?.postMessage("ready");
}
