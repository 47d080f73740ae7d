/**
 * Benchmark dispatcher: `npm run bench -- <name> [args]` runs `bench/<name>/run.ts` with the
 * remaining arguments. Each benchmark prints its own results; BENCHMARKS.md records them.
 */
import { existsSync, readdirSync } from "node:fs";
import { spawn } from "node:child_process";
import { join } from "node:path";

const here = import.meta.dirname;
const available = readdirSync(here, { withFileTypes: true })
  .filter((e) => e.isDirectory() && existsSync(join(here, e.name, "run.ts")))
  .map((e) => e.name)
  .sort();
const [name, ...rest] = process.argv.slice(2);
if (name === undefined || !available.includes(name)) {
  console.error(
    `usage: npm run bench -- <name> [args]\nbenchmarks: ${available.join(", ") || "(none)"}`,
  );
  process.exit(name === undefined ? 2 : 1);
}
const child = spawn(process.execPath, [join(here, name, "run.ts"), ...rest], { stdio: "inherit" });
child.on("exit", (code, signal) => {
  process.exitCode = code ?? (signal !== null ? 1 : 0);
});
