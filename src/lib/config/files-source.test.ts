import assert from "node:assert/strict";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LogOutput, MemorySink } from "../log/index.ts";
import type { ConfigEvent } from "./events.ts";
import { FileConfigStore } from "./files-source.ts";
import { formatProblem } from "./problem.ts";

const ns = (name: string, v = "1") =>
  `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n  labels: {v: "${v}"}\n`;

/** Polls until `check` passes or the bound runs out (watch delivery is asynchronous). */
async function eventually(check: () => void, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

describe("FileConfigStore watching a directory", () => {
  let dir: string;
  let store: FileConfigStore;
  const events: string[] = [];
  const sink = new MemorySink();
  const take = () => events.splice(0);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "amb-config-"));
    await writeFile(join(dir, "a.yaml"), ns("a") + "---\n" + ns("b"));
    await mkdir(join(dir, "sub"));
    await writeFile(join(dir, "sub", "c.yml"), ns("c"));
    await writeFile(join(dir, "notes.txt"), "not yaml");
    store = new FileConfigStore({
      dir,
      log: new LogOutput({ sink }).logger("config"),
      debounceMs: 30,
      rescanIntervalMs: 0, // the watcher alone must see every change here
    });
    store.subscribe((b) => {
      for (const e of b.events as ConfigEvent[]) {
        events.push(
          `${b.initial ? "initial " : ""}${e.type} ${e.key}${e.new ? ` v=${e.new.metadata.labels["v"]}` : ""}`,
        );
      }
    });
    await store.start();
  });

  after(async () => {
    try {
      // Unset when before() failed; the directory is removed either way.
      await (store as FileConfigStore | undefined)?.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("syncs every manifest, recursively", () => {
    assert.deepEqual(take(), [
      "initial added Namespace/a v=1",
      "initial added Namespace/b v=1",
      "initial added Namespace/c v=1",
    ]);
    const a = store.get("Namespace", "", "a")!;
    assert.equal(a.metadata.generation, 1);
    assert.match(a.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.deepEqual(store.errors(), []);
  });

  it("sees an edit", async () => {
    const before = store.get("Namespace", "", "a")!;
    await writeFile(join(dir, "a.yaml"), ns("a", "2") + "---\n" + ns("b"));
    await eventually(() => assert.deepEqual(events, ["updated Namespace/a v=2"]));
    take();
    const after = store.get("Namespace", "", "a")!;
    assert.equal(after.metadata.uid, before.metadata.uid);
    assert.notEqual(after.metadata.resourceVersion, before.metadata.resourceVersion);
  });

  it("sees a new file in a new directory", async () => {
    await mkdir(join(dir, "new", "deeper"), { recursive: true });
    await writeFile(join(dir, "new", "deeper", "d.yaml"), ns("d"));
    await eventually(() => assert.deepEqual(events, ["added Namespace/d v=1"]));
    take();
  });

  it("a rename changes nothing; an atomic replace by rename is an edit", async () => {
    await rename(join(dir, "sub", "c.yml"), join(dir, "sub", "c-renamed.yaml"));
    // Editors write a hidden temporary file and rename it over the original.
    await writeFile(join(dir, ".a.yaml.tmp"), ns("a", "3") + "---\n" + ns("b"));
    await rename(join(dir, ".a.yaml.tmp"), join(dir, "a.yaml"));
    await eventually(() => assert.deepEqual(events, ["updated Namespace/a v=3"]));
    await store.rescan();
    assert.deepEqual(take(), ["updated Namespace/a v=3"]);
    assert.ok(store.get("Namespace", "", "c"));
  });

  it("keeps the last good version of an object that becomes invalid", async () => {
    await writeFile(join(dir, "a.yaml"), ns("a", "bad value!") + "---\n" + ns("b", "2"));
    await eventually(() => assert.deepEqual(events, ["updated Namespace/b v=2"]));
    take();
    assert.equal(store.get("Namespace", "", "a")?.metadata.labels["v"], "3");
    assert.deepEqual(store.errors().map(formatProblem), [
      `${join(dir, "a.yaml")}:5:15: metadata.labels.v: invalid label value "bad value!": must be empty or consist of letters, digits, '-', '_' or '.', starting and ending with a letter or digit (Namespace/a)`,
    ]);
    assert.ok(sink.lines.some((l) => l.includes("config rejected")));
    await writeFile(join(dir, "a.yaml"), ns("a", "4") + "---\n" + ns("b", "2"));
    await eventually(() => assert.deepEqual(events, ["updated Namespace/a v=4"]));
    take();
    assert.deepEqual(store.errors(), []);
  });

  it("keeps a file's objects while it has a syntax error", async () => {
    await writeFile(join(dir, "a.yaml"), ns("a", "5") + "---\nkind: [oops\n");
    await eventually(() => assert.deepEqual(events, ["updated Namespace/a v=5"]));
    take();
    assert.ok(store.get("Namespace", "", "b"), "b may be in the broken document: it stays");
    assert.match(
      formatProblem(store.errors()[0]!),
      /a\.yaml:8:1: YAML syntax error: Flow sequence/,
    );
  });

  it("reports a conflict and keeps the first file's object", async () => {
    await writeFile(join(dir, "z.yaml"), ns("d", "from-z"));
    await eventually(() => assert.equal(store.errors().length, 2));
    assert.ok(
      store.errors().some((p) => p.reason.startsWith("conflict: Namespace/d is also defined in")),
    );
    assert.equal(store.get("Namespace", "", "d")?.metadata.labels["v"], "1");
    await rm(join(dir, "z.yaml"));
    await eventually(() => assert.equal(store.errors().length, 1));
    assert.deepEqual(take(), []);
  });

  it("deletes the objects of a deleted file, and gives a recreated object a new uid", async () => {
    const oldUid = store.get("Namespace", "", "d")!.metadata.uid;
    await rm(join(dir, "new"), { recursive: true });
    await eventually(() => assert.deepEqual(events, ["deleted Namespace/d"]));
    take();
    await writeFile(join(dir, "d.yaml"), ns("d"));
    await eventually(() => assert.deepEqual(events, ["added Namespace/d v=1"]));
    take();
    assert.notEqual(store.get("Namespace", "", "d")!.metadata.uid, oldUid);
  });
});

describe("FileConfigStore without its directory", () => {
  it("syncs empty with a problem, and picks the directory up later", async () => {
    const parent = await mkdtemp(join(tmpdir(), "amb-config-"));
    const dir = join(parent, "later");
    const store = new FileConfigStore({
      dir,
      log: new LogOutput({ sink: new MemorySink() }).logger("config"),
      rescanIntervalMs: 50,
    });
    try {
      await store.start();
      assert.equal(store.hasSynced, true);
      assert.match(store.errors()[0]!.reason, /config directory does not exist/);
      await mkdir(dir);
      await writeFile(join(dir, "a.yaml"), ns("a"));
      await eventually(() => assert.ok(store.get("Namespace", "", "a")));
      assert.deepEqual(store.errors(), []);
    } finally {
      await store.close();
      await rm(parent, { recursive: true, force: true });
    }
  });
});
