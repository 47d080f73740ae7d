/**
 * Builds the native addon (native/) with node-gyp against locally installed Node headers, so no
 * header download is attempted (this machine reaches only the npm registry and Debian). Plain
 * N-API (NAPI_VERSION 8): one build serves every Node version, so the headers of any installed
 * Node ≥ 16 do. Runs as the package's install step; `node scripts/build-native.ts` rebuilds.
 *
 * Header search order (the first with include/node/node_api.h wins):
 *   1. $AMBIENT_NODEDIR, when set;
 *   2. the Node 24 of the `node` npm package (node_modules/node/node_modules/node-<os>-<arch>);
 *   3. the Node running this script (<prefix>/include/node, as in the official tarballs);
 *   4. /usr and /usr/local (distribution packages: Debian's nodejs ships /usr/include/node).
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

const root = join(import.meta.dirname, "..");
const nativeDir = join(root, "native");

if (!existsSync(join(nativeDir, "binding.gyp"))) {
  console.log("build-native: no native/binding.gyp, nothing to build");
  process.exit(0);
}
if (process.platform !== "linux") {
  // The calls it wraps (setns, SO_ORIGINAL_DST, SO_MARK) exist only on Linux; src/lib/net/native.ts
  // reports ENATIVE if something tries to use them here.
  console.log(`build-native: the addon is Linux-only; skipped on ${process.platform}`);
  process.exit(0);
}

const candidates = [
  process.env["AMBIENT_NODEDIR"],
  join(root, "node_modules", "node", "node_modules", `node-${process.platform}-${process.arch}`),
  dirname(dirname(process.execPath)),
  "/usr",
  "/usr/local",
].filter((d): d is string => d !== undefined && d !== "");

const nodedir = candidates.find((d) =>
  ["node_api.h", "uv.h", "common.gypi"].every((f) => existsSync(join(d, "include", "node", f))),
);
if (nodedir === undefined) {
  console.error(
    "build-native: Node headers (include/node/node_api.h, uv.h, common.gypi) not found in any of:\n" +
      candidates.map((d) => `  ${d}\n`).join("") +
      "Install the 'node' package (npm ci) or a distribution Node with headers, or point " +
      "AMBIENT_NODEDIR at a Node install prefix.",
  );
  process.exit(1);
}
console.log(`build-native: using Node headers from ${nodedir}`);

const gyp = join(root, "node_modules", "node-gyp", "bin", "node-gyp.js");
if (!existsSync(gyp)) {
  console.error("build-native: node-gyp is missing; run npm ci (it is a devDependency)");
  process.exit(1);
}
const r = spawnSync(process.execPath, [gyp, "rebuild", `--nodedir=${nodedir}`, "--jobs=2"], {
  cwd: nativeDir,
  stdio: "inherit",
  env: { ...process.env, npm_config_nodedir: nodedir },
});
if (r.status !== 0) {
  console.error(
    "build-native: node-gyp failed; building the addon needs a C compiler (gcc), make and python3",
  );
  process.exit(r.status ?? 1);
}
