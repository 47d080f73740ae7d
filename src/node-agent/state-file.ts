/**
 * The agent's memory across restarts: for each pod the runtime told it about, the pod's netns
 * path (which only the plugin ADD carries), its sandbox id and IPs, and whether our rules may be
 * in its netns. istio-cni keeps none of this: after a restart it finds enrolled pods' netns by
 * scanning /proc for processes in the pod's cgroup. Our local runtime's pods are plain processes
 * in named namespaces with no pod cgroup, so we remember the paths instead; a pod whose path is
 * lost or gone is sent to ztunnel as `keep` (its existing proxy stays) until its next ADD.
 *
 * Writes go to a temporary file renamed into place, so a crash leaves the old file or the new one,
 * never half of one. Writes are coalesced: one runs at a time, and every `save` resolves once a
 * write that started after it is done.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { errnoCode } from "../lib/errors.ts";
import type { Logger } from "../lib/log/index.ts";

export interface PodNetnsRecord {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly netns: string;
  /** The sandbox (CNI ContainerID) the netns belongs to; "" when the runtime did not say. */
  readonly containerId: string;
  readonly ips: readonly string[];
  /** Our rules may be in the netns (set before applying, cleared after removing). */
  readonly captured: boolean;
}

export const STATE_FILE_VERSION = 1;

export interface ParsedState {
  readonly pods: PodNetnsRecord[];
  /** Entries (or the whole file) that were not understood, for the operator. */
  readonly problems: string[];
}

const isStr = (v: unknown): v is string => typeof v === "string";

/** Reads the file's text. Bad entries are skipped and reported; the rest are kept. */
export function parseState(text: string): ParsedState {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { pods: [], problems: [`not JSON: ${(err as Error).message}`] };
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    return { pods: [], problems: ["not a JSON object"] };
  }
  const { version, pods } = doc as { version?: unknown; pods?: unknown };
  if (version !== STATE_FILE_VERSION) {
    return {
      pods: [],
      problems: [`version ${JSON.stringify(version)} is not ${STATE_FILE_VERSION}`],
    };
  }
  if (!Array.isArray(pods)) return { pods: [], problems: ['"pods" is not a list'] };
  const out: PodNetnsRecord[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  pods.forEach((p: unknown, i) => {
    const e = (p ?? {}) as Record<string, unknown>;
    const ok =
      isStr(e["uid"]) &&
      e["uid"] !== "" &&
      isStr(e["namespace"]) &&
      isStr(e["name"]) &&
      isStr(e["netns"]) &&
      e["netns"].startsWith("/") &&
      isStr(e["containerId"]) &&
      Array.isArray(e["ips"]) &&
      e["ips"].every(isStr) &&
      typeof e["captured"] === "boolean";
    if (!ok) {
      problems.push(`pods[${i}]: not a pod record (uid, namespace, name, netns, ...)`);
      return;
    }
    const uid = e["uid"] as string;
    if (seen.has(uid)) {
      problems.push(`pods[${i}]: uid ${uid} appears twice; keeping the first`);
      return;
    }
    seen.add(uid);
    out.push({
      uid,
      namespace: e["namespace"] as string,
      name: e["name"] as string,
      netns: e["netns"] as string,
      containerId: e["containerId"] as string,
      ips: [...(e["ips"] as string[])],
      captured: e["captured"] as boolean,
    });
  });
  return { pods: out, problems };
}

export function renderState(pods: readonly PodNetnsRecord[]): string {
  const sorted = [...pods].sort((a, b) => (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0));
  return JSON.stringify({ version: STATE_FILE_VERSION, pods: sorted }, null, 2) + "\n";
}

export class StateFile {
  readonly path: string;
  readonly #log: Logger;
  readonly #snapshot: () => readonly PodNetnsRecord[];
  #writing: Promise<void> | undefined;
  #again: Promise<void> | undefined;
  #lastWritten: string | undefined;

  /** `snapshot` gives the records to write, read when each write starts. */
  constructor(path: string, snapshot: () => readonly PodNetnsRecord[], log: Logger) {
    this.path = path;
    this.#snapshot = snapshot;
    this.#log = log;
  }

  /** The records in the file; none when it does not exist. A damaged file is reported, not fatal. */
  async load(): Promise<PodNetnsRecord[]> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return [];
      this.#log.error("cannot read the node agent state file; starting without it", {
        path: this.path,
        error: (err as Error).message,
      });
      return [];
    }
    const parsed = parseState(text);
    for (const p of parsed.problems) {
      this.#log.error("ignoring part of the node agent state file", {
        path: this.path,
        problem: p,
      });
    }
    this.#lastWritten = text;
    return parsed.pods;
  }

  /**
   * Writes the current records. Rejects when the write fails (the caller decides whether that
   * matters); a later save tries again.
   */
  save(): Promise<void> {
    if (this.#writing === undefined) {
      this.#writing = this.#write().finally(() => {
        this.#writing = undefined;
      });
      return this.#writing;
    }
    // One write is running: everything asked meanwhile shares the single write after it.
    this.#again ??= this.#writing
      .catch(() => {})
      .then(() => {
        this.#again = undefined;
        return this.save();
      });
    return this.#again;
  }

  async #write(): Promise<void> {
    const text = renderState(this.#snapshot());
    if (text === this.#lastWritten) return;
    const tmp = `${this.path}.tmp-${process.pid}`;
    await mkdir(dirname(this.path), { recursive: true });
    await writeFile(tmp, text, { mode: 0o600 });
    await rename(tmp, this.path);
    this.#lastWritten = text;
  }
}
