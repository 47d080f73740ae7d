import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Graph } from "./derived.ts";
import { Table } from "./table.ts";

interface Item {
  key: string;
  ns: string;
  v: number;
}

function setup() {
  const g = new Graph();
  const config = new Table<{ factor: number }>("config");
  const items = new Table<Item>("items").addIndex("ns", (i) => [i.ns]);
  const out = new Table<{ key: string; value: number }>("out").trackChanges();
  const builds: string[] = [];
  g.derive({
    name: "Scaled",
    input: items,
    output: out,
    build: (ctx, item, key) => {
      builds.push(key);
      const factor = ctx.get(config, "main")?.factor ?? 1;
      // Depends on the sum of the positive items of the same namespace.
      const peers = ctx.index(items, "ns", item.ns, (p) => p.v > 0);
      const sum = peers.reduce((s, p) => s + p.v, 0);
      return [{ key, value: item.v * factor + sum }];
    },
    keyOf: (o) => o.key,
    equals: (a, b) => a.value === b.value,
  });
  return { g, config, items, out, builds };
}

describe("krt engine", () => {
  it("builds, then rebuilds only what read the changed key", () => {
    const { g, config, items, out, builds } = setup();
    items.write("a", { key: "a", ns: "x", v: 1 });
    items.write("b", { key: "b", ns: "y", v: 2 });
    g.flush();
    assert.deepEqual(builds.splice(0).sort(), ["a", "b"]);
    assert.equal(out.get("a")?.value, 2);
    config.write("other", { factor: 5 });
    g.flush();
    assert.deepEqual(builds, [], "a key nobody read");
    config.write("main", { factor: 10 });
    g.flush();
    assert.deepEqual(builds.splice(0).sort(), ["a", "b"]);
    assert.equal(out.get("a")?.value, 11);
  });

  it("index reads wake only on items passing the filter before or after", () => {
    const { g, items, builds } = setup();
    items.write("a", { key: "a", ns: "x", v: 1 });
    items.write("b", { key: "b", ns: "y", v: 1 });
    g.flush();
    builds.splice(0);
    items.write("neg", { key: "neg", ns: "x", v: -1 });
    g.flush();
    assert.deepEqual(builds.splice(0), ["neg"], "a filtered-out newcomer wakes nobody else");
    items.write("neg", { key: "neg", ns: "x", v: 3 });
    g.flush();
    assert.deepEqual(
      builds.splice(0).sort(),
      ["a", "neg"],
      "passing the filter now wakes namespace x only",
    );
    items.write("neg", { key: "neg", ns: "y", v: 3 });
    g.flush();
    assert.deepEqual(builds.splice(0).sort(), ["a", "b", "neg"], "moving namespaces wakes both");
  });

  it("unchanged outputs are not rewritten", () => {
    const { g, config, items, out } = setup();
    items.write("a", { key: "a", ns: "x", v: 0 });
    g.flush();
    out.drainChanges();
    config.write("main", { factor: 7 });
    g.flush();
    assert.deepEqual(out.drainChanges(), [], "0 * factor is still 0");
  });

  it("deleting an input removes its outputs and dependencies", () => {
    const { g, items, out, builds } = setup();
    items.write("a", { key: "a", ns: "x", v: 1 });
    g.flush();
    items.write("a", undefined);
    g.flush();
    assert.equal(out.get("a"), undefined);
    assert.equal(items.watcherCount(), 0);
    builds.splice(0);
    items.write("z", { key: "z", ns: "x", v: 1 });
    g.flush();
    assert.deepEqual(builds, ["z"]);
  });

  it("two inputs producing one key: first owner wins, the other takes over on release", () => {
    const g = new Graph();
    const input = new Table<{ target: string; n: number }>("in");
    const out = new Table<{ key: string; n: number }>("out");
    g.derive({
      name: "Claim",
      input,
      output: out,
      build: (_ctx, i) => [{ key: i.target, n: i.n }],
      keyOf: (o) => o.key,
      equals: (a, b) => a.n === b.n,
    });
    input.write("1", { target: "shared", n: 1 });
    input.write("2", { target: "shared", n: 2 });
    g.flush();
    assert.equal(out.get("shared")?.n, 1);
    assert.match(g.reports()[0]?.message ?? "", /already produced/);
    input.write("1", undefined);
    g.flush();
    assert.equal(out.get("shared")?.n, 2);
  });

  it("index key tables track which values exist", () => {
    const items = new Table<Item>("items").addIndex("ns", (i) => [i.ns]);
    const keys = items.indexKeys("ns");
    items.write("a", { key: "a", ns: "x", v: 1 });
    items.write("b", { key: "b", ns: "x", v: 1 });
    assert.deepEqual([...keys.keys()], ["x"]);
    items.write("a", undefined);
    assert.deepEqual([...keys.keys()], ["x"]);
    items.write("b", undefined);
    assert.deepEqual([...keys.keys()], []);
  });

  it("a failing build is reported, not thrown; reading a later table is a bug it reports", () => {
    const g = new Graph();
    const input = new Table<number>("in");
    const mid = new Table<number>("mid");
    const out = new Table<number>("out");
    g.derive({
      name: "Early",
      input,
      output: mid,
      build: (ctx, n) => [n + (ctx.get(out, "x") ?? 0)],
      keyOf: (n) => String(n),
      equals: (a, b) => a === b,
    });
    g.derive({
      name: "Late",
      input: mid,
      output: out,
      build: (_c, n) => [n],
      keyOf: (n) => String(n),
      equals: (a, b) => a === b,
    });
    input.write("1", 1);
    g.flush();
    assert.equal(mid.size, 0);
    assert.match(g.reports()[0]?.message ?? "", /reads out, which is computed after it/);
  });

  it("refuses graphs that one pass in declaration order could not settle", () => {
    const g = new Graph();
    const a = new Table<number>("a");
    const b = new Table<number>("b");
    const c = new Table<number>("c");
    const same = {
      build: (_c: unknown, n: number) => [n],
      keyOf: (n: number) => String(n),
      equals: (x: number, y: number) => x === y,
    };
    g.derive({ name: "AtoB", input: a, output: b, ...same });
    g.derive({ name: "BtoC", input: b, output: c, ...same });
    // Writing b or a now would wake a computation that already ran in the pass.
    assert.throws(() => g.derive({ name: "CtoB", input: c, output: b, ...same }), /written after/);
    assert.throws(() => g.derive({ name: "CtoA", input: c, output: a, ...same }), /written after/);
    // A cycle through two more tables.
    const d = new Table<number>("d");
    const e = new Table<number>("e");
    g.derive({ name: "CtoD", input: c, output: d, ...same });
    g.derive({ name: "DtoE", input: d, output: e, ...same });
    assert.throws(() => g.derive({ name: "EtoD", input: e, output: d, ...same }), /written after/);
  });
});
