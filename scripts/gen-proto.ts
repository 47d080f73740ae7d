/**
 * Regenerates the TypeScript for the .proto files under proto/ (`npm run gen`).
 *
 *   node scripts/gen-proto.ts            writes src/lib/gen (committed, never edited by hand)
 *   node scripts/gen-proto.ts <dir>      writes <dir> instead (used by the drift test)
 *
 * Runs `protoc` (Debian's protobuf-compiler, which also ships the well-known types under
 * /usr/include) with the protoc-gen-es plugin installed in node_modules. buf's npm package is not
 * used: this registry lacks its other platforms' binaries, which breaks `npm ci`.
 * The output directory is emptied first; to keep that from ever deleting something else, an
 * existing directory is only accepted when it holds nothing but generated files.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { delimiter, dirname, join, relative, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const protoDir = join(root, "proto");
const defaultOut = join(root, "src", "lib", "gen");
// target=ts with .ts imports and erasable enums, so Node's type stripping runs the output.
const pluginOptions = "target=ts,import_extension=ts,erasable_syntax=true";

/** Files under dir that protoc-gen-es would not have written (anything but `*_pb.ts`). */
function foreignFiles(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) foreignFiles(p, out);
    else if (!e.name.endsWith("_pb.ts")) out.push(p);
  }
  return out;
}

function protoFiles(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) protoFiles(p, out);
    else if (e.name.endsWith(".proto")) out.push(relative(protoDir, p));
  }
  return out.sort();
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
  rmSync(out, { recursive: true });
}
mkdirSync(out, { recursive: true });

const plugin = join(root, "node_modules", ".bin", "protoc-gen-es");
if (!existsSync(plugin)) fail(`${plugin} not found; run the project's npm ci first`);

const result = spawnSync(
  "protoc",
  [
    `--proto_path=${protoDir}`,
    "--proto_path=/usr/include",
    `--plugin=protoc-gen-es=${plugin}`,
    `--es_out=${out}`,
    `--es_opt=${pluginOptions}`,
    ...protoFiles(protoDir),
  ],
  {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
    // protoc-gen-es starts with `#!/usr/bin/env node`: put this Node (24) first so the system's
    // older node is never picked.
    env: {
      ...process.env,
      PATH: [dirname(process.execPath), process.env["PATH"] ?? ""].join(delimiter),
    },
  },
);
if (result.error !== undefined) {
  fail(
    `could not run protoc (${result.error.message}); install Debian's protobuf-compiler package`,
  );
}
if (result.status !== 0) fail(`protoc failed (exit ${result.status ?? result.signal})`);

const shown = relative(process.cwd(), out);
console.log(`gen-proto: wrote ${shown.startsWith("..") ? out : shown || "."}`);
