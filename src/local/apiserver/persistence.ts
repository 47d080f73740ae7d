/**
 * What the local API server keeps across restarts, in its state directory: the runtime objects
 * (everything written through the API that no manifest file defines: pods made by controllers,
 * ReplicaSets, Nodes, status of those), Service VIP allocations, and node bindings of pods
 * defined in files. A snapshot (`snapshot.json`, replaced atomically) plus an append-only log of
 * changes since (`changes.jsonl`, one JSON record per line, written before the write is
 * answered). A crash loses nothing the kernel has accepted; a torn last line is ignored. On open
 * the log is folded into a new snapshot; it is folded again every `compactEvery` records.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { isObject, metaOf, str, type Json } from "../../lib/kube-api/index.ts";

export interface StoredRuntimeObject {
  readonly group: string;
  readonly plural: string;
  readonly object: Json;
}

export interface PersistedState {
  readonly version: 1;
  /** Highest resourceVersion handed out (the next run starts above it). */
  readonly resourceVersion: number;
  readonly objects: readonly StoredRuntimeObject[];
  /** Service `namespace/name` → VIP. */
  readonly clusterIps: Readonly<Record<string, string>>;
  /** Pods defined in files: `namespace/name` → node they were bound to. */
  readonly bindings: Readonly<Record<string, string>>;
}

export type LogRecord =
  | { readonly op: "put"; readonly group: string; readonly plural: string; readonly object: Json }
  | {
      readonly op: "del";
      readonly group: string;
      readonly plural: string;
      readonly namespace: string;
      readonly name: string;
    }
  | { readonly op: "ip"; readonly key: string; readonly ip: string | null }
  | { readonly op: "bind"; readonly key: string; readonly node: string | null };

const SNAPSHOT = "snapshot.json";
const LOG = "changes.jsonl";

function objectId(group: string, plural: string, namespace: string, name: string): string {
  return `${group}/${plural}/${namespace}/${name}`;
}

/** Folds log records into a state (pure). */
export function applyRecords(state: PersistedState, records: readonly LogRecord[]): PersistedState {
  const objects = new Map<string, StoredRuntimeObject>();
  for (const o of state.objects) {
    const m = metaOf(o.object);
    objects.set(objectId(o.group, o.plural, str(m["namespace"]), str(m["name"])), o);
  }
  const ips: Record<string, string> = { ...state.clusterIps };
  const bindings: Record<string, string> = { ...state.bindings };
  let rv = state.resourceVersion;
  for (const r of records) {
    switch (r.op) {
      case "put": {
        const m = metaOf(r.object);
        objects.set(objectId(r.group, r.plural, str(m["namespace"]), str(m["name"])), r);
        rv = Math.max(rv, Number(m["resourceVersion"]) || 0);
        break;
      }
      case "del":
        objects.delete(objectId(r.group, r.plural, r.namespace, r.name));
        break;
      case "ip":
        if (r.ip === null) delete ips[r.key];
        else ips[r.key] = r.ip;
        break;
      case "bind":
        if (r.node === null) delete bindings[r.key];
        else bindings[r.key] = r.node;
        break;
    }
  }
  return {
    version: 1,
    resourceVersion: rv,
    objects: [...objects.values()],
    clusterIps: ips,
    bindings,
  };
}

export const EMPTY_STATE: PersistedState = Object.freeze({
  version: 1,
  resourceVersion: 0,
  objects: [],
  clusterIps: {},
  bindings: {},
});

export class Persistence {
  readonly dir: string;
  readonly #compactEvery: number;
  #fd: number;
  #records = 0;

  private constructor(dir: string, fd: number, compactEvery: number) {
    this.dir = dir;
    this.#fd = fd;
    this.#compactEvery = compactEvery;
  }

  /**
   * Reads the state (snapshot + log), writes it back as one snapshot, and opens an empty log.
   * `problems` tells of damaged parts that were skipped.
   */
  static open(
    dir: string,
    opts: { compactEvery?: number } = {},
  ): { persistence: Persistence; state: PersistedState; problems: string[] } {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const problems: string[] = [];
    let state: PersistedState = EMPTY_STATE;
    const snapPath = join(dir, SNAPSHOT);
    if (existsSync(snapPath)) {
      try {
        const v: unknown = JSON.parse(readFileSync(snapPath, "utf8"));
        if (isObject(v) && v["version"] === 1 && Array.isArray(v["objects"])) {
          state = { ...EMPTY_STATE, ...(v as unknown as PersistedState) };
        } else problems.push(`${snapPath} is not an API server snapshot (version 1); ignored`);
      } catch (err) {
        problems.push(`${snapPath} is damaged (${(err as Error).message}); ignored`);
      }
    }
    const logPath = join(dir, LOG);
    if (existsSync(logPath)) {
      const records: LogRecord[] = [];
      const lines = readFileSync(logPath, "utf8").split("\n");
      lines.forEach((line, i) => {
        if (line.trim() === "") return;
        try {
          records.push(JSON.parse(line) as LogRecord);
        } catch {
          // Only the last line can be torn by a crash; anything else is reported.
          if (i < lines.length - 2) problems.push(`${logPath}:${i + 1} is damaged; skipped`);
        }
      });
      state = applyRecords(state, records);
    }
    writeSnapshot(dir, state);
    const fd = openSync(logPath, "w", 0o600);
    return { persistence: new Persistence(dir, fd, opts.compactEvery ?? 5000), state, problems };
  }

  /** Appends a record; returns true when it is time to compact (call `compact`). */
  append(rec: LogRecord): boolean {
    writeSync(this.#fd, JSON.stringify(rec) + "\n");
    this.#records++;
    return this.#records >= this.#compactEvery;
  }

  /** Replaces the snapshot with `state` (the live one) and empties the log. */
  compact(state: PersistedState): void {
    writeSnapshot(this.dir, state);
    ftruncateSync(this.#fd, 0);
    closeSync(this.#fd);
    this.#fd = openSync(join(this.dir, LOG), "w", 0o600);
    this.#records = 0;
  }

  close(state?: PersistedState): void {
    if (this.#fd < 0) return;
    if (state !== undefined) this.compact(state);
    closeSync(this.#fd);
    this.#fd = -1;
  }
}

function writeSnapshot(dir: string, state: PersistedState): void {
  const tmp = join(dir, `${SNAPSHOT}.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(state) + "\n", { mode: 0o600 });
  const fd = openSync(tmp, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, SNAPSHOT));
}
