import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mergeFiles, nextFileState, type FileState } from "./file-state.ts";
import { formatProblem } from "./problem.ts";

const ns = (name: string, extra = "") =>
  `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n${extra}`;
const read = (text: string) => ({ ok: true as const, text });
const keys = (s: FileState) => [...s.inForce.keys()].sort();
const labelOf = (s: FileState, key: string) => s.inForce.get(key)?.draft.labels["v"];

describe("nextFileState", () => {
  it("puts valid documents in force", () => {
    const s = nextFileState(undefined, "a.yaml", read(`${ns("a")}---\n${ns("b")}`));
    assert.deepEqual(keys(s), ["Namespace/a", "Namespace/b"]);
    assert.deepEqual(s.problems, []);
  });

  it("keeps the last good version of a rejected object, and drops removed ones", () => {
    const s1 = nextFileState(
      undefined,
      "a.yaml",
      read(`${ns("a", "  labels: {v: '1'}\n")}---\n${ns("b")}`),
    );
    const s2 = nextFileState(s1, "a.yaml", read(ns("a", "  labels: {v: 'bad value!'}\n")));
    assert.deepEqual(keys(s2), ["Namespace/a"], "b was removed from the file");
    assert.equal(labelOf(s2, "Namespace/a"), "1");
    assert.equal(s2.inForce.get("Namespace/a")?.lastGood, true);
    assert.equal(s2.problems.length, 1);
  });

  it("can take the last good version from another file (an object moved and broken)", () => {
    const elsewhere = nextFileState(undefined, "old.yaml", read(ns("a", "  labels: {v: '1'}\n")));
    const s = nextFileState(undefined, "new.yaml", read(ns("a", "  labels: {v: 'bad value!'}\n")), {
      inForceElsewhere: (k) => elsewhere.inForce.get(k),
    });
    assert.equal(labelOf(s, "Namespace/a"), "1");
  });

  it("keeps everything when a document cannot be parsed", () => {
    const s1 = nextFileState(undefined, "a.yaml", read(`${ns("a")}---\n${ns("b")}---\n${ns("c")}`));
    const s2 = nextFileState(
      s1,
      "a.yaml",
      read(`${ns("a", "  labels: {v: '2'}\n")}---\nkind: [broken\n`),
    );
    assert.deepEqual(keys(s2), ["Namespace/a", "Namespace/b", "Namespace/c"]);
    assert.equal(labelOf(s2, "Namespace/a"), "2", "the readable document still applies");
    assert.match(formatProblem(s2.problems[0]!), /^a\.yaml:\d+:\d+: YAML syntax error/);
  });

  it("keeps everything when the file cannot be read", () => {
    const s1 = nextFileState(undefined, "a.yaml", read(ns("a")));
    const s2 = nextFileState(s1, "a.yaml", { ok: false, reason: "EACCES: permission denied" });
    assert.deepEqual(keys(s2), ["Namespace/a"]);
    assert.equal(
      formatProblem(s2.problems[0]!),
      "a.yaml: cannot read file: EACCES: permission denied; its objects keep their last good versions",
    );
  });

  it("reports an object defined twice in one file; the first wins", () => {
    const s = nextFileState(
      undefined,
      "a.yaml",
      read(`${ns("a", "  labels: {v: '1'}\n")}---\n${ns("a", "  labels: {v: '2'}\n")}`),
    );
    assert.equal(labelOf(s, "Namespace/a"), "1");
    assert.equal(
      formatProblem(s.problems[0]!),
      "a.yaml:7: Namespace/a is defined more than once in this file (first at line 1); this definition is ignored (Namespace/a)",
    );
  });

  it("returns the same state for the same text", () => {
    const s1 = nextFileState(undefined, "a.yaml", read(ns("a")));
    assert.equal(nextFileState(s1, "a.yaml", read(ns("a"))), s1);
  });
});

describe("mergeFiles", () => {
  it("lets the first file win and reports the others where they are", () => {
    const a = nextFileState(undefined, "a.yaml", read(ns("x", "  labels: {v: a}\n")));
    const b = nextFileState(
      undefined,
      "b/x.yaml",
      read(`${ns("y")}---\n${ns("x", "  labels: {v: b}\n")}`),
    );
    const { claims, conflicts } = mergeFiles([
      { file: "a.yaml", state: a },
      { file: "b/x.yaml", state: b },
    ]);
    assert.equal(claims.get("Namespace/x")?.file, "a.yaml");
    assert.equal(claims.get("Namespace/y")?.file, "b/x.yaml");
    assert.deepEqual(conflicts.get("b/x.yaml")?.map(formatProblem), [
      "b/x.yaml:6: conflict: Namespace/x is also defined in a.yaml:1, which takes precedence (files are read in path order); this definition is ignored (Namespace/x)",
    ]);
  });
});
