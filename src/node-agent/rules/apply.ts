/**
 * Applying and removing a pod's redirection rules inside its network namespace. Both are
 * idempotent: apply reads what the namespace has and writes only the difference (re-applying
 * replaces, never duplicates), and remove takes away our chains, jumps, ip rules and routes and
 * leaves everything else alone; removing from a pod that has none of ours is a no-op.
 */
import { stat } from "node:fs/promises";
import { AmbientError, errnoCode } from "../../lib/errors.ts";
import { HOST_NFT_TABLE, hex } from "./constants.ts";
import { run, runChecked, type RunOptions } from "../../lib/exec.ts";
import { buildHostProbeNft, removeHostProbeNft, type HostProbeSettings } from "./host-probe.ts";
import {
  policyRouting,
  type FamilyRules,
  type IpFamily,
  type PodRules,
  type PolicyRouting,
} from "./pod-rules.ts";
import { isEmptyTable, parseSave, restoreTransition, touchedTables } from "./reconcile.ts";

export interface ApplyOptions {
  /** Per-command time limit. */
  readonly timeoutMs?: number;
}

const FAMILIES: readonly IpFamily[] = ["ipv4", "ipv6"];

const tools = {
  ipv4: { save: "iptables-save", restore: "iptables-restore", ipFlag: "-4", nft: "ip" },
  ipv6: { save: "ip6tables-save", restore: "ip6tables-restore", ipFlag: "-6", nft: "ip6" },
} as const;

function runOpts(netns: string, opts: ApplyOptions): RunOptions {
  const base = { netns, errorCode: "RULES_COMMAND_FAILED" };
  return opts.timeoutMs === undefined ? base : { ...base, timeoutMs: opts.timeoutMs };
}

// Applies and removals for one namespace run one at a time: each reads state, then writes.
const queues = new Map<string, Promise<unknown>>();

function serialised<T>(netns: string, work: () => Promise<T>): Promise<T> {
  const prev = queues.get(netns) ?? Promise.resolve();
  const next = prev.then(work, work);
  const tail = next.catch(() => {});
  queues.set(netns, tail);
  void tail.then(() => {
    if (queues.get(netns) === tail) queues.delete(netns);
  });
  return next;
}

async function requireNetns(netns: string): Promise<void> {
  try {
    await stat(netns);
  } catch (err) {
    throw new AmbientError(
      "RULES_NETNS_MISSING",
      errnoCode(err) === "ENOENT"
        ? `network namespace ${netns} does not exist (has the pod gone away?)`
        : `cannot open network namespace ${netns}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Installs (or brings up to date) a pod's rules in the namespace at `netns`. */
export function applyPodRules(
  netns: string,
  rules: PodRules,
  opts: ApplyOptions = {},
): Promise<void> {
  return serialised(netns, async () => {
    await requireNetns(netns);
    for (const family of FAMILIES) {
      const want = rules.families.find((f) => f.family === family);
      // Routing first, as istio-cni does, so redirected replies already have their route.
      if (want) await ensureRouting(netns, want, opts);
      await reconcileIptables(netns, family, want, opts);
      if (!want) await removeRouting(netns, family, opts);
    }
  });
}

/** Removes every rule, chain, ip rule and route of ours from the namespace at `netns`. */
export function removePodRules(netns: string, opts: ApplyOptions = {}): Promise<void> {
  return serialised(netns, async () => {
    await requireNetns(netns);
    for (const family of FAMILIES) {
      await reconcileIptables(netns, family, undefined, opts);
      await removeRouting(netns, family, opts);
    }
  });
}

async function reconcileIptables(
  netns: string,
  family: IpFamily,
  want: FamilyRules | undefined,
  opts: ApplyOptions,
): Promise<void> {
  const t = tools[family];
  const run1 = runOpts(netns, opts);
  const saved = await run(t.save, [], run1);
  if (saved.code !== 0) {
    // Without IPv6 in the kernel there is nothing of ours to remove; anything else is an error.
    if (family === "ipv6" && want === undefined) return;
    throw new AmbientError(
      "RULES_COMMAND_FAILED",
      `"${t.save}" in netns ${netns} failed with exit code ${saved.code}: ${saved.stderr.trim()}`,
    );
  }
  const restore = restoreTransition(want, parseSave(saved.stdout));
  if (restore === "") return;
  await runChecked(t.restore, ["--noflush"], { ...run1, input: restore });
  // Only a transition that deletes chains can leave a table empty.
  if (/^-X /m.test(restore)) await dropEmptyTables(netns, family, touchedTables(restore), opts);
}

/** Deletes tables we touched that are left with nothing in them (see `isEmptyTable`). */
async function dropEmptyTables(
  netns: string,
  family: IpFamily,
  touched: readonly string[],
  opts: ApplyOptions,
): Promise<void> {
  if (touched.length === 0) return;
  const t = tools[family];
  const run1 = runOpts(netns, opts);
  const after = parseSave(await runChecked(t.save, [], run1));
  const empty = touched.filter((name) => {
    const table = after.get(name);
    return table !== undefined && isEmptyTable(table);
  });
  if (empty.length === 0) return;
  const script = empty.map((name) => `delete table ${t.nft} ${name}\n`).join("");
  await runChecked("nft", ["-f", "-"], { ...run1, input: script });
}

interface IpRuleJson {
  priority?: number;
  fwmark?: string;
  fwmask?: string;
  table?: string;
}

interface IpRouteJson {
  type?: string;
  dst?: string;
  dev?: string;
}

function isOurRule(r: IpRuleJson, want: PolicyRouting): boolean {
  return (
    r.priority === want.priority &&
    r.fwmark !== undefined &&
    Number(r.fwmark) === want.fwmark &&
    Number(r.fwmask ?? "0xffffffff") === want.fwmask &&
    r.table === String(want.table)
  );
}

function isOurRoute(r: IpRouteJson): boolean {
  return (
    r.type === "local" &&
    r.dev === "lo" &&
    (r.dst === "default" || r.dst === "0.0.0.0/0" || r.dst === "::/0")
  );
}

function ruleArgs(p: PolicyRouting): string[] {
  return [
    "fwmark",
    `${hex(p.fwmark)}/${hex(p.fwmask)}`,
    "pref",
    String(p.priority),
    "lookup",
    String(p.table),
  ];
}

function parseJsonList<T>(text: string): T[] {
  const trimmed = text.trim();
  return trimmed === "" ? [] : (JSON.parse(trimmed) as T[]);
}

async function listJson<T>(netns: string, args: string[], opts: ApplyOptions): Promise<T[]> {
  return parseJsonList<T>(await runChecked("ip", ["-j", ...args], runOpts(netns, opts)));
}

async function ensureRouting(netns: string, f: FamilyRules, opts: ApplyOptions): Promise<void> {
  const flag = tools[f.family].ipFlag;
  const run1 = runOpts(netns, opts);
  if (f.family === "ipv6") {
    // Like istio-cni: IPv6 may be enabled but switched off on lo; then there is no route to add.
    const disabled = await run("cat", ["/proc/sys/net/ipv6/conf/lo/disable_ipv6"], run1);
    if (disabled.code !== 0 || disabled.stdout.trim() === "1") return;
  }
  const rules = await listJson<IpRuleJson>(netns, [flag, "rule", "show"], opts);
  if (!rules.some((r) => isOurRule(r, f.routing))) {
    await runChecked("ip", [flag, "rule", "add", ...ruleArgs(f.routing)], run1);
  }
  await runChecked(
    "ip",
    [
      flag,
      "route",
      "replace",
      "local",
      f.routing.localRouteDst,
      "dev",
      "lo",
      "table",
      String(f.routing.table),
    ],
    run1,
  );
}

async function removeRouting(netns: string, family: IpFamily, opts: ApplyOptions): Promise<void> {
  const flag = tools[family].ipFlag;
  const want = policyRouting(family);
  const run1 = runOpts(netns, opts);
  const listed = await run("ip", ["-j", flag, "rule", "show"], run1);
  // No IPv6 in this namespace: nothing of ours can be there.
  if (listed.code !== 0 && family === "ipv6") return;
  if (listed.code !== 0) {
    throw new AmbientError(
      "RULES_COMMAND_FAILED",
      `"ip -j ${flag} rule show" in netns ${netns} failed with exit code ${listed.code}: ${listed.stderr.trim()}`,
    );
  }
  const rules = parseJsonList<IpRuleJson>(listed.stdout);
  for (const r of rules) {
    if (isOurRule(r, want)) await runChecked("ip", [flag, "rule", "del", ...ruleArgs(want)], run1);
  }
  const listedRoutes = await run(
    "ip",
    ["-j", flag, "route", "show", "table", String(want.table)],
    run1,
  );
  // A table that was never used does not exist yet: nothing of ours in it.
  if (listedRoutes.code !== 0 && /table does not exist/i.test(listedRoutes.stderr)) return;
  if (listedRoutes.code !== 0) {
    throw new AmbientError(
      "RULES_COMMAND_FAILED",
      `"ip -j ${flag} route show table ${want.table}" in netns ${netns} failed with exit code ${listedRoutes.code}: ${listedRoutes.stderr.trim()}`,
    );
  }
  const routes = parseJsonList<IpRouteJson>(listedRoutes.stdout);
  for (const r of routes) {
    if (isOurRoute(r)) {
      await runChecked(
        "ip",
        [
          flag,
          "route",
          "del",
          "local",
          want.localRouteDst,
          "dev",
          "lo",
          "table",
          String(want.table),
        ],
        run1,
      );
    }
  }
}

/** Installs or updates the node's probe SNAT (see host-probe.ts) in the node namespace. */
export async function applyHostProbeRules(
  netns: string,
  settings: HostProbeSettings,
  opts: ApplyOptions = {},
): Promise<void> {
  const script = buildHostProbeNft(settings);
  return serialised(netns, async () => {
    await requireNetns(netns);
    const run1 = runOpts(netns, opts);
    await runChecked("nft", ["-f", "-"], { ...run1, input: script });
  });
}

/** Removes the node's probe SNAT; fine when it is not there. */
export function removeHostProbeRules(netns: string, opts: ApplyOptions = {}): Promise<void> {
  return serialised(netns, async () => {
    await requireNetns(netns);
    const run1 = runOpts(netns, opts);
    const tables = await runChecked("nft", ["list", "tables", "inet"], run1);
    if (!tables.split("\n").some((l) => l.trim() === `table inet ${HOST_NFT_TABLE}`)) return;
    await runChecked("nft", ["-f", "-"], { ...run1, input: removeHostProbeNft() });
  });
}
