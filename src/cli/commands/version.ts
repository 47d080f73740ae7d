import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "../command.ts";

export const version: Command = {
  name: "version",
  summary: "print the Ambient version and the Node.js it runs on",
  usage: "ambient version",
  run() {
    const pkg = JSON.parse(
      readFileSync(join(import.meta.dirname, "..", "..", "..", "package.json"), "utf8"),
    ) as { version: string };
    console.log(`ambient ${pkg.version} (node ${process.version})`);
    return Promise.resolve(0);
  },
};
