/**
 * Regenerates the TypeScript for the .proto files under proto/ (`npm run gen`).
 *
 *   node scripts/gen-proto.ts            writes src/lib/gen (committed, never edited by hand)
 *   node scripts/gen-proto.ts <dir>      writes <dir> instead (used by the drift test)
 *
 * Runs the buf CLI and the protoc-gen-es plugin installed in node_modules, with the options in
 * buf.gen.yaml; no remote plugins or modules, so it works with only the npm registry reachable.
 * buf.gen.yaml sets `clean: true`, so the output directory is emptied first; to keep that from
 * ever deleting something else, an existing directory is only accepted when it holds nothing
 * but generated files.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { delimiter, dirname, join, relative, resolve } from "node:path";
import { parse } from "yaml";

const root = resolve(import.meta.dirname, "..");
const templatePath = join(root, "buf.gen.yaml");
const defaultOut = join(root, "src", "lib", "gen");

/** Files under dir that protoc-gen-es would not have written (anything but `*_pb.ts`). */
function foreignFiles(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) foreignFiles(p, out);
    else if (!e.name.endsWith("_pb.ts")) out.push(p);
  }
  return out;
}

function fail(message: string): never {
  console.error(`gen-proto: ${message}`);
  process.exit(1);
}

const args = process.argv.slice(2);
if (args.length > 1 || args[0] === "-h" || args[0] === "--help") {
  fail("usage: node scripts/gen-proto.ts [output-directory]");
}
const out = args[0] === undefined ? defaultOut : resolve(args[0]);

if (existsSync(out)) {
  if (!statSync(out).isDirectory()) fail(`${out} exists and is not a directory`);
  const foreign = foreignFiles(out);
  if (foreign.length > 0) {
    fail(
      `refusing to clean ${out}: it holds files that are not generated code ` +
        `(${foreign.slice(0, 3).join(", ")}${foreign.length > 3 ? ", ..." : ""})`,
    );
  }
}

// buf.gen.yaml stays the single source of options; only the output directory is swapped in.
const template = parse(readFileSync(templatePath, "utf8")) as {
  plugins?: { out?: string }[];
};
const plugins = template.plugins ?? [];
if (plugins.length !== 1) fail(`${templatePath}: expected exactly one plugin`);
for (const plugin of plugins) plugin.out = out;

const bufBin = join(root, "node_modules", ".bin", "buf");
if (!existsSync(bufBin)) fail(`${bufBin} not found; run the project's npm install first`);

const result = spawnSync(bufBin, ["generate", "--template", JSON.stringify(template)], {
  cwd: root,
  stdio: ["ignore", "inherit", "inherit"],
  // protoc-gen-es starts with `#!/usr/bin/env node`: put this Node (24) first so the system's
  // older node is never picked.
  env: {
    ...process.env,
    PATH: [dirname(process.execPath), process.env["PATH"] ?? ""].join(delimiter),
  },
});
if (result.error !== undefined) fail(`could not run buf: ${result.error.message}`);
if (result.status !== 0) fail(`buf generate failed (exit ${result.status ?? result.signal})`);

const shown = relative(process.cwd(), out);
console.log(`gen-proto: wrote ${shown.startsWith("..") ? out : shown || "."}`);
