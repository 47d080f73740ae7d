/**
 * Turning what a namespace has (`iptables-save`) into what it should have, as one
 * `iptables-restore --noflush` input per family. Pure, so the tricky cases (a second apply, a
 * leftover raw table after DNS capture was turned off, duplicated jumps) are unit-tested.
 *
 * Each table is replaced in one restore transaction: our chains are declared (which creates or
 * flushes them) and refilled in the same COMMIT, so traffic never sees a half-written chain and
 * a pod is never left uncaptured during a re-apply.
 */
import { OWNED_POD_CHAINS } from "./constants.ts";
import {
  BUILTIN_CHAINS,
  TABLE_ORDER,
  type FamilyRules,
  type IptablesRule,
  type IptablesTable,
} from "./pod-rules.ts";

export interface SavedRule {
  readonly chain: string;
  readonly spec: string;
}

export interface SavedTable {
  /** Chain name to policy (`ACCEPT`, `DROP`, or `-` for user chains). */
  readonly chains: ReadonlyMap<string, string>;
  readonly rules: readonly SavedRule[];
}

export type SavedState = ReadonlyMap<string, SavedTable>;

/** Parses `iptables-save` output; comments and counters are dropped. */
export function parseSave(text: string): SavedState {
  const tables = new Map<string, { chains: Map<string, string>; rules: SavedRule[] }>();
  let current: { chains: Map<string, string>; rules: SavedRule[] } | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("*")) {
      current = { chains: new Map(), rules: [] };
      tables.set(line.slice(1), current);
    } else if (line === "COMMIT") {
      current = undefined;
    } else if (current && line.startsWith(":")) {
      const [name, policy] = line.slice(1).split(/\s+/);
      if (name !== undefined) current.chains.set(name, policy ?? "-");
    } else if (current && line.startsWith("-A ")) {
      const m = /^-A (\S+)(?: (.*))?$/.exec(line);
      if (m?.[1] !== undefined) current.rules.push({ chain: m[1], spec: m[2] ?? "" });
    }
  }
  return tables;
}

function target(spec: string): string | undefined {
  return /(?:^| )-[jg] (\S+)(?: |$)/.exec(spec)?.[1];
}

/** Whether a saved table holds anything of ours: one of our chains or a rule jumping into one. */
export function hasOwned(t: SavedTable, owned: readonly string[] = OWNED_POD_CHAINS): boolean {
  if ([...t.chains.keys()].some((c) => owned.includes(c))) return true;
  return t.rules.some((r) => owned.includes(target(r.spec) ?? ""));
}

/**
 * The restore input that takes `current` to `desired` (or, with `desired` undefined, removes
 * everything of ours), touching nothing else. Tables already exactly as desired are left out, so
 * a repeated apply returns "" and changes nothing (not even counters).
 */
export function restoreTransition(
  desired: FamilyRules | undefined,
  current: SavedState,
  owned: readonly string[] = OWNED_POD_CHAINS,
): string {
  const out: string[] = [];
  for (const table of TABLE_ORDER) {
    const lines = tableTransition(table, desired, current.get(table), owned);
    if (lines.length > 0) out.push(`*${table}`, ...lines, "COMMIT");
  }
  return out.length === 0 ? "" : out.join("\n") + "\n";
}

/** The tables a transition touches; the ones that may be left empty afterwards. */
export function touchedTables(restore: string): IptablesTable[] {
  return TABLE_ORDER.filter((t) => restore.includes(`*${t}\n`));
}

function tableTransition(
  table: IptablesTable,
  desired: FamilyRules | undefined,
  cur: SavedTable | undefined,
  owned: readonly string[],
): string[] {
  const wantChains = (desired?.chains ?? []).filter((c) => c.table === table).map((c) => c.chain);
  const wantRules = (desired?.rules ?? []).filter((r) => r.table === table);
  const haveChains = cur ? [...cur.chains.keys()].filter((c) => owned.includes(c)) : [];
  // Rules outside our chains that jump into them: desired jumps already present are kept in
  // place, everything else pointing at our chains is unhooked.
  const refs = (cur?.rules ?? []).filter(
    (r) => !owned.includes(r.chain) && owned.includes(target(r.spec) ?? ""),
  );
  if (wantChains.length === 0 && wantRules.length === 0 && haveChains.length === 0) {
    if (refs.length === 0) return [];
  }

  const wantJumps: IptablesRule[] = wantRules.filter((r) => BUILTIN_CHAINS.includes(r.chain));
  if (cur && alreadyAsDesired(cur, wantChains, wantRules, wantJumps, haveChains, refs)) return [];
  const kept = new Set<IptablesRule>();
  const deletes: string[] = [];
  for (const ref of refs) {
    const match = wantJumps.find(
      (j) => !kept.has(j) && j.chain === ref.chain && j.spec === ref.spec,
    );
    if (match) kept.add(match);
    else deletes.push(`-D ${ref.chain} ${ref.spec}`);
  }

  const lines: string[] = [];
  const declared = [...new Set([...wantChains, ...haveChains])].sort();
  // Declaring a chain under --noflush creates it, or flushes it if it exists.
  for (const c of declared) lines.push(`:${c} - [0:0]`);
  lines.push(...deletes);
  for (const chain of BUILTIN_CHAINS) {
    for (const j of wantJumps)
      if (j.chain === chain && !kept.has(j)) lines.push(`-A ${chain} ${j.spec}`);
  }
  for (const chain of [...wantChains].sort()) {
    for (const r of wantRules) if (r.chain === chain) lines.push(`-A ${chain} ${r.spec}`);
  }
  for (const c of haveChains) if (!wantChains.includes(c)) lines.push(`-X ${c}`);
  return lines;
}

function alreadyAsDesired(
  cur: SavedTable,
  wantChains: readonly string[],
  wantRules: readonly IptablesRule[],
  wantJumps: readonly IptablesRule[],
  haveChains: readonly string[],
  refs: readonly SavedRule[],
): boolean {
  const same = (a: readonly string[], b: readonly string[]) =>
    a.length === b.length && a.every((x, i) => x === b[i]);
  if (!same([...haveChains].sort(), [...wantChains].sort())) return false;
  const key = (r: { chain: string; spec: string }) => `${r.chain} ${r.spec}`;
  if (!same(refs.map(key).sort(), wantJumps.map(key).sort())) return false;
  for (const chain of wantChains) {
    const have = cur.rules.filter((r) => r.chain === chain).map((r) => r.spec);
    const want = wantRules.filter((r) => r.chain === chain).map((r) => r.spec);
    if (!same(have, want)) return false;
  }
  return true;
}

/**
 * Whether a saved table is an empty shell (only built-in chains, policy ACCEPT, no rules), the
 * state our removal leaves when nobody else uses the table. Such tables are deleted so removal
 * leaves nothing behind, and so the nat hooks stop costing conntrack work.
 */
export function isEmptyTable(t: SavedTable): boolean {
  if (t.rules.length > 0) return false;
  for (const [name, policy] of t.chains) {
    if (!BUILTIN_CHAINS.includes(name) || policy !== "ACCEPT") return false;
  }
  return true;
}
