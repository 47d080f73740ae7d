/**
 * The in-pod redirection rules istio-cni installs (INTEROP.md §5.4), as a pure function of the
 * pod's settings. Rules are written in the canonical form `iptables-save` prints them (`-d x/32`,
 * `-m tcp` before `--dport`, `--to-ports`), so what we apply can be compared to what the kernel
 * reports, line for line.
 */
import { isIPv4, isIPv6 } from "node:net";
import { AmbientError } from "../../lib/errors.ts";
import {
  CHAIN_OUTPUT,
  CHAIN_PREROUTING,
  DNS_CAPTURE_PORT,
  INPOD_MARK_SPEC,
  INPOD_RESTORE_MASK,
  INPOD_RULE_PRIORITY,
  INPOD_TPROXY_MARK,
  INPOD_TPROXY_MARK_SPEC,
  INPOD_TPROXY_MASK,
  ROUTE_TABLE_INBOUND,
  ZTUNNEL_INBOUND_PLAINTEXT_PORT,
  ZTUNNEL_INBOUND_PORT,
  ZTUNNEL_OUTBOUND_PORT,
  hex,
} from "./constants.ts";
import { isValidInterfaceName, type PodRedirectionSettings } from "./settings.ts";

export type IpFamily = "ipv4" | "ipv6";
export type IptablesTable = "mangle" | "nat" | "raw";

/** Table order in rendered output (the order istio-cni writes them). */
export const TABLE_ORDER: readonly IptablesTable[] = ["mangle", "nat", "raw"];
export const BUILTIN_CHAINS: readonly string[] = [
  "PREROUTING",
  "INPUT",
  "FORWARD",
  "OUTPUT",
  "POSTROUTING",
];

export interface IptablesRule {
  readonly table: IptablesTable;
  readonly chain: string;
  /** Everything after `-A <chain> `, in iptables-save's canonical spelling. */
  readonly spec: string;
}

/** `ip rule` / `ip route` state the rules need, per family. */
export interface PolicyRouting {
  /** `ip rule add fwmark 0x111/0xfff pref 32764 lookup 100` */
  readonly fwmark: number;
  readonly fwmask: number;
  readonly priority: number;
  readonly table: number;
  /** `ip route replace local <dst> dev lo table 100` */
  readonly localRouteDst: string;
}

export interface FamilyRules {
  readonly family: IpFamily;
  /** Our chains, each created (or flushed) in its table. */
  readonly chains: readonly { readonly table: IptablesTable; readonly chain: string }[];
  /** Jumps from built-in chains and the rules of our chains, in application order. */
  readonly rules: readonly IptablesRule[];
  readonly routing: PolicyRouting;
}

export interface PodRules {
  readonly settings: PodRedirectionSettings;
  /** One entry per enabled family, IPv4 first. */
  readonly families: readonly FamilyRules[];
}

function validate(s: PodRedirectionSettings): void {
  const problems: string[] = [];
  if (!s.ipv4 && !s.ipv6) problems.push("neither IPv4 nor IPv6 is enabled");
  if (!isIPv4(s.probeSnatIpv4))
    problems.push(`probe SNAT address "${s.probeSnatIpv4}" is not IPv4`);
  if (!isIPv6(s.probeSnatIpv6))
    problems.push(`probe SNAT address "${s.probeSnatIpv6}" is not IPv6`);
  for (const i of s.rerouteVirtualInterfaces) {
    if (!isValidInterfaceName(i)) problems.push(`"${i}" is not a valid interface name`);
  }
  if (problems.length > 0) {
    throw new AmbientError(
      "RULES_INVALID_SETTINGS",
      `cannot build redirection rules: ${problems.join("; ")}`,
    );
  }
}

function familyRules(s: PodRedirectionSettings, family: IpFamily): FamilyRules {
  const v6 = family === "ipv6";
  const localhost = v6 ? "::1/128" : "127.0.0.1/32";
  const probe = v6 ? `${s.probeSnatIpv6}/128` : `${s.probeSnatIpv4}/32`;
  const rules: IptablesRule[] = [];
  const add = (table: IptablesTable, chain: string, spec: string) =>
    rules.push({ table, chain, spec });

  // Jumps into our chains; kept apart from other rules so removal is a clean unhook.
  add("mangle", "PREROUTING", `-j ${CHAIN_PREROUTING}`);
  add("mangle", "OUTPUT", `-j ${CHAIN_OUTPUT}`);
  add("nat", "OUTPUT", `-j ${CHAIN_OUTPUT}`);
  if (s.dnsCapture) {
    add("raw", "PREROUTING", `-j ${CHAIN_PREROUTING}`);
    add("raw", "OUTPUT", `-j ${CHAIN_OUTPUT}`);
  }
  add("nat", "PREROUTING", `-j ${CHAIN_PREROUTING}`);

  // Virtual interfaces (KubeVirt, VMs): their inbound TCP is really outbound; short-circuit first.
  for (const i of s.rerouteVirtualInterfaces) {
    add("nat", CHAIN_PREROUTING, `-i ${i} -p tcp -j REDIRECT --to-ports ${ZTUNNEL_OUTBOUND_PORT}`);
    add("nat", CHAIN_PREROUTING, `-i ${i} -p tcp -j RETURN`);
  }

  // Packets ztunnel sent (SO_MARK 0x539) tag their connection, so replies to them route via lo.
  // Kept with bypass-inbound-capture too (istio/istio#58577), or inbound HBONE on 15008 breaks.
  add(
    "mangle",
    CHAIN_PREROUTING,
    `-m mark --mark ${INPOD_MARK_SPEC} -j CONNMARK --set-xmark ${INPOD_TPROXY_MARK_SPEC}`,
  );

  // Node-local probes arrive SNAT-ed to the probe address and bypass ztunnel.
  if (!s.bypassInboundCapture) add("nat", CHAIN_PREROUTING, `-s ${probe} -p tcp -m tcp -j ACCEPT`);
  add("nat", CHAIN_OUTPUT, `-d ${probe} -p tcp -m tcp -j ACCEPT`);

  // Everything else inbound (except HBONE on 15008 and ztunnel's own traffic) goes to 15006.
  if (!s.bypassInboundCapture) {
    add(
      "nat",
      CHAIN_PREROUTING,
      `! -d ${localhost} -p tcp -m tcp ! --dport ${ZTUNNEL_INBOUND_PORT} -m mark ! --mark ${INPOD_MARK_SPEC} -j REDIRECT --to-ports ${ZTUNNEL_INBOUND_PLAINTEXT_PORT}`,
    );
  }

  add(
    "mangle",
    CHAIN_OUTPUT,
    `-m connmark --mark ${INPOD_TPROXY_MARK_SPEC} -j CONNMARK --restore-mark --nfmask ${hex(INPOD_RESTORE_MASK)} --ctmask ${hex(INPOD_RESTORE_MASK)}`,
  );

  if (s.dnsCapture) {
    add(
      "nat",
      CHAIN_OUTPUT,
      `! -o lo -p udp -m mark ! --mark ${INPOD_MARK_SPEC} -m udp --dport 53 -j REDIRECT --to-ports ${DNS_CAPTURE_PORT}`,
    );
    add(
      "nat",
      CHAIN_OUTPUT,
      `! -d ${localhost} -p tcp -m tcp --dport 53 -m mark ! --mark ${INPOD_MARK_SPEC} -j REDIRECT --to-ports ${DNS_CAPTURE_PORT}`,
    );
    // ztunnel's upstream DNS queries and their answers get their own conntrack zone, so they
    // cannot collide with the application's redirected queries (istio/istio#33469).
    add(
      "raw",
      CHAIN_OUTPUT,
      `-p udp -m mark --mark ${INPOD_MARK_SPEC} -m udp --dport 53 -j CT --zone 1`,
    );
    add(
      "raw",
      CHAIN_PREROUTING,
      `-p udp -m mark ! --mark ${INPOD_MARK_SPEC} -m udp --sport 53 -j CT --zone 1`,
    );
  }

  // Replies on connections ztunnel accepted leave untouched.
  add("nat", CHAIN_OUTPUT, `-p tcp -m mark --mark ${INPOD_TPROXY_MARK_SPEC} -j ACCEPT`);
  // The app talking to itself on its pod IP (via lo) is not proxied.
  add("nat", CHAIN_OUTPUT, `! -d ${localhost} -o lo -j ACCEPT`);
  // All other outbound TCP not from ztunnel goes to ztunnel's outbound listener.
  add(
    "nat",
    CHAIN_OUTPUT,
    `! -d ${localhost} -p tcp -m mark ! --mark ${INPOD_MARK_SPEC} -j REDIRECT --to-ports ${ZTUNNEL_OUTBOUND_PORT}`,
  );

  // A chain exists in a table when something jumps to it.
  const chains: { table: IptablesTable; chain: string }[] = [];
  for (const r of rules) {
    const m = /^-j (\S+)$/.exec(r.spec);
    if (BUILTIN_CHAINS.includes(r.chain) && m?.[1] !== undefined) {
      const chain = m[1];
      if (!chains.some((c) => c.table === r.table && c.chain === chain))
        chains.push({ table: r.table, chain });
    }
  }

  return { family, chains, rules, routing: policyRouting(family) };
}

/** Packets carrying the connmark ztunnel's connections get are delivered locally via table 100. */
export function policyRouting(family: IpFamily): PolicyRouting {
  return {
    fwmark: INPOD_TPROXY_MARK,
    fwmask: INPOD_TPROXY_MASK,
    priority: INPOD_RULE_PRIORITY,
    table: ROUTE_TABLE_INBOUND,
    localRouteDst: family === "ipv6" ? "::/0" : "0.0.0.0/0",
  };
}

/** The rules for one pod. Throws `RULES_INVALID_SETTINGS` for settings no pod can have. */
export function buildPodRules(settings: PodRedirectionSettings): PodRules {
  validate(settings);
  const families: FamilyRules[] = [];
  if (settings.ipv4) families.push(familyRules(settings, "ipv4"));
  if (settings.ipv6) families.push(familyRules(settings, "ipv6"));
  return { settings, families };
}

/**
 * The `iptables-restore` (or `ip6tables-restore`) input for an empty namespace, grouped the way
 * `iptables-save` prints it: per table, our chains declared, then rules chain by chain (built-in
 * chains in hook order, ours alphabetically), each chain's rules in application order.
 */
export function renderRestore(f: FamilyRules): string {
  const out: string[] = [];
  for (const table of TABLE_ORDER) {
    const chains = f.chains
      .filter((c) => c.table === table)
      .map((c) => c.chain)
      .sort();
    const rules = f.rules.filter((r) => r.table === table);
    if (chains.length === 0 && rules.length === 0) continue;
    out.push(`*${table}`);
    for (const c of chains) out.push(`:${c} - [0:0]`);
    for (const chain of [...BUILTIN_CHAINS, ...chains]) {
      for (const r of rules) if (r.chain === chain) out.push(`-A ${chain} ${r.spec}`);
    }
    out.push("COMMIT");
  }
  return out.join("\n") + "\n";
}

/** Policy routing as `ip` commands (`ip -4 rule add ...`, `ip -4 route replace ...`). */
export function renderRoutingCommands(f: FamilyRules): string[] {
  const fam = f.family === "ipv6" ? "-6" : "-4";
  const r = f.routing;
  return [
    `ip ${fam} rule add fwmark ${hex(r.fwmark)}/${hex(r.fwmask)} pref ${r.priority} lookup ${r.table}`,
    `ip ${fam} route replace local ${r.localRouteDst} dev lo table ${r.table}`,
  ];
}

/** Everything for one pod as reviewable text: the golden-file form. */
export function renderPodRules(rules: PodRules): string {
  const parts: string[] = [];
  for (const f of rules.families) {
    const tool = f.family === "ipv6" ? "ip6tables-restore" : "iptables-restore";
    parts.push(`# ${tool} --noflush\n${renderRestore(f)}`);
  }
  for (const f of rules.families) {
    parts.push(`# ${f.family} policy routing\n${renderRoutingCommands(f).join("\n")}\n`);
  }
  return parts.join("\n");
}
