/**
 * Shared pieces of the ZDS integration tests: pod network namespaces of this test process
 * (amb-zds-<pid>-<n>, each with one address from 198.18.210.0/24 on a veth pair kept inside it),
 * a test proxy factory that listens in the pod through createInpodListeners and answers every
 * connection with "proxy <uid> <listener>", and small waiting helpers.
 */
import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import type { Socket } from "node:net";
import { promisify } from "node:util";
import { LogOutput, MemorySink, type Logger } from "../../src/lib/log/index.ts";
import {
  createInpodListeners,
  type ProxyHandle,
  type StartProxy,
} from "../../src/ztunnel/inpod/index.ts";

const run = promisify(execFile);

export async function sh(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await run(cmd, args, { timeout: 20_000 });
  return stdout;
}

let seq = 0;

/** A pod's network namespace. */
export class TestPod {
  readonly name: string;
  readonly ip: string;
  readonly uid: string;

  private constructor(name: string, ip: string, uid: string) {
    this.name = name;
    this.ip = ip;
    this.uid = uid;
  }

  get netnsPath(): string {
    return `/run/netns/${this.name}`;
  }

  get info() {
    return { name: `pod-${this.uid}`, namespace: "default", serviceAccount: "sleep" };
  }

  static async create(): Promise<TestPod> {
    const n = seq++;
    const name = `amb-zds-${process.pid}-${n}`;
    const ip = `198.18.210.${n + 1}`;
    await sh("ip", ["netns", "add", name]);
    try {
      await sh("ip", ["-n", name, "link", "set", "lo", "up"]);
      await sh("ip", ["-n", name, "link", "add", "amb0", "type", "veth", "peer", "name", "amb1"]);
      await sh("ip", ["-n", name, "link", "set", "amb1", "up"]);
      await sh("ip", ["-n", name, "addr", "add", `${ip}/24`, "dev", "amb0"]);
      await sh("ip", ["-n", name, "link", "set", "amb0", "up"]);
    } catch (err) {
      await sh("ip", ["netns", "del", name]).catch(() => "");
      throw err;
    }
    return new TestPod(name, ip, `uid-${process.pid}-${n}`);
  }

  exec(cmd: string, args: string[]): Promise<string> {
    return sh("ip", ["netns", "exec", this.name, cmd, ...args]);
  }

  /** Listening sockets in the pod: "proto addr:port mark" per line of `ss -lntue`. */
  async listening(): Promise<{ proto: string; local: string; mark: string | undefined }[]> {
    const out = await this.exec("ss", ["-lntueH"]);
    return out
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => {
        const cols = l.trim().split(/\s+/);
        return {
          proto: cols[0] ?? "",
          local: cols[4] ?? "",
          mark: /fwmark:(0x[0-9a-f]+)/.exec(l)?.[1],
        };
      });
  }

  /** Connects from inside the pod with bash's /dev/tcp and returns what the server sent. */
  async connect(address: string, port: number): Promise<string> {
    return (
      await this.exec("timeout", [
        "5",
        "bash",
        "-c",
        `exec 3<>/dev/tcp/${address}/${port}; cat <&3`,
      ])
    ).trim();
  }

  async destroy(): Promise<void> {
    await sh("ip", ["netns", "del", this.name]);
  }
}

export function fdCount(): number {
  return readdirSync("/proc/self/fd").length;
}

/** Polls `check` every 10 ms until it is true; fails with `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A logger writing to memory (the lines stay inspectable, the test output clean). */
export function memoryLogger(scope: string): { log: Logger; sink: MemorySink } {
  const sink = new MemorySink();
  return {
    sink,
    log: new LogOutput({ sink, spec: { defaultLevel: "debug", scopes: new Map() } }).logger(scope),
  };
}

/**
 * A stand-in for ztunnel's per-pod proxy: the real in-pod listeners, each answering
 * "proxy <uid> <listener>\n" and closing. `failing` uids fail to start.
 */
export class TestProxies {
  readonly failing = new Set<string>();
  started = 0;
  stopped = 0;
  readonly running = new Map<string, number>();

  readonly start: StartProxy = async ({ uid, netnsFd }) => {
    if (this.failing.has(uid)) throw new Error(`test proxy for ${uid} refuses to start`);
    const open = new Set<Socket>();
    const reply = (listener: string) => (s: Socket) => {
      open.add(s);
      s.on("close", () => open.delete(s));
      s.on("error", () => s.destroy());
      s.end(`proxy ${uid} ${listener}\n`);
    };
    const listeners = await createInpodListeners(netnsFd, {
      outbound: reply("outbound"),
      inboundPlaintext: reply("inbound-plaintext"),
      inbound: reply("inbound"),
      dns: {
        tcp: reply("dns"),
        udp: (msg, remote, sock) => sock.send(msg, remote.port, remote.address),
      },
    });
    this.started++;
    this.running.set(uid, (this.running.get(uid) ?? 0) + 1);
    const handle: ProxyHandle = {
      stop: async () => {
        for (const s of open) s.destroy();
        await listeners.close();
        this.stopped++;
        const n = (this.running.get(uid) ?? 1) - 1;
        if (n === 0) this.running.delete(uid);
        else this.running.set(uid, n);
      },
    };
    return handle;
  };
}
