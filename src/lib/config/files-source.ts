/**
 * The files config source (the embedded default): a directory of multi-document YAML manifests,
 * read recursively and watched. Each change triggers a rescan after a short debounce; a periodic
 * rescan catches anything the watcher missed (editors that replace files by rename, directories
 * created later, network filesystems without inotify). Bad documents are rejected one by one with
 * their file, line and field path, and the last good version of each rejected object stays.
 */
import { watch, type FSWatcher } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import type { Logger } from "../log/index.ts";
import { errnoCode, fail, ok } from "../errors.ts";
import { applyChanges, cacheList } from "./cache.ts";
import { scanDirectory } from "./file-walk.ts";
import {
  mergeFiles,
  nextFileState,
  type FileEntry,
  type FileRead,
  type FileState,
} from "./file-state.ts";
import { ALL_KINDS, type Kind } from "./kinds.ts";
import { keyOf, objectKey, type ConfigObject, type ObjectKey } from "./object.ts";
import { mergePatch } from "./merge-patch.ts";
import { Stamper, type StatusOverlay } from "./stamp.ts";
import { StoreBase, type StatusUpdate, type StatusWriteResult } from "./store.ts";

export interface FilesSourceOptions {
  /** The directory of manifests. */
  readonly dir: string;
  readonly log: Logger;
  /** Quiet time after the last change before rescanning (editors write in bursts). */
  readonly debounceMs?: number;
  /** Longest a rescan waits under a steady stream of changes. */
  readonly maxDelayMs?: number;
  /** Safety-net full rescan period; 0 turns it off. */
  readonly rescanIntervalMs?: number;
  /** Files larger than this are rejected (their objects keep their last good versions). */
  readonly maxFileBytes?: number;
  readonly now?: () => Date;
}

const DIR_SCOPE = "<directory>";

export class FileConfigStore extends StoreBase {
  readonly source = "files";
  readonly dir: string;
  readonly #opts: Required<Omit<FilesSourceOptions, "now" | "log" | "dir">>;
  readonly #stamper: Stamper;
  #files = new Map<string, FileState>();
  readonly #drafts = new Map<ObjectKey, FileEntry>();
  readonly #overlays = new Map<ObjectKey, StatusOverlay>();
  /** One watcher per directory: a directory watch reports its files' changes whatever their inode. */
  readonly #watchers = new Map<string, FSWatcher>();
  #debounce: NodeJS.Timeout | undefined;
  #firstPending = 0;
  #interval: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #started = false;

  constructor(opts: FilesSourceOptions) {
    super(opts.log);
    this.dir = opts.dir;
    this.#opts = {
      debounceMs: opts.debounceMs ?? 100,
      maxDelayMs: opts.maxDelayMs ?? 1000,
      rescanIntervalMs: opts.rescanIntervalMs ?? 30_000,
      maxFileBytes: opts.maxFileBytes ?? 8 * 1024 * 1024,
    };
    this.#stamper = new Stamper(opts.now ? { now: opts.now } : {});
  }

  async start(): Promise<void> {
    if (this.#started) return this.synced;
    this.#started = true;
    await this.rescan();
    if (this.#opts.rescanIntervalMs > 0 && !this.#closed) {
      this.#interval = setInterval(() => void this.rescan(), this.#opts.rescanIntervalMs);
    }
    return this.synced;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#debounce);
    clearInterval(this.#interval);
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
    await this.#scanning;
  }

  /**
   * Reads the directory now and applies what changed. Concurrent calls share one scan; a call
   * made while a scan runs gets another scan after it, so no change is missed.
   */
  rescan(): Promise<void> {
    if (this.#scanning) {
      this.#again = true;
      return this.#scanning;
    }
    this.#scanning = (async () => {
      try {
        do {
          this.#again = false;
          await this.#scanOnce();
        } while (this.#again && !this.#closed);
      } finally {
        this.#scanning = undefined;
      }
    })();
    return this.#scanning;
  }

  writeStatus(update: StatusUpdate): Promise<StatusWriteResult> {
    const kind: Kind = update.type === "status" ? update.kind : "Pod";
    const key = objectKey(kind, update.namespace, update.name);
    const entry = this.#drafts.get(key);
    const prev = this.get(kind, update.namespace, update.name);
    if (entry === undefined || prev === undefined) {
      return Promise.resolve(fail({ code: "not-found", message: `${key} does not exist` }));
    }
    const overlay = this.#overlays.get(key) ?? {};
    const next: StatusOverlay =
      update.type === "status"
        ? { ...overlay, status: mergePatch(prev.status, update.status) }
        : { ...overlay, annotations: { ...overlay.annotations, ...update.annotations } };
    this.#overlays.set(key, next);
    const obj = this.#stamper.stamp(prev, entry.draft, next);
    this.commit(applyChanges(this.cache, { set: [obj] }));
    return Promise.resolve(ok(obj));
  }

  #schedule(): void {
    if (this.#closed) return;
    const now = Date.now();
    if (this.#debounce === undefined) this.#firstPending = now;
    clearTimeout(this.#debounce);
    const wait = Math.max(
      0,
      Math.min(this.#opts.debounceMs, this.#firstPending + this.#opts.maxDelayMs - now),
    );
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      void this.rescan();
    }, wait);
  }

  /**
   * Watches exactly the directories the scan walked. Node's recursive watch on Linux also watches
   * each file, and loses a file that an editor replaces by rename; plain directory watches do not.
   */
  #syncWatchers(dirs: readonly string[]): void {
    if (this.#closed) return;
    const want = new Set(dirs);
    for (const [d, w] of this.#watchers) {
      if (!want.has(d)) {
        w.close();
        this.#watchers.delete(d);
      }
    }
    for (const d of dirs) {
      if (this.#watchers.has(d)) continue;
      try {
        const w = watch(d, { persistent: true }, () => this.#schedule());
        w.on("error", () => {
          // The directory went away: the rescan notices and drops (or re-makes) this watch.
          w.close();
          if (this.#watchers.get(d) === w) this.#watchers.delete(d);
          this.#schedule();
        });
        this.#watchers.set(d, w);
      } catch (err) {
        this.log.warn("cannot watch config directory; relying on periodic rescans", {
          dir: d,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }

  async #scanOnce(): Promise<void> {
    let found;
    let dirs;
    try {
      ({ files: found, dirs } = await scanDirectory(this.dir));
      this.setProblems(DIR_SCOPE, []);
    } catch (err) {
      const code = errnoCode(err);
      this.setProblems(DIR_SCOPE, [
        {
          file: this.dir,
          path: "",
          reason:
            code === "ENOENT"
              ? "config directory does not exist; create it (objects appear once it has manifests)"
              : `cannot read config directory: ${err instanceof Error ? err.message : String(err)}`,
        },
      ]);
      // Keep what is in force: a directory that vanished for a moment must not wipe the mesh.
      this.#markSyncedOnce();
      return;
    }
    this.#syncWatchers(dirs);
    const next = new Map<string, FileState>();
    let unsettled = false;
    for (const f of found) {
      const r = await this.#read(f.path);
      if (r === undefined) continue; // deleted since it was listed
      const { read, mtimeMs } = r;
      const prev = this.#files.get(f.path);
      // A file modified moments ago may be half written (truncate, then write): take it on the
      // next scan, once it has been quiet for the debounce period.
      const changed = !read.ok || prev === undefined || prev.text !== read.text;
      if (this.hasSynced && changed && Date.now() - mtimeMs < this.#opts.debounceMs) {
        unsettled = true;
        if (prev !== undefined) next.set(f.path, prev);
        continue;
      }
      next.set(
        f.path,
        nextFileState(prev, f.path, read, {
          inForceElsewhere: (key) => this.#drafts.get(key),
        }),
      );
    }
    if (this.#closed) return;
    for (const path of this.#files.keys()) if (!next.has(path)) this.setProblems(path, []);
    this.#files = next;
    this.#apply();
    this.#markSyncedOnce();
    if (unsettled) this.#schedule();
  }

  #markSyncedOnce(): void {
    if (!this.hasSynced) {
      this.markSynced();
      this.log.info("config files synced", { dir: this.dir, objects: this.#drafts.size });
    }
  }

  async #read(path: string): Promise<{ read: FileRead; mtimeMs: number } | undefined> {
    let mtimeMs = 0;
    try {
      const s = await stat(path);
      mtimeMs = s.mtimeMs;
      if (s.size > this.#opts.maxFileBytes) {
        return {
          read: {
            ok: false,
            reason: `file is ${s.size} bytes, over the ${this.#opts.maxFileBytes}-byte limit`,
          },
          mtimeMs,
        };
      }
      return { read: { ok: true, text: await readFile(path, "utf8") }, mtimeMs };
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return undefined;
      return {
        read: { ok: false, reason: err instanceof Error ? err.message : String(err) },
        mtimeMs,
      };
    }
  }

  #apply(): void {
    const files = [...this.#files.entries()].map(([file, state]) => ({ file, state }));
    const { claims, conflicts } = mergeFiles(files);
    for (const { file, state } of files) {
      this.setProblems(file, [...state.problems, ...(conflicts.get(file) ?? [])]);
    }
    const set: ConfigObject[] = [];
    for (const [key, claim] of claims) {
      const d = claim.entry.draft;
      const prev = this.get(d.kind, d.namespace, d.name);
      const obj = this.#stamper.stamp(prev, d, this.#overlays.get(key));
      if (obj !== prev) set.push(obj);
      const had = this.#drafts.get(key);
      if (claim.entry.lastGood && had?.draft !== d) {
        this.log.info("keeping last good version of rejected object", { key, file: claim.file });
      }
      this.#drafts.set(key, claim.entry);
    }
    const remove: ObjectKey[] = [];
    for (const kind of ALL_KINDS) {
      for (const o of cacheList(this.cache, kind)) {
        const key = keyOf(o);
        if (!claims.has(key)) remove.push(key);
      }
    }
    for (const key of remove) {
      this.#drafts.delete(key);
      this.#overlays.delete(key);
      this.#stamper.deleted(key);
    }
    this.commit(applyChanges(this.cache, { set, remove }));
  }
}
