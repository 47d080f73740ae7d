/**
 * tcp-echo sample: a TCP server that sends back every byte it receives, on one or more ports.
 * With a prefix (like Istio's tcp-echo sample: `hello`), each line comes back as
 * `<prefix> <line>`; without one, bytes come back unchanged. A client's FIN is honoured: the
 * server finishes echoing what it received, then closes its side. Reading pauses whenever the
 * client does not read its echo fast enough (backpressure), so large transfers use bounded memory.
 *
 * Usage: node examples/tcp-echo/tcp-echo.ts [<port>[,<port>...] [<prefix>]]
 * Env (arguments win): TCP_ECHO_PORTS (9000), TCP_ECHO_PREFIX (none), HOST, ACCESS_LOG,
 * SHUTDOWN_GRACE_MS.
 */
import net from "node:net";
import { EnvReader, runMain } from "../common/env.ts";
import { peerAddress } from "../common/http-app.ts";
import { AppLog } from "../common/log.ts";
import { onShutdown } from "../common/shutdown.ts";

export interface TcpEchoConfig {
  readonly host: string | undefined;
  readonly ports: readonly number[];
  readonly prefix: string;
  readonly accessLog: boolean;
  readonly graceMs: number;
}

// Larger socket buffers than the 16 KiB default: fewer pause/resume cycles on bulk echo.
const SOCKET_HIGH_WATER_MARK = 256 * 1024;
const NEWLINE = 0x0a;

export function loadTcpEchoConfig(env: NodeJS.ProcessEnv, args: readonly string[]): TcpEchoConfig {
  const r = new EnvReader(env);
  const portsText = args[0] ?? r.string("TCP_ECHO_PORTS", "9000");
  const ports: number[] = [];
  for (const p of portsText.split(",")) {
    const t = p.trim();
    const n = Number(t);
    if (!/^\d{1,5}$/.test(t) || n > 65535) r.problem(`port "${t}" in "${portsText}" is not a port`);
    else ports.push(n);
  }
  const fixed = ports.filter((p) => p !== 0);
  if (new Set(fixed).size !== fixed.length) r.problem(`ports "${portsText}" repeat a port`);
  const host = r.string("HOST", "");
  const config: TcpEchoConfig = {
    host: host === "" ? undefined : host,
    ports,
    prefix: args[1] ?? r.stringOrEmpty("TCP_ECHO_PREFIX", ""),
    accessLog: r.bool("ACCESS_LOG", true),
    graceMs: r.int("SHUTDOWN_GRACE_MS", 5000, 0, 600_000),
  };
  if (config.prefix.includes("\n")) r.problem("the prefix must not contain a newline");
  r.done("tcp-echo");
  return Object.freeze(config);
}

/**
 * Echo with a prefix at the start of every line. Streams: nothing is buffered waiting for a
 * newline, so a transfer with no newlines at all still flows with bounded memory.
 */
class PrefixEcho {
  readonly #socket: net.Socket;
  readonly #prefix: Buffer;
  #atLineStart = true;

  constructor(socket: net.Socket, prefix: Buffer) {
    this.#socket = socket;
    this.#prefix = prefix;
    socket.on("data", this.#onData);
    socket.on("drain", this.#onDrain);
    socket.on("end", this.#onEnd);
  }

  readonly #onData = (chunk: Buffer): void => {
    const socket = this.#socket;
    let ok = true;
    let start = 0;
    socket.cork();
    while (start < chunk.length) {
      if (this.#atLineStart) {
        ok = socket.write(this.#prefix) && ok;
        this.#atLineStart = false;
      }
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl === -1 ? chunk.length : nl + 1;
      ok = socket.write(chunk.subarray(start, end)) && ok;
      if (nl !== -1) this.#atLineStart = true;
      start = end;
    }
    socket.uncork();
    if (!ok) socket.pause();
  };

  readonly #onDrain = (): void => {
    this.#socket.resume();
  };

  readonly #onEnd = (): void => {
    // The client sent FIN: everything it sent has been queued; close our side after it.
    this.#socket.end();
  };
}

export interface RunningTcpEcho {
  readonly host: string;
  readonly ports: readonly number[];
  close(graceMs: number): Promise<void>;
}

export async function startTcpEcho(config: TcpEchoConfig, log: AppLog): Promise<RunningTcpEcho> {
  const prefix = config.prefix === "" ? undefined : Buffer.from(`${config.prefix} `);
  const sockets = new Set<net.Socket>();
  const servers: net.Server[] = [];

  const onConnection = (socket: net.Socket): void => {
    sockets.add(socket);
    const start = performance.now();
    const peer = `${peerAddress(socket.remoteAddress)}:${socket.remotePort ?? 0}`;
    const port = socket.localPort;
    // This handler owns the socket's errors: a reset mid-echo is an ordinary end of a client.
    socket.on("error", () => socket.destroy());
    socket.once("close", () => {
      sockets.delete(socket);
      log.access("connection", {
        port,
        peer,
        bytes_in: socket.bytesRead,
        bytes_out: socket.bytesWritten,
        duration_ms: Math.round(performance.now() - start),
      });
    });
    if (prefix === undefined) socket.pipe(socket);
    else new PrefixEcho(socket, prefix);
  };

  try {
    for (const port of config.ports) {
      const server = net.createServer(
        { allowHalfOpen: true, noDelay: true, highWaterMark: SOCKET_HIGH_WATER_MARK },
        onConnection,
      );
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        const opts: net.ListenOptions = { port, backlog: 1024 };
        if (config.host !== undefined) opts.host = config.host;
        server.listen(opts, () => {
          server.off("error", reject);
          resolve();
        });
      });
      servers.push(server);
    }
  } catch (err) {
    for (const s of servers) s.close();
    throw err;
  }
  const bound = servers.map((s) => (s.address() as net.AddressInfo).port);
  const host = (servers[0]?.address() as net.AddressInfo | undefined)?.address ?? "";
  for (const p of bound) log.info("listening", { host, port: p, prefix: config.prefix });

  return {
    host,
    ports: bound,
    close(graceMs) {
      return new Promise<void>((resolve) => {
        let open = servers.length;
        if (open === 0) resolve();
        const deadline = setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, graceMs);
        for (const s of servers) {
          s.close(() => {
            if (--open === 0) {
              clearTimeout(deadline);
              resolve();
            }
          });
        }
      });
    },
  };
}

if (import.meta.main) {
  runMain(async () => {
    const config = loadTcpEchoConfig(process.env, process.argv.slice(2));
    const log = new AppLog("tcp-echo", { access: config.accessLog });
    const app = await startTcpEcho(config, log);
    onShutdown(log, config.graceMs, () => app.close(config.graceMs));
  });
}
