/**
 * Helpers for the redirection-rule tests: throwaway network namespaces and small TCP/UDP
 * programs run inside them (`ip netns exec`). Every namespace and process is tracked and removed
 * by `cleanup()`, also when a test fails.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";

const node = process.execPath;
const probeScript = join(import.meta.dirname, "rules-probe.ts");

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: "utf8", input: input ?? "", stdio: "pipe" });
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error("this test needs root (it creates network namespaces); run it as root");
  }
}

export class Sandbox {
  readonly prefix: string;
  readonly #namespaces: string[] = [];
  readonly #children: ChildProcess[] = [];

  constructor(tag: string) {
    this.prefix = `amb-${tag}-${process.pid}`;
  }

  /** Creates `<prefix>-<suffix>` with lo up; returns its name. */
  netns(suffix: string): string {
    const name = `${this.prefix}-${suffix}`;
    sh("ip", ["netns", "add", name]);
    this.#namespaces.push(name);
    sh("ip", ["-n", name, "link", "set", "lo", "up"]);
    return name;
  }

  /** Connects two namespaces with a veth pair named `ifA`/`ifB` and brings both ends up. */
  link(nsA: string, ifA: string, addrA: string, nsB: string, ifB: string, addrB: string): void {
    sh("ip", ["-n", nsA, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", nsB]);
    sh("ip", ["-n", nsA, "addr", "add", addrA, "dev", ifA]);
    sh("ip", ["-n", nsB, "addr", "add", addrB, "dev", ifB]);
    sh("ip", ["-n", nsA, "link", "set", ifA, "up"]);
    sh("ip", ["-n", nsB, "link", "set", ifB, "up"]);
  }

  /** Starts a long-running probe program in `ns`; resolves when it prints "ready". */
  async serve(ns: string, ...args: string[]): Promise<void> {
    const child = spawn("ip", ["netns", "exec", ns, node, probeScript, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#children.push(child);
    await new Promise<void>((resolve, reject) => {
      let out = "";
      let err = "";
      const timer = setTimeout(
        () => reject(new Error(`${args.join(" ")} in ${ns}: not ready`)),
        10_000,
      );
      child.stderr.on("data", (b: Buffer) => (err += b.toString()));
      child.stdout.on("data", (b: Buffer) => {
        out += b.toString();
        if (out.includes("ready\n")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`${args.join(" ")} in ${ns} exited with ${code}: ${err}`));
      });
    });
  }

  /** Runs a probe client in `ns` and returns what it printed (one JSON line). */
  async client(ns: string, ...args: string[]): Promise<Record<string, unknown>> {
    return JSON.parse(await this.exec(ns, node, probeScript, ...args)) as Record<string, unknown>;
  }

  /** Runs any command in `ns` to completion (10 s limit) and returns its stdout. */
  exec(ns: string, ...cmd: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn("ip", ["netns", "exec", ns, ...cmd], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      this.#children.push(child);
      let out = "";
      let err = "";
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      child.stdout.on("data", (b: Buffer) => (out += b.toString()));
      child.stderr.on("data", (b: Buffer) => (err += b.toString()));
      child.on("close", (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else reject(new Error(`${cmd.join(" ")} in ${ns} exited with ${code}: ${err.trim()}`));
      });
    });
  }

  path(ns: string): string {
    return `/run/netns/${ns}`;
  }

  cleanup(): void {
    for (const c of this.#children)
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    for (const ns of this.#namespaces.reverse()) {
      try {
        sh("ip", ["netns", "del", ns]);
      } catch {
        // already gone
      }
    }
  }
}

/** iptables-save output without comments, counters or built-in chain headers, tables in a fixed order. */
export function normaliseSave(text: string): string {
  const blocks = new Map<string, string[]>();
  let cur: string[] | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    if (line.startsWith("*")) {
      cur = [line];
      blocks.set(line.slice(1), cur);
    } else if (/^:[A-Z]+ (ACCEPT|DROP) /.test(line)) {
      continue;
    } else {
      cur?.push(line);
    }
  }
  const order = ["mangle", "nat", "raw", "filter", "security"];
  return [...blocks.keys()]
    .sort((a, b) => order.indexOf(a) - order.indexOf(b))
    .map((t) => blocks.get(t)!.join("\n"))
    .join("\n");
}

/** The `<tool> --noflush` section of a golden file. */
export function goldenSection(
  golden: string,
  tool: "iptables-restore" | "ip6tables-restore",
): string {
  const start = golden.indexOf(`# ${tool} --noflush\n`);
  if (start === -1) return "";
  const body = golden.slice(start).split("\n").slice(1);
  const end = body.indexOf("");
  return normaliseSave(body.slice(0, end).join("\n"));
}
