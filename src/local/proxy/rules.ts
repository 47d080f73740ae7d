/**
 * kube-proxy's iptables rules (its `iptables` mode), pure: `iptables-restore --noflush` input
 * for the nat and filter tables. Per Service port: a `KUBE-SERVICES` match on VIP:port jumping
 * to `KUBE-SVC-<hash>`, which picks one `KUBE-SEP-<hash>` per endpoint with `statistic` random
 * probabilities 1/n, 1/(n-1), ... (uniform overall); each SEP DNATs to the endpoint and marks
 * hairpin traffic (a pod reaching itself through its Service) for masquerade in
 * `KUBE-POSTROUTING`. A Service port without endpoints is rejected at once (filter table) rather
 * than left to time out. Only VIPs are matched: traffic to pod IPs — HBONE to port 15008
 * included — passes untouched. Chains of ours that are no longer needed are flushed and deleted.
 */
import { createHash } from "node:crypto";
import type { ServicePort } from "./endpoints.ts";

export const MASQ_MARK = "0x4000";

/** Base32 of SHA-256, as kube-proxy names its per-service and per-endpoint chains. */
function chainHash(text: string): string {
  const digest = createHash("sha256").update(text).digest();
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 16) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length >= 16) break;
  }
  return out;
}

export function portKey(sp: ServicePort): string {
  return `${sp.namespace}/${sp.service}${sp.portName !== "" ? `:${sp.portName}` : ""}`;
}

export function svcChain(sp: ServicePort): string {
  return `KUBE-SVC-${chainHash(`${portKey(sp)}${sp.protocol.toLowerCase()}`)}`;
}

export function sepChain(sp: ServicePort, ip: string, port: number): string {
  return `KUBE-SEP-${chainHash(`${portKey(sp)}${sp.protocol.toLowerCase()}${ip}:${port}`)}`;
}

/** Chains this generator owns (so stale ones can be recognised and removed). */
export function isOurChain(name: string): boolean {
  return /^KUBE-(SVC|SEP)-[A-Z2-7]{16}$/.test(name);
}

const BASE_NAT = ["KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"] as const;

function comment(text: string): string {
  return `-m comment --comment "${text.replace(/"/g, "'")}"`;
}

/**
 * The iptables-restore input. `existingNat` lists the nat chains present now (from
 * iptables-save), so chains that are no longer wanted are deleted.
 */
export function renderRules(
  ports: readonly ServicePort[],
  existingNat: readonly string[] = [],
): string {
  const nat: string[] = [];
  const natChains = new Set<string>(BASE_NAT);
  const filter: string[] = [];
  nat.push(`-A KUBE-MARK-MASQ -j MARK --or-mark ${MASQ_MARK}`);
  nat.push(`-A KUBE-POSTROUTING -m mark ! --mark ${MASQ_MARK}/${MASQ_MARK} -j RETURN`);
  nat.push(`-A KUBE-POSTROUTING -j MARK --xor-mark ${MASQ_MARK}`);
  nat.push(
    `-A KUBE-POSTROUTING ${comment("kubernetes service traffic requiring SNAT")} -j MASQUERADE`,
  );
  for (const sp of ports) {
    const proto = sp.protocol.toLowerCase();
    const key = portKey(sp);
    if (sp.endpoints.length === 0) {
      filter.push(
        `-A KUBE-SERVICES -d ${sp.vip}/32 -p ${proto} ${comment(`${key} has no endpoints`)} -m ${proto} --dport ${sp.port} -j REJECT --reject-with icmp-port-unreachable`,
      );
      continue;
    }
    const svc = svcChain(sp);
    natChains.add(svc);
    nat.push(
      `-A KUBE-SERVICES -d ${sp.vip}/32 -p ${proto} ${comment(`${key} cluster IP`)} -m ${proto} --dport ${sp.port} -j ${svc}`,
    );
    const n = sp.endpoints.length;
    sp.endpoints.forEach((ep, i) => {
      const sep = sepChain(sp, ep.ip, ep.port);
      natChains.add(sep);
      const stat =
        i < n - 1 ? ` -m statistic --mode random --probability ${(1 / (n - i)).toFixed(10)}` : "";
      nat.push(`-A ${svc} ${comment(`${key} -> ${ep.ip}:${ep.port}`)}${stat} -j ${sep}`);
    });
    for (const ep of sp.endpoints) {
      const sep = sepChain(sp, ep.ip, ep.port);
      nat.push(`-A ${sep} -s ${ep.ip}/32 ${comment(key)} -j KUBE-MARK-MASQ`);
      nat.push(
        `-A ${sep} -p ${proto} ${comment(key)} -m ${proto} -j DNAT --to-destination ${ep.ip}:${ep.port}`,
      );
    }
  }
  const stale = existingNat.filter((c) => isOurChain(c) && !natChains.has(c)).sort();
  const lines = [
    "*nat",
    ...[...natChains].map((c) => `:${c} - [0:0]`),
    ...stale.map((c) => `:${c} - [0:0]`),
    ...nat,
    ...stale.map((c) => `-X ${c}`),
    "COMMIT",
    "*filter",
    ":KUBE-SERVICES - [0:0]",
    ...filter,
    "COMMIT",
  ];
  return lines.join("\n") + "\n";
}

/** Jumps from the built-in chains into ours: [table, chain, rule args]. */
export const JUMPS: readonly (readonly [string, string, readonly string[]])[] = [
  [
    "nat",
    "PREROUTING",
    ["-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"],
  ],
  [
    "nat",
    "OUTPUT",
    ["-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"],
  ],
  [
    "nat",
    "POSTROUTING",
    ["-m", "comment", "--comment", "kubernetes postrouting rules", "-j", "KUBE-POSTROUTING"],
  ],
  [
    "filter",
    "FORWARD",
    [
      "-m",
      "conntrack",
      "--ctstate",
      "NEW",
      "-m",
      "comment",
      "--comment",
      "kubernetes service portals",
      "-j",
      "KUBE-SERVICES",
    ],
  ],
  [
    "filter",
    "OUTPUT",
    [
      "-m",
      "conntrack",
      "--ctstate",
      "NEW",
      "-m",
      "comment",
      "--comment",
      "kubernetes service portals",
      "-j",
      "KUBE-SERVICES",
    ],
  ],
];
