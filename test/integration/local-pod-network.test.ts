/**
 * Pods added to and removed from the local network one at a time (root, real namespaces), by
 * two processes at once as two kubelets do: every pod gets its own address on its node's range,
 * nothing is lost to the other process's writes, the pod's namespace is plumbed and reaches a
 * pod on the other node, and removing pods releases their addresses and namespaces.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, describe, it } from "node:test";
import {
  networkDown,
  networkUp,
  podNetns,
  podNetworkDown,
  readState,
} from "../../src/local/network/index.ts";

const run = promisify(execFile);
const child = join(import.meta.dirname, "local-pod-network-child.ts");
const probe = join(import.meta.dirname, "netns-probe.ts");

describe("local pod network (per pod, concurrent processes)", () => {
  const cluster = `pn${process.pid}`;
  const base = mkdtempSync(join(tmpdir(), "amb-podnet-test-"));
  const stateDir = join(base, "state");
  after(async () => {
    await networkDown(cluster, { stateDir, force: true }).catch(() => {});
    rmSync(base, { recursive: true, force: true });
  });

  it("gives each pod its own address whatever the interleaving, and releases them", async () => {
    if (process.getuid?.() !== 0) throw new Error("this test needs root (network namespaces)");
    await networkUp({ cluster, nodes: [{ name: "n1" }, { name: "n2" }] }, { stateDir });
    const names = (node: string) => Array.from({ length: 6 }, (_, i) => `${node}-p${i}`);
    // Four processes, two per node, three pods each: the state lock sees real contention.
    const outs = await Promise.all(
      ["n1", "n2"].flatMap((node) =>
        [names(node).slice(0, 3), names(node).slice(3)].map((part) =>
          run(process.execPath, [child, cluster, stateDir, node, ...part], { timeout: 120_000 }),
        ),
      ),
    );
    const ips: Record<string, string> = {};
    for (const o of outs) Object.assign(ips, JSON.parse(o.stdout) as Record<string, string>);
    assert.equal(Object.keys(ips).length, 12);
    assert.equal(new Set(Object.values(ips)).size, 12, `unique addresses: ${JSON.stringify(ips)}`);
    const { state } = await readState(stateDir);
    assert.equal(state?.spec?.pods?.length, 12, "every pod recorded");
    for (const [name, ip] of Object.entries(ips)) {
      assert.match(ip, name.startsWith("n1") ? /^198\.19\.0\./ : /^198\.19\.1\./);
      assert.equal(state?.ipam?.pods[`demo/${name}`]?.ip, ip);
      const addrs = execFileSync(
        "ip",
        ["-n", podNetns(cluster, "demo", name), "-4", "-o", "addr", "show", "eth0"],
        { encoding: "utf8" },
      );
      assert.match(addrs, new RegExp(`inet ${ip.replace(/\./g, "\\.")}/32`));
    }
    // Across nodes: a pod on n1 reaches a pod on n2.
    const server = spawn(
      "ip",
      [
        "netns",
        "exec",
        podNetns(cluster, "demo", "n2-p3"),
        process.execPath,
        probe,
        "serve",
        "7000",
        "n2-p3",
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("probe server not ready")), 10_000);
        server.stdout.on("data", (d: Buffer) => {
          if (d.toString().includes("ready")) {
            clearTimeout(t);
            resolve();
          }
        });
      });
      const got = execFileSync(
        "ip",
        [
          "netns",
          "exec",
          podNetns(cluster, "demo", "n1-p0"),
          process.execPath,
          probe,
          "reach",
          "7000",
          ips["n2-p3"]!,
        ],
        { encoding: "utf8", timeout: 15_000 },
      );
      assert.deepEqual(JSON.parse(got), { [ips["n2-p3"]!]: "n2-p3" });
    } finally {
      server.kill("SIGKILL");
    }

    for (const name of [...names("n1"), ...names("n2")].slice(0, 6)) {
      await podNetworkDown(cluster, { namespace: "demo", name }, { stateDir });
    }
    const after2 = (await readState(stateDir)).state;
    assert.equal(after2?.spec?.pods?.length, 6);
    assert.equal(Object.keys(after2?.ipam?.pods ?? {}).length, 6);
    const left = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
    assert.doesNotMatch(left, new RegExp(`${podNetns(cluster, "demo", "n1-p0")}\\b`));
    assert.match(left, new RegExp(podNetns(cluster, "demo", "n2-p0")));
  });
});
