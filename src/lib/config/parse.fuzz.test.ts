/**
 * Mutated manifests never make the parser throw: every outcome is documents and problems.
 * Deterministic (seeded), bounded in count.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseManifests } from "./parse.ts";

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const pieces = [
  "\n",
  ": ",
  "- ",
  "---\n",
  "{",
  "}",
  "[",
  "]",
  "&a ",
  "*a",
  "!!binary ",
  "'",
  '"',
  "\t",
  "#",
  "<<: *a\n",
  "70000",
  "null",
  "~",
  "  ",
];

describe("parseManifests under mutation", () => {
  it("returns values for 200 mutated inputs, never throws", () => {
    const dir = join(import.meta.dirname, "testdata", "valid");
    const seeds = readdirSync(dir).map((f) => readFileSync(join(dir, f), "utf8"));
    const rand = prng(20250101);
    let withProblems = 0;
    for (let i = 0; i < 200; i++) {
      let text = seeds[i % seeds.length]!;
      const edits = 1 + Math.floor(rand() * 4);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rand() * text.length);
        const r = rand();
        if (r < 0.4)
          text = text.slice(0, at) + pieces[Math.floor(rand() * pieces.length)]! + text.slice(at);
        else if (r < 0.8) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(rand() * 8));
        else
          text =
            text.slice(0, at) + String.fromCharCode(Math.floor(rand() * 128)) + text.slice(at + 1);
      }
      const parsed = parseManifests(text, "fuzz.yaml", { unknownFields: "reject" });
      if (parsed.problems.length > 0) withProblems++;
      for (const p of parsed.problems) {
        assert.ok(p.reason.length > 0);
        if (p.line !== undefined) assert.ok(p.line >= 1 && p.line <= text.split("\n").length + 1);
      }
    }
    assert.ok(withProblems > 50, `mutations should mostly be caught (${withProblems}/200)`);
  });
});
