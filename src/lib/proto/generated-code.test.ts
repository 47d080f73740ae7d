/**
 * src/lib/gen is committed and never edited by hand. This regenerates it from proto/ into a
 * temporary directory with the same script `npm run gen` uses and fails, naming each file, if
 * the committed code has drifted from the .proto files.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { describe, it } from "node:test";

const root = resolve(import.meta.dirname, "..", "..", "..");
const committed = join(root, "src", "lib", "gen");

function listFiles(dir: string, base = dir, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) listFiles(p, base, out);
    else out.push(relative(base, p));
  }
  return out.sort();
}

describe("generated protobuf code", () => {
  it("src/lib/gen matches what proto/ generates (run `npm run gen` if this fails)", (t) => {
    const scratch = mkdtempSync(join(tmpdir(), "ambient-gen-"));
    t.after(() => rmSync(scratch, { recursive: true, force: true }));
    const fresh = join(scratch, "gen");

    const run = spawnSync(process.execPath, [join(root, "scripts", "gen-proto.ts"), fresh], {
      cwd: root,
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(run.status, 0, `gen-proto failed:\n${run.stdout}${run.stderr}`);

    const want = listFiles(fresh);
    const have = listFiles(committed);
    assert.ok(want.length > 0, "generation produced no files");

    const drift: string[] = [];
    for (const f of want) {
      if (!have.includes(f)) drift.push(`missing from src/lib/gen: ${f}`);
      else if (readFileSync(join(fresh, f), "utf8") !== readFileSync(join(committed, f), "utf8")) {
        drift.push(`differs from its .proto: src/lib/gen/${f}`);
      }
    }
    for (const f of have) {
      if (!want.includes(f)) drift.push(`no longer generated (stale): src/lib/gen/${f}`);
    }
    assert.deepEqual(
      drift,
      [],
      `src/lib/gen is out of date; run \`npm run gen\`:\n  ${drift.join("\n  ")}`,
    );
  });
});
