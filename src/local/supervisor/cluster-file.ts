/** `S/cluster.json`: what `up` was asked for, so later commands and the supervisor agree. */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export interface ClusterFile {
  readonly version: 1;
  readonly cluster: string;
  readonly nodes: readonly string[];
  readonly createdAt: string;
  readonly logLevel?: string;
}

export function readClusterFile(path: string): ClusterFile | undefined {
  try {
    const f = JSON.parse(readFileSync(path, "utf8")) as Partial<ClusterFile>;
    if (f.version !== 1 || typeof f.cluster !== "string" || !Array.isArray(f.nodes))
      return undefined;
    return f as ClusterFile;
  } catch {
    return undefined;
  }
}

export function writeClusterFile(path: string, f: ClusterFile): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(f, null, 2) + "\n");
  renameSync(tmp, path);
}
