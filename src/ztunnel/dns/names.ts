/**
 * DNS name arithmetic for the resolver: the aliases a client's query may stand for (Kubernetes
 * short forms, search-domain stripping) and the wildcard parents tried for each alias.
 *
 * Names here are dotted text without the trailing root dot. Lookups compare lower-case names
 * (DNS is case-insensitive; mesh hostnames are lower case); answers keep the case the client
 * asked with, since resolvers using 0x20 case randomisation check it.
 */

/** A name split into labels, with the lower-case form used for lookups. */
export interface DnsName {
  /** Labels as asked (original case). */
  readonly labels: readonly string[];
  /** The lower-case dotted form, without a trailing dot. */
  readonly key: string;
}

/** Splits a dotted name (trailing dot optional) into labels. The root is zero labels. */
export function parseName(name: string): DnsName {
  const trimmed = name.endsWith(".") ? name.slice(0, -1) : name;
  const labels = trimmed === "" ? [] : trimmed.split(".");
  return { labels, key: trimmed.toLowerCase() };
}

/** Lower-case dotted form without a trailing dot (for configured domains). */
export function normalizeDomain(domain: string): string {
  let d = domain.trim().toLowerCase();
  while (d.endsWith(".")) d = d.slice(0, -1);
  while (d.startsWith(".")) d = d.slice(1);
  return d;
}

function labelCount(key: string): number {
  if (key === "") return 0;
  let n = 1;
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) === 46) n++;
  return n;
}

/**
 * Whether `name` lies strictly below `domain` (at least one more label). A wildcard domain never
 * matches. Both are lower-case keys.
 */
export function hasDomain(name: string, domain: string): boolean {
  if (domain === "" || domain.startsWith("*")) return false;
  return name.length > domain.length + 1 && name.endsWith("." + domain);
}

/** `name` without the `domain` suffix, or undefined when `name` is not strictly below it. */
export function trimDomain(name: string, domain: string): string | undefined {
  return hasDomain(name, domain) ? name.slice(0, name.length - domain.length - 1) : undefined;
}

/**
 * The hostnames a query name is tried against, most specific first: the name itself, then each
 * parent with its first label replaced by `*` (`a.b.c` -> `a.b.c`, `*.b.c`, `*.c`), as
 * ServiceEntry wildcard hosts are stored.
 */
export function wildcards(key: string): string[] {
  const out = [key];
  let rest = key;
  for (;;) {
    const dot = rest.indexOf(".");
    if (dot === -1) break;
    out.push("*" + rest.slice(dot));
    rest = rest.slice(dot + 1);
  }
  return out;
}

/** `<pod>.<subdomain>.<namespace>.svc.<cluster domain>`: the Kubernetes pod host form. */
export function isPodHost(key: string, clusterDomain: string): boolean {
  return (
    hasDomain(key, "svc." + clusterDomain) && labelCount(key) === 4 + labelCount(clusterDomain)
  );
}

/**
 * Kubernetes FQDNs a short name may stand for, given the client's namespace (ztunnel expands
 * only the forms possible for the number of labels asked):
 *   svc            -> svc.<ns>.svc.<domain>
 *   svc.ns         -> svc.ns.svc.<domain>, and pod.sub -> pod.sub.<ns>.svc.<domain>
 *   svc.ns.svc     -> svc.ns.svc.<domain>, and pod.sub.ns -> pod.sub.ns.svc.<domain>
 *   pod.sub.ns.svc -> pod.sub.ns.svc.<domain>
 * Longer names are taken as already qualified.
 */
export function kubernetesExpansions(
  key: string,
  clientNamespace: string,
  clusterDomain: string,
): string[] {
  const svcDomain = "svc." + clusterDomain;
  const labels = key === "" ? [] : key.split(".");
  switch (labels.length) {
    case 1:
      return [`${key}.${clientNamespace}.${svcDomain}`];
    case 2:
      return [`${key}.${svcDomain}`, `${key}.${clientNamespace}.${svcDomain}`];
    case 3:
      return labels[2] === "svc"
        ? [`${key}.${clusterDomain}`, `${key}.${svcDomain}`]
        : [`${key}.${svcDomain}`];
    case 4:
      return labels[3] === "svc" ? [`${key}.${clusterDomain}`] : [];
    default:
      return [];
  }
}

/** One name a query is tried as. */
export interface Alias {
  /** Lower-case key looked up. */
  readonly key: string;
  /**
   * Set when the alias came from stripping a search domain: the query name without that domain
   * (original case). A match then answers with a CNAME from the query to this name.
   */
  readonly stripped: string | undefined;
  /** Whether the alias has the pod host form (tried against headless service endpoints). */
  readonly podHost: boolean;
}

/**
 * Every alias of a query, in the order they are tried, without repeats: the name as asked, its
 * Kubernetes expansions, then for each search domain it ends with, the stripped name and that
 * name's expansions.
 */
export function aliasesOf(
  name: DnsName,
  clientNamespace: string,
  searchDomains: readonly string[],
  clusterDomain: string,
): Alias[] {
  const out: Alias[] = [];
  const seen = new Set<string>();
  const add = (key: string, stripped: string | undefined) => {
    if (key === "" || seen.has(key)) return;
    seen.add(key);
    out.push({ key, stripped, podHost: isPodHost(key, clusterDomain) });
  };
  const ns = clientNamespace.toLowerCase();
  add(name.key, undefined);
  for (const e of kubernetesExpansions(name.key, ns, clusterDomain)) add(e, undefined);
  for (const raw of searchDomains) {
    const domain = normalizeDomain(raw);
    const trimmed = trimDomain(name.key, domain);
    if (trimmed === undefined) continue;
    // The stripped name in the client's own case: drop as many labels as the domain has.
    const keep = name.labels.length - labelCount(domain);
    const stripped = name.labels.slice(0, keep).join(".");
    add(trimmed, stripped);
    for (const e of kubernetesExpansions(trimmed, ns, clusterDomain)) add(e, stripped);
  }
  return out;
}
