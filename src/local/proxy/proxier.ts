/**
 * kube-proxy for one node: keeps the iptables rules of its network namespace (where the
 * kubelet runs) in line with Services, pods and EndpointSlices from the shared config store.
 * Changes are coalesced; a sync regenerates everything and applies it in one
 * `iptables-restore --noflush` (atomic per table), and only when the rules differ.
 */
import type { ConfigStore } from "../../lib/config/index.ts";
import { run, runChecked } from "../../lib/exec.ts";
import type { Json } from "../../lib/kube-api/index.ts";
import type { Logger } from "../../lib/log/index.ts";
import { servicePorts } from "./endpoints.ts";
import { JUMPS, isOurChain, renderRules } from "./rules.ts";

export interface ProxierOptions {
  readonly store: ConfigStore;
  readonly log: Logger;
  /** Run iptables in this namespace (path); the caller's own when absent. */
  readonly netnsPath?: string;
  /** Quiet time before a sync after a change. */
  readonly debounceMs?: number;
}

export class Proxier {
  readonly #opts: ProxierOptions;
  #unsubscribe: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #syncing: Promise<void> | undefined;
  #again = false;
  #last = "";
  #closed = false;
  /** Rules applied so far (for tests and debugging). */
  syncs = 0;

  constructor(opts: ProxierOptions) {
    this.#opts = opts;
  }

  #exec(cmd: string, args: string[], input?: string) {
    return runChecked(cmd, args, {
      errorCode: "PROXY_IPTABLES_FAILED",
      ...(this.#opts.netnsPath !== undefined ? { netns: this.#opts.netnsPath } : {}),
      ...(input !== undefined ? { input } : {}),
    });
  }

  async start(): Promise<void> {
    await this.sync();
    await this.#ensureJumps();
    this.#unsubscribe = this.#opts.store.subscribe(() => this.#schedule(), {
      kinds: ["Service", "Pod", "EndpointSlice"],
    });
  }

  #schedule(): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.sync().catch((err: unknown) => {
        this.#opts.log.error("kube-proxy sync failed; retrying", {
          error: err instanceof Error ? err.message : String(err),
        });
        setTimeout(() => this.#schedule(), 1000).unref();
      });
    }, this.#opts.debounceMs ?? 50);
  }

  /** Regenerates and applies the rules now (coalescing concurrent calls). */
  sync(): Promise<void> {
    if (this.#syncing) {
      this.#again = true;
      return this.#syncing;
    }
    this.#syncing = (async () => {
      try {
        do {
          this.#again = false;
          await this.#syncOnce();
        } while (this.#again && !this.#closed);
      } finally {
        this.#syncing = undefined;
      }
    })();
    return this.#syncing;
  }

  async #natChains(): Promise<string[]> {
    const text = await this.#exec("iptables-save", ["-t", "nat"]);
    return text
      .split("\n")
      .filter((l) => l.startsWith(":"))
      .map((l) => l.slice(1).split(" ")[0]!);
  }

  async #syncOnce(): Promise<void> {
    const s = this.#opts.store;
    const ports = servicePorts(
      s.list("Service") as unknown as Json[],
      s.list("Pod") as unknown as Json[],
      s.list("EndpointSlice").map((e) => ({ ...(e as unknown as Json), ...e.spec })),
    );
    const existing = await this.#natChains();
    const text = renderRules(ports, existing);
    // Stale chains appear in the text as deletions, so any change shows up here.
    if (text === this.#last) return;
    await this.#exec("iptables-restore", ["--noflush", "-w", "5"], text);
    this.#last = text;
    this.syncs++;
    this.#opts.log.debug("kube-proxy rules applied", {
      servicePorts: ports.length,
      endpoints: ports.reduce((n, p) => n + p.endpoints.length, 0),
    });
  }

  async #ensureJumps(): Promise<void> {
    for (const [table, chain, rule] of JUMPS) {
      const check = await run("iptables", ["-w", "5", "-t", table, "-C", chain, ...rule], {
        ...(this.#opts.netnsPath !== undefined ? { netns: this.#opts.netnsPath } : {}),
      });
      if (check.code !== 0)
        await this.#exec("iptables", ["-w", "5", "-t", table, "-I", chain, "1", ...rule]);
    }
  }

  /** Stops syncing; with `removeRules`, deletes every rule and chain it made. */
  async close(removeRules: boolean): Promise<void> {
    this.#closed = true;
    this.#unsubscribe?.();
    clearTimeout(this.#timer);
    await this.#syncing?.catch(() => {});
    if (!removeRules) return;
    for (const [table, chain, rule] of JUMPS) {
      for (let i = 0; i < 10; i++) {
        const r = await run("iptables", ["-w", "5", "-t", table, "-D", chain, ...rule], {
          ...(this.#opts.netnsPath !== undefined ? { netns: this.#opts.netnsPath } : {}),
        });
        if (r.code !== 0) break;
      }
    }
    const nat = (await this.#natChains()).filter((c) => isOurChain(c) || c.startsWith("KUBE-"));
    const lines = [
      "*nat",
      ...nat.map((c) => `:${c} - [0:0]`),
      ...nat.map((c) => `-X ${c}`),
      "COMMIT",
      "*filter",
      ":KUBE-SERVICES - [0:0]",
      "-X KUBE-SERVICES",
      "COMMIT",
    ];
    await this.#exec("iptables-restore", ["--noflush", "-w", "5"], lines.join("\n") + "\n");
    this.#opts.log.info("kube-proxy rules removed");
  }
}
