import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseManifests } from "./parse.ts";
import { formatProblem } from "./problem.ts";

const opts = { unknownFields: "reject" } as const;

describe("parseManifests", () => {
  it("accepts every valid fixture (one of each kind) without a problem", () => {
    const dir = join(import.meta.dirname, "testdata", "valid");
    const kinds = new Set<string>();
    for (const f of readdirSync(dir)) {
      const r = parseManifests(readFileSync(join(dir, f), "utf8"), f, opts);
      assert.deepEqual(r.problems.map(formatProblem), [], f);
      for (const d of r.documents) {
        assert.ok(d.draft, `${f} document ${d.index}`);
        kinds.add(d.draft.kind);
      }
    }
    assert.equal(kinds.size, 20);
  });

  it("points each problem at the line of the offending field", () => {
    const text = [
      "apiVersion: security.istio.io/v1", // 1
      "kind: AuthorizationPolicy",
      "metadata:",
      "  name: p",
      "spec:", // 5
      "  action: MAYBE",
      "  rules:",
      "  - from:",
      "    - source:",
      "        principals: notalist", // 10
      "        princ: [1]",
    ].join("\n");
    const r = parseManifests(text, "p.yaml", opts);
    assert.deepEqual(r.problems.map(formatProblem), [
      'p.yaml:6:11: spec.action: must be one of ALLOW, DENY, AUDIT, CUSTOM (got "MAYBE") (AuthorizationPolicy/default/p)',
      'p.yaml:10:21: spec.rules[0].from[0].source.principals: must be a list (got "notalist") (AuthorizationPolicy/default/p)',
      'p.yaml:11:9: spec.rules[0].from[0].source.princ: unknown field "princ" (AuthorizationPolicy/default/p)',
    ]);
    assert.equal(r.documents[0]?.key, "AuthorizationPolicy/default/p");
    assert.equal(r.documents[0]?.draft, undefined);
  });

  it("keeps documents apart: a syntax error spoils only its own document", () => {
    const text = [
      "apiVersion: v1",
      "kind: Namespace",
      "metadata: {name: a}",
      "---",
      "apiVersion: v1",
      "kind: Namespace",
      "metadata: {name: [b}",
      "---",
      "# only a comment",
      "---",
      "apiVersion: v1",
      "kind: Namespace",
      "metadata: {name: c}",
    ].join("\n");
    const r = parseManifests(text, "s.yaml", opts);
    assert.equal(r.unreadable, 1);
    assert.deepEqual(
      r.documents.map((d) => [d.index, d.draft?.key ?? null, d.line]),
      [
        [0, "Namespace/a", 1],
        [1, null, 7],
        [3, "Namespace/c", 11],
      ],
    );
    assert.equal(r.problems.length >= 1, true);
    assert.match(formatProblem(r.problems[0]!), /^s\.yaml:7:\d+: YAML syntax error: /);
  });

  it("reports duplicate keys as syntax errors", () => {
    const r = parseManifests("apiVersion: v1\nkind: Namespace\nkind: Pod\n", "d.yaml", opts);
    assert.equal(r.unreadable, 1);
    assert.match(
      formatProblem(r.problems[0]!),
      /^d\.yaml:3:1: YAML syntax error: Map keys must be unique/,
    );
  });

  it("expands List documents and prefixes item paths", () => {
    const text = [
      "apiVersion: v1",
      "kind: List",
      "items:",
      "- apiVersion: v1",
      "  kind: Namespace",
      "  metadata: {name: a}",
      "- apiVersion: v1",
      "  kind: Namespace",
      "  metadata: {name: b, bogus: 1}",
    ].join("\n");
    const r = parseManifests(text, "l.yaml", opts);
    assert.deepEqual(
      r.documents.map((d) => [d.item, d.key, d.line, Boolean(d.draft)]),
      [
        [0, "Namespace/a", 4, true],
        [1, "Namespace/b", 7, false],
      ],
    );
    assert.deepEqual(r.problems.map(formatProblem), [
      'l.yaml:9:23: items[1].metadata.bogus: unknown field "bogus" (Namespace/b)',
    ]);
  });

  it("rejects bad aliases and alias bombs as unreadable documents", () => {
    const missing = parseManifests(
      "apiVersion: v1\nkind: Namespace\nmetadata: *nope\n",
      "a.yaml",
      opts,
    );
    assert.equal(missing.unreadable, 1);
    assert.match(formatProblem(missing.problems[0]!), /^a\.yaml:1(:\d+)?: YAML (syntax )?error: /);
    const lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 8; i++) {
      const prev = String.fromCharCode(97 + i);
      const next = String.fromCharCode(98 + i);
      lines.push(
        `${next}: &${next} [*${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}]`,
      );
    }
    const bomb = parseManifests(lines.join("\n") + "\n", "bomb.yaml", opts);
    assert.equal(bomb.unreadable, 1);
    assert.match(bomb.problems[0]!.reason, /alias/i);
  });

  it("gives no file when parsing text that has none", () => {
    const r = parseManifests("kind: Nope\n", undefined, opts);
    assert.equal(r.problems[0]?.file, undefined);
  });
});
