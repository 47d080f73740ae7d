/**
 * Builds the native addon (native/) with node-gyp against the headers of the Node 24 that the `node`
 * package installed, so no header download is attempted (this machine reaches only the npm registry
 * and Debian). Plain N-API: one build serves every Node version. Runs as the package's install step.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const nativeDir = join(root, "native");

if (!existsSync(join(nativeDir, "binding.gyp"))) {
  console.log("build-native: no native/binding.gyp, nothing to build");
  process.exit(0);
}

const nodedir = join(
  root,
  "node_modules",
  "node",
  "node_modules",
  `node-${process.platform}-${process.arch}`,
);
if (!existsSync(join(nodedir, "include", "node", "node_api.h"))) {
  console.error(
    `build-native: Node headers not found under ${nodedir}; the 'node' package must be installed first (npm ci)`,
  );
  process.exit(1);
}

const gyp = join(root, "node_modules", "node-gyp", "bin", "node-gyp.js");
const r = spawnSync(process.execPath, [gyp, "rebuild", `--nodedir=${nodedir}`, "--jobs=2"], {
  cwd: nativeDir,
  stdio: "inherit",
  env: { ...process.env, npm_config_nodedir: nodedir },
});
if (r.status !== 0) {
  console.error(
    "build-native: node-gyp failed; a C compiler (gcc/g++), make and python3 are required",
  );
  process.exit(r.status ?? 1);
}
