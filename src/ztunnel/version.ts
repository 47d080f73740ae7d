/**
 * Build information: config_dump's `version` and the `tag` of `istio_build`.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

function packageVersion(): string {
  try {
    const pkg = JSON.parse(
      readFileSync(join(import.meta.dirname, "..", "..", "package.json"), "utf8"),
    ) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

export const VERSION = packageVersion();

export function buildInfo(): Readonly<Record<string, string>> {
  return { version: VERSION, nodeVersion: process.version, component: "ztunnel" };
}
