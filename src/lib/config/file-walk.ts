/**
 * Finds the manifest files under a directory: `.yaml`/`.yml`, recursively, following symlinks,
 * skipping names that start with "." — hidden files, editors' temporary files (`.#x.yaml`,
 * `.x.yaml.swp`) and the `..data` directories of Kubernetes ConfigMap mounts, whose files are
 * reached through the top-level symlinks instead.
 */
import { readdir, realpath, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";

export interface FoundFile {
  /** Path as `join(dir, rel)`: how problems name the file. */
  readonly path: string;
  /** Path relative to the directory, with "/" separators: the order files are read in. */
  readonly rel: string;
}

export function isManifestName(name: string): boolean {
  return !name.startsWith(".") && (name.endsWith(".yaml") || name.endsWith(".yml"));
}

/** Sorted by relative path; throws only if `dir` itself cannot be read. */
export async function findManifestFiles(dir: string): Promise<FoundFile[]> {
  return (await scanDirectory(dir)).files;
}

/** The manifest files and every directory walked (`dir` first), for watching. */
export async function scanDirectory(dir: string): Promise<{ files: FoundFile[]; dirs: string[] }> {
  const out: FoundFile[] = [];
  const dirs: string[] = [];
  const visited = new Set<string>();
  const walk = async (d: string, top: boolean): Promise<void> => {
    let real: string;
    try {
      real = await realpath(d);
    } catch (err) {
      if (top) throw err;
      return;
    }
    if (visited.has(real)) return; // a symlink loop
    visited.add(real);
    dirs.push(d);
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (err) {
      if (top) throw err;
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith(".")) continue;
      const p = join(d, e.name);
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        try {
          const s = await stat(p);
          isDir = s.isDirectory();
          isFile = s.isFile();
        } catch {
          continue; // dangling link
        }
      }
      if (isDir) await walk(p, false);
      else if (isFile && isManifestName(e.name)) {
        out.push({ path: p, rel: relative(dir, p).split(sep).join("/") });
      }
    }
  };
  await walk(dir, true);
  out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  return { files: out, dirs };
}
