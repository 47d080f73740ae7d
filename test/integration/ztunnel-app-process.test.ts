/**
 * `ambient ztunnel` as a real process: flags and --help, every bad variable reported at start,
 * static mode serving config_dump and readiness, and SIGTERM draining to exit code 0 within the
 * termination deadline (the process must not hang on a leftover timer or socket).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

const root = join(import.meta.dirname, "..", "..");
const cli = join(root, "src", "cli", "main.ts");
const dir = mkdtempSync(join(tmpdir(), "ztunnel-proc-"));
const children: ChildProcess[] = [];

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** The environment without anything ztunnel would read from the developer's shell. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...extra };
  return env;
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("ambient ztunnel (process)", () => {
  it("--help lists the flags with their variables", () => {
    const r = spawnSync(process.execPath, [cli, "ztunnel", "--help"], {
      env: cleanEnv(),
      encoding: "utf8",
    });
    assert.equal(r.status, 0);
    assert.match(r.stdout, /usage: ambient ztunnel \[flags\]/);
    for (const v of [
      "XDS_ADDRESS",
      "CA_ADDRESS",
      "AUTH_TOKEN",
      "LOCAL_XDS_PATH",
      "FAKE_CA",
      "RUST_LOG",
    ]) {
      assert.ok(r.stdout.includes(`[${v}]`), v);
    }
  });

  it("refuses an unknown flag, and reports every bad variable at once", () => {
    const flag = spawnSync(process.execPath, [cli, "ztunnel", "--bogus"], {
      env: cleanEnv(),
      encoding: "utf8",
    });
    assert.equal(flag.status, 2);
    assert.match(flag.stderr, /unknown flag --bogus/);
    const bad = spawnSync(process.execPath, [cli, "ztunnel", "--secret-ttl", "forever"], {
      env: cleanEnv({ PROXY_MODE: "sidecar", RUST_LOG: "info,xds=loud" }),
      encoding: "utf8",
    });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /invalid ztunnel configuration/);
    for (const v of ["SECRET_TTL", "PROXY_MODE", "RUST_LOG"])
      assert.match(bad.stderr, new RegExp(`^  ${v}: `, "m"));
  });

  it("runs static mode and exits 0 on SIGTERM after draining", async () => {
    const local = join(dir, "local.yaml");
    writeFileSync(
      local,
      `workloads:
- {uid: Kubernetes//Pod/default/app-1, name: app-1, namespace: default, serviceAccount: app, workloadIps: [198.18.3.10], protocol: HBONE, node: node-a}
`,
    );
    const child = spawn(
      process.execPath,
      [
        cli,
        "ztunnel",
        "--local-xds-path",
        local,
        "--fake-ca",
        "--node-name",
        "node-a",
        "--inpod-enabled",
        "false",
        "--termination-deadline",
        "2s",
        "--admin-address",
        "127.0.0.1:0",
        "--metrics-address",
        "127.0.0.1:0",
        "--readiness-address",
        "127.0.0.1:0",
      ],
      { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] },
    );
    children.push(child);
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.stdout.resume();
    const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;

    const port = (name: string) =>
      Number(
        new RegExp(`${name} server listening address=127\\.0\\.0\\.1:(\\d+)`).exec(stderr)?.[1],
      );
    await until(() => stderr.includes("ztunnel started"), "start-up");
    const ready = `http://127.0.0.1:${port("readiness")}/healthz/ready`;
    await until(async () => (await fetch(ready)).status === 200, "readiness");
    const dump = (await (await fetch(`http://127.0.0.1:${port("admin")}/config_dump`)).json()) as {
      workloads: { uid: string }[];
      certificates: { identity: string; state: string }[];
    };
    assert.deepEqual(
      dump.workloads.map((w) => w.uid),
      ["Kubernetes//Pod/default/app-1"],
    );
    assert.deepEqual(
      dump.certificates.map((c) => [c.identity, c.state]),
      [["spiffe://cluster.local/ns/default/sa/app", "Available"]],
    );

    child.kill("SIGTERM");
    // The deadline is 2 s; give the process that plus slack before calling it hung.
    const timer = setTimeout(() => child.kill("SIGKILL"), 2000 + 3000);
    const [code, signal] = await exited;
    clearTimeout(timer);
    assert.equal(signal, null, `ztunnel did not exit by itself:\n${stderr}`);
    assert.equal(code, 0);
    assert.match(stderr, /shutting down: draining reason=SIGTERM deadline_ms=2000/);
    assert.match(stderr, /ztunnel stopped reason=SIGTERM/);
  });
});
