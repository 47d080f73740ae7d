import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { LogOutput, MemorySink } from "../lib/log/index.ts";
import { StateFile, parseState, renderState, type PodNetnsRecord } from "./state-file.ts";

const dir = mkdtempSync(join(tmpdir(), "amb-agent-state-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const rec = (uid: string, captured = true): PodNetnsRecord => ({
  uid,
  namespace: "apps",
  name: `pod-${uid}`,
  netns: `/run/netns/${uid}`,
  containerId: `c-${uid}`,
  ips: ["198.18.0.5"],
  captured,
});

function logger() {
  const sink = new MemorySink();
  return { sink, log: new LogOutput({ sink }).logger("cni-agent") };
}

describe("state file", () => {
  it("round-trips records, sorted by uid", () => {
    const text = renderState([rec("b"), rec("a", false)]);
    const parsed = parseState(text);
    assert.deepEqual(parsed.problems, []);
    assert.deepEqual(parsed.pods, [rec("a", false), rec("b")]);
  });

  it("keeps the good entries of a damaged file and names the bad ones", () => {
    const text = JSON.stringify({
      version: 1,
      pods: [rec("a"), { uid: "x", netns: "relative/path" }, rec("a"), "junk", rec("c")],
    });
    const parsed = parseState(text);
    assert.deepEqual(
      parsed.pods.map((p) => p.uid),
      ["a", "c"],
    );
    assert.equal(parsed.problems.length, 3);
    assert.match(parsed.problems[0]!, /pods\[1\]/);
    assert.match(parsed.problems[1]!, /uid a appears twice/);
  });

  it("rejects a file of another version or not JSON as a whole", () => {
    assert.match(parseState("{").problems[0]!, /not JSON/);
    assert.match(parseState('{"version":2,"pods":[]}').problems[0]!, /version 2/);
    assert.match(parseState("[]").problems[0]!, /not a JSON object/);
  });

  it("load: missing file is empty; a corrupt file is logged and ignored", async () => {
    const { sink, log } = logger();
    const missing = new StateFile(join(dir, "none", "state.json"), () => [], log);
    assert.deepEqual(await missing.load(), []);
    const path = join(dir, "corrupt.json");
    writeFileSync(path, "{ not json");
    const corrupt = new StateFile(path, () => [], log);
    assert.deepEqual(await corrupt.load(), []);
    assert.ok(sink.lines.some((l) => /ignoring part of the node agent state file/.test(l)));
  });

  it("save writes atomically (no temporary left), creates the directory, coalesces", async () => {
    let records = [rec("a")];
    let snapshots = 0;
    const path = join(dir, "sub", "state.json");
    const f = new StateFile(
      path,
      () => {
        snapshots++;
        return records;
      },
      logger().log,
    );
    await f.save();
    assert.deepEqual(parseState(readFileSync(path, "utf8")).pods, [rec("a")]);
    // Five saves while one is running: the first write plus one more that sees the last records.
    records = [rec("a"), rec("b")];
    const saves = [f.save(), f.save(), f.save(), f.save(), f.save()];
    records = [rec("a"), rec("b"), rec("c")];
    await Promise.all(saves);
    assert.equal(snapshots, 3);
    assert.deepEqual(
      parseState(readFileSync(path, "utf8")).pods.map((p) => p.uid),
      ["a", "b", "c"],
    );
    assert.deepEqual(readdirSync(join(dir, "sub")), ["state.json"]);
    const reloaded = new StateFile(path, () => [], logger().log);
    assert.equal((await reloaded.load()).length, 3);
  });
});
