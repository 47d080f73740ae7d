/**
 * Derived collections: each item of an input table is turned into zero or more output items by a
 * pure `build` function. Every read `build` makes goes through a `Ctx`, which records it, so only
 * the items whose inputs changed are rebuilt. A `Graph` runs the derived collections in the order
 * they were declared (inputs before readers), which makes one pass per flush enough.
 */
import type { Key, Predicate, Table, Watched, Watcher } from "./table.ts";

export type ReportLevel = "error" | "warning" | "info";

/** A message about one source object, produced while converting it. */
export interface Report {
  level: ReportLevel;
  /** The object the message is about, e.g. `AuthorizationPolicy/ns/name`. */
  object: string;
  message: string;
}

export interface DerivedSpec<I, O> {
  name: string;
  input: Table<I>;
  output: Table<O>;
  build: (ctx: Ctx, item: I, key: Key) => readonly O[];
  keyOf: (item: O) => Key;
  /** Unchanged outputs are not re-written, so nothing downstream of them wakes up. */
  equals: (a: O, b: O) => boolean;
}

type Reg =
  | { table: Watched; type: "key"; key: Key }
  | { table: Watched; type: "index"; index: string; value: string }
  | { table: Watched; type: "all" };

const noReports: Report[] = [];

/** The computation for one input key. */
class Node implements Watcher {
  readonly key: Key;
  private readonly dirty: Set<Key>;
  regs: Reg[] = [];
  outputs: Key[] = [];
  /** Shared empty array until the first report (most builds report nothing). */
  reports: Report[] = noReports;

  constructor(key: Key, dirty: Set<Key>) {
    this.key = key;
    this.dirty = dirty;
  }

  markDirty(): void {
    this.dirty.add(this.key);
  }

  release(): void {
    for (const r of this.regs) {
      if (r.type === "key") r.table.unwatchKey(r.key, this);
      else if (r.type === "index") r.table.unwatchIndex(r.index, r.value, this);
      else r.table.unwatchAll(this);
    }
    this.regs = [];
  }
}

/** What `build` reads through. Reads record dependencies; `report` attaches messages. */
export class Ctx {
  private readonly node: Node;
  private readonly rank: number;
  private readonly derivedName: string;

  constructor(node: Node, rank: number, derivedName: string) {
    this.node = node;
    this.rank = rank;
    this.derivedName = derivedName;
  }

  get<T>(table: Table<T>, key: Key): T | undefined {
    this.check(table);
    table.watchKey(key, this.node);
    this.node.regs.push({ table, type: "key", key });
    return table.get(key);
  }

  /** Items with index value `value` that pass `filter`; rebuilt when any item passing `filter`
   * before or after a change gains or loses that index value. */
  index<T>(table: Table<T>, index: string, value: string, filter?: Predicate<T>): T[] {
    this.check(table);
    table.watchIndex(index, value, this.node, filter ?? null);
    this.node.regs.push({ table, type: "index", index, value });
    const out: T[] = [];
    for (const item of table.lookup(index, value))
      if (filter === undefined || filter(item)) out.push(item);
    return out;
  }

  all<T>(table: Table<T>, filter?: Predicate<T>): T[] {
    this.check(table);
    table.watchAll(this.node, filter ?? null);
    this.node.regs.push({ table, type: "all" });
    const out: T[] = [];
    for (const item of table.values()) if (filter === undefined || filter(item)) out.push(item);
    return out;
  }

  report(level: ReportLevel, object: string, message: string): void {
    if (this.node.reports === noReports) this.node.reports = [];
    this.node.reports.push({ level, object, message });
  }

  private check(table: Watched): void {
    if (table.rank >= this.rank) {
      throw new Error(`${this.derivedName} reads ${table.name}, which is computed after it`);
    }
  }
}

export class Derived<I, O> {
  readonly spec: DerivedSpec<I, O>;
  readonly order: number;
  private readonly dirty = new Set<Key>();
  private readonly nodes = new Map<Key, Node>();

  constructor(spec: DerivedSpec<I, O>, order: number) {
    this.spec = spec;
    this.order = order;
    // One pass in declaration order is enough only if inputs are computed before readers.
    if (spec.input.rank >= order) {
      throw new Error(`${spec.name} takes ${spec.input.name} as input, which is computed after it`);
    }
    spec.output.raiseRank(order);
    spec.input.subscribe((key) => this.dirty.add(key), order);
  }

  /** Rebuilds every dirty input key; returns how many builds ran. */
  run(): number {
    let builds = 0;
    while (this.dirty.size > 0) {
      const keys = [...this.dirty].sort();
      this.dirty.clear();
      for (const key of keys) {
        this.rebuild(key);
        builds++;
      }
    }
    return builds;
  }

  *reports(): IterableIterator<Report> {
    for (const node of this.nodes.values()) yield* node.reports;
  }

  private rebuild(key: Key): void {
    const { input, output, build, keyOf, equals } = this.spec;
    let node = this.nodes.get(key);
    node?.release();
    const item = input.get(key);
    if (item === undefined) {
      if (node !== undefined) {
        for (const k of node.outputs) this.release(node, k);
        this.nodes.delete(key);
      }
      return;
    }
    if (node === undefined) {
      node = new Node(key, this.dirty);
      this.nodes.set(key, node);
    }
    node.reports = noReports;
    const ctx = new Ctx(node, this.order, this.spec.name);
    let outs: readonly O[];
    try {
      outs = build(ctx, item, key);
    } catch (err) {
      // A bug converting one object must not stop the others from being served.
      const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
      ctx.report(
        "error",
        `${this.spec.name}/${key}`,
        `internal error converting this object: ${detail}`,
      );
      outs = [];
    }
    const produced: Key[] = [];
    for (const o of outs) {
      const k = keyOf(o);
      if (produced.includes(k)) continue;
      const owner = output.ownerOf(k);
      if (owner !== undefined && owner !== node) {
        output.contend(k, node);
        ctx.report(
          "warning",
          `${this.spec.name}/${key}`,
          `${output.name} ${k} is already produced by another object; ignoring this one`,
        );
        continue;
      }
      produced.push(k);
      const prev = output.get(k);
      if (owner === undefined || prev === undefined || !equals(prev, o)) output.write(k, o);
      output.setOwner(k, node);
    }
    for (const k of node.outputs) if (!produced.includes(k)) this.release(node, k);
    node.outputs = produced;
  }

  private release(node: Node, k: Key): void {
    const output = this.spec.output;
    if (output.ownerOf(k) !== node) return;
    output.write(k, undefined);
    output.setOwner(k, undefined);
  }
}

export class Graph {
  private readonly deriveds: Derived<unknown, unknown>[] = [];

  derive<I, O>(spec: DerivedSpec<I, O>): Derived<I, O> {
    const d = new Derived(spec, this.deriveds.length + 1);
    this.deriveds.push(d as unknown as Derived<unknown, unknown>);
    return d;
  }

  /** Runs every derived collection with pending work, in declaration order. */
  flush(): Map<string, number> {
    const builds = new Map<string, number>();
    for (const d of this.deriveds) {
      const n = d.run();
      if (n > 0) builds.set(d.spec.name, n);
    }
    return builds;
  }

  reports(): Report[] {
    const out: Report[] = [];
    for (const d of this.deriveds) for (const r of d.reports()) out.push(r);
    return out;
  }
}
