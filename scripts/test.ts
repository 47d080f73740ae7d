/**
 * The README's test command. Runs every layer in order — static checks, unit, integration,
 * end-to-end — and exits non-zero if any step fails. `node scripts/test.ts unit` (or `static`,
 * `integration`, `e2e`) runs one layer; extra arguments after `--` go to `node --test`.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

type Layer = "static" | "unit" | "integration" | "e2e";
const layers: readonly Layer[] = ["static", "unit", "integration", "e2e"];

const root = join(import.meta.dirname, "..");
const bin = (name: string) => join(root, "node_modules", ".bin", name);

const argv = process.argv.slice(2);
const dash = argv.indexOf("--");
const selected = (dash === -1 ? argv : argv.slice(0, dash)) as Layer[];
const passThrough = dash === -1 ? [] : argv.slice(dash + 1);
for (const l of selected) {
  if (!layers.includes(l)) {
    console.error(`unknown test layer "${l}"; expected one of: ${layers.join(", ")}`);
    process.exit(2);
  }
}
const run = selected.length > 0 ? selected : layers;

function findTests(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== "node_modules" && e.name !== "gen") findTests(p, out);
    } else if (e.name.endsWith(".test.ts")) {
      out.push(p);
    }
  }
  return out.sort();
}

const results: { step: string; ok: boolean; seconds: number }[] = [];

function step(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): void {
  console.log(`\n=== ${name}: ${[cmd, ...args].join(" ")}`);
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env: { ...process.env, ...env } });
  const ok = r.status === 0;
  results.push({ step: name, ok, seconds: (performance.now() - t0) / 1000 });
}

function nodeTest(name: string, files: string[], extra: string[]): void {
  if (files.length === 0) {
    console.log(`\n=== ${name}: no test files`);
    results.push({ step: name, ok: true, seconds: 0 });
    return;
  }
  step(name, process.execPath, [
    "--test",
    "--test-reporter=spec",
    ...extra,
    ...passThrough,
    ...files,
  ]);
}

for (const layer of run) {
  switch (layer) {
    case "static":
      step("typecheck", bin("tsc"), ["--noEmit", "-p", "tsconfig.json"]);
      step("lint", bin("eslint"), ["--max-warnings", "0", "."]);
      step("format", bin("prettier"), ["--check", "--log-level", "warn", "."]);
      step("boundaries", process.execPath, [join(root, "scripts", "check-boundaries.ts")]);
      break;
    case "unit":
      nodeTest("unit", findTests(join(root, "src")), ["--test-timeout=60000"]);
      break;
    case "integration":
      nodeTest("integration", findTests(join(root, "test", "integration")), [
        "--test-timeout=300000",
        "--test-concurrency=1",
      ]);
      break;
    case "e2e": {
      const files = findTests(join(root, "test", "e2e"));
      if (files.length > 0 && process.getuid?.() !== 0) {
        console.error("\n=== e2e: end-to-end tests need root (network namespaces); run as root");
        results.push({ step: "e2e", ok: false, seconds: 0 });
        break;
      }
      nodeTest("e2e", files, ["--test-timeout=600000", "--test-concurrency=1"]);
      break;
    }
  }
}

console.log("\n=== summary");
for (const r of results) {
  console.log(`${r.ok ? "pass" : "FAIL"}  ${r.step.padEnd(12)} ${r.seconds.toFixed(1)}s`);
}
process.exit(results.every((r) => r.ok) ? 0 : 1);
