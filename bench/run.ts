/**
 * Benchmark dispatcher: `npm run bench -- <name> [options]` runs bench/<name>/index.ts's `run`.
 * Each benchmark measures the mesh side by side with its baselines in the same run and prints the
 * command-line it was given, so BENCHMARKS.md can quote it.
 */
const benchmarks: Record<string, () => Promise<{ run(argv: readonly string[]): Promise<void> }>> = {
  hbone: () => import("./hbone/index.ts"),
  "control-plane": () => import("./control-plane/index.ts"),
};

const [name, ...rest] = process.argv.slice(2);
const load = name === undefined ? undefined : benchmarks[name];
if (load === undefined) {
  console.error(
    `usage: npm run bench -- <name> [options]\nbenchmarks: ${Object.keys(benchmarks).join(", ")}`,
  );
  process.exit(2);
}
console.log(`$ npm run bench -- ${[name, ...rest].join(" ")}`);
const mod = await load();
await mod.run(rest);
