/**
 * Where forwarded queries go: the upstream resolvers of ztunnel's own resolv.conf (as ztunnel
 * reads `/etc/resolv.conf`), and the search domains the resolver strips from queries.
 *
 * Parsing follows glibc's reading of resolv.conf: unknown keywords and malformed values are
 * skipped (each reported in `problems`, so the caller can log them), `domain` and `search`
 * replace each other (the last one wins), `#` and `;` start comments.
 */
import { readFileSync } from "node:fs";
import { AmbientError, errnoCode } from "../../lib/errors.ts";
import { canonicalIp } from "../../lib/net/index.ts";
import { normalizeDomain } from "./names.ts";

/** An upstream DNS server. */
export interface UpstreamServer {
  readonly address: string;
  readonly port: number;
}

export interface ResolvConf {
  readonly nameservers: readonly UpstreamServer[];
  readonly search: readonly string[];
  /** `options ndots:n` (default 1). */
  readonly ndots: number;
  /** `options timeout:n` in seconds (default 5). */
  readonly timeoutSeconds: number;
  /** `options attempts:n` (default 2). */
  readonly attempts: number;
  readonly rotate: boolean;
  /** Lines that were skipped, with the reason. */
  readonly problems: readonly string[];
}

export const DEFAULT_RESOLV_CONF_PATH = "/etc/resolv.conf";

function option(v: string, max: number): number | undefined {
  if (!/^[0-9]+$/.test(v)) return undefined;
  return Math.min(Number(v), max);
}

export function parseResolvConf(text: string): ResolvConf {
  const nameservers: UpstreamServer[] = [];
  let search: string[] = [];
  let ndots = 1;
  let timeoutSeconds = 5;
  let attempts = 2;
  let rotate = false;
  const problems: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/[#;].*$/, "").trim();
    if (line === "") continue;
    const [first, ...args] = line.split(/\s+/);
    const keyword = first ?? "";
    const where = `line ${i + 1}`;
    switch (keyword) {
      case "nameserver": {
        // A zone suffix (fe80::1%eth0) names an interface of ztunnel's namespace; drop it.
        const raw = (args[0] ?? "").replace(/%.*$/, "");
        const ip = canonicalIp(raw);
        if (ip === undefined) problems.push(`${where}: "${args[0] ?? ""}" is not an IP address`);
        else nameservers.push({ address: ip, port: 53 });
        break;
      }
      case "domain":
        search = args.length > 0 ? [normalizeDomain(args[0] as string)] : [];
        break;
      case "search":
        search = args.map(normalizeDomain).filter((d) => d !== "");
        break;
      case "options":
        for (const o of args) {
          const colon = o.indexOf(":");
          const name = colon === -1 ? o : o.slice(0, colon);
          const value = colon === -1 ? "" : o.slice(colon + 1);
          if (name === "ndots") ndots = option(value, 15) ?? ndots;
          else if (name === "timeout") timeoutSeconds = option(value, 30) ?? timeoutSeconds;
          else if (name === "attempts") attempts = option(value, 5) ?? attempts;
          else if (name === "rotate") rotate = true;
        }
        break;
      case "sortlist":
        break;
      default:
        problems.push(`${where}: unknown keyword "${keyword}"`);
    }
  }
  return { nameservers, search, ndots, timeoutSeconds, attempts, rotate, problems };
}

/**
 * Reads and parses a resolv.conf. Throws AmbientError EDNS_RESOLV_CONF when the file cannot be
 * read (the DNS proxy cannot forward without it).
 */
export function readResolvConf(path: string = DEFAULT_RESOLV_CONF_PATH): ResolvConf {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new AmbientError(
      "EDNS_RESOLV_CONF",
      `cannot read ${path} (${errnoCode(err) ?? String(err)}): the DNS proxy forwards unknown names to the nameservers listed there; check that the file exists and is readable`,
      { cause: err },
    );
  }
  return parseResolvConf(text);
}

/**
 * The search list of a pod in `namespace` (what kubelet writes into pods' resolv.conf). ztunnel
 * in shared mode uses this per pod rather than its own search list.
 */
export function kubernetesSearchDomains(namespace: string, clusterDomain: string): string[] {
  const d = normalizeDomain(clusterDomain);
  return [`${namespace}.svc.${d}`, `svc.${d}`, d];
}
