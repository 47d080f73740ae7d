/**
 * Cluster DNS answers, pure (what CoreDNS's kubernetes plugin answers, minus the upstream):
 *
 *   <svc>.<ns>.svc.<domain>             A: the Service's cluster IP; headless: its ready pods' IPs
 *   <host>.<svc>.<ns>.svc.<domain>      A: a pod with spec.hostname=<host>, spec.subdomain=<svc>
 *   <a-b-c-d>.<ns>.pod.<domain>         A: a.b.c.d
 *
 * A name of the cluster domain with no record is NXDOMAIN (with the zone's SOA, so resolvers
 * cache the negative answer briefly); an existing name asked for another type is an empty
 * NOERROR. Names outside the cluster domain are REFUSED: this server has no upstream.
 */
import { isIP } from "node:net";
import { isObject, str, type Json } from "../../lib/kube-api/index.ts";

export type Rcode = "NOERROR" | "NXDOMAIN" | "REFUSED" | "FORMERR";

export interface DnsAnswer {
  readonly rcode: Rcode;
  /** A records (name, address). */
  readonly answers: readonly { readonly name: string; readonly address: string }[];
  /** Whether to add the zone's SOA in the authority section (negative answers). */
  readonly soa: boolean;
}

export interface DnsView {
  /** `svc.ns` → cluster IP ("None" for headless) and, for headless, ready endpoint IPs. */
  readonly services: ReadonlyMap<
    string,
    { readonly clusterIP: string; readonly endpoints: readonly string[] }
  >;
  /** `host.svc.ns` → IP, for pods with hostname and subdomain. */
  readonly hosts: ReadonlyMap<string, readonly string[]>;
}

function obj(v: unknown): Json {
  return isObject(v) ? v : {};
}

function podReady(p: Json): boolean {
  const conds = obj(p["status"])["conditions"];
  return (
    Array.isArray(conds) &&
    conds.some((c) => isObject(c) && c["type"] === "Ready" && c["status"] === "True")
  );
}

/** Builds the view from Services and pods (wire JSON). */
export function buildView(services: readonly Json[], pods: readonly Json[]): DnsView {
  const svcs = new Map<string, { clusterIP: string; endpoints: string[] }>();
  const hosts = new Map<string, string[]>();
  const headless: {
    ns: string;
    name: string;
    selector: Record<string, string>;
    notReady: boolean;
  }[] = [];
  for (const s of services) {
    const m = obj(s["metadata"]);
    const spec = obj(s["spec"]);
    const key = `${str(m["name"])}.${str(m["namespace"])}`;
    const ip = str(spec["clusterIP"]);
    if (spec["type"] === "ExternalName") continue;
    svcs.set(key, { clusterIP: ip === "" ? "None" : ip, endpoints: [] });
    if (ip === "None" && isObject(spec["selector"])) {
      headless.push({
        ns: str(m["namespace"]),
        name: str(m["name"]),
        selector: spec["selector"] as Record<string, string>,
        notReady: spec["publishNotReadyAddresses"] === true,
      });
    }
  }
  for (const p of pods) {
    const m = obj(p["metadata"]);
    const ip = str(obj(p["status"])["podIP"]);
    if (ip === "" || str(m["deletionTimestamp"]) !== "") continue;
    const labels = obj(m["labels"]);
    const spec = obj(p["spec"]);
    for (const h of headless) {
      if (str(m["namespace"]) !== h.ns) continue;
      if (!Object.entries(h.selector).every(([k, v]) => labels[k] === v)) continue;
      if (!h.notReady && !podReady(p)) continue;
      svcs.get(`${h.name}.${h.ns}`)!.endpoints.push(ip);
      if (str(spec["hostname"]) !== "" && str(spec["subdomain"]) === h.name) {
        const key = `${str(spec["hostname"])}.${h.name}.${h.ns}`;
        hosts.set(key, [...(hosts.get(key) ?? []), ip]);
      }
    }
  }
  for (const v of svcs.values()) v.endpoints.sort();
  return { services: svcs, hosts };
}

export function answer(
  qname: string,
  qtype: string,
  view: DnsView,
  domain = "cluster.local",
): DnsAnswer {
  const name = qname.toLowerCase().replace(/\.$/, "");
  const none = (rcode: Rcode, soa = true): DnsAnswer => ({ rcode, answers: [], soa });
  if (name !== domain && !name.endsWith(`.${domain}`)) return none("REFUSED", false);
  const labels = name === domain ? [] : name.slice(0, -(domain.length + 1)).split(".");
  let addresses: readonly string[] | undefined;
  let exists = false;
  if (
    labels.length === 0 ||
    (labels.length === 1 && (labels[0] === "svc" || labels[0] === "pod"))
  ) {
    exists = true;
  } else if (labels[labels.length - 1] === "svc") {
    const rest = labels.slice(0, -1);
    if (rest.length === 1)
      exists = [...view.services.keys()].some((k) => k.endsWith(`.${rest[0]}`));
    else if (rest.length === 2) {
      const s = view.services.get(`${rest[0]}.${rest[1]}`);
      if (s !== undefined) {
        exists = true;
        addresses = s.clusterIP === "None" ? s.endpoints : [s.clusterIP];
      }
    } else if (rest.length === 3) {
      const h = view.hosts.get(rest.join("."));
      if (h !== undefined) {
        exists = true;
        addresses = h;
      }
    }
  } else if (labels[labels.length - 1] === "pod" && labels.length === 3) {
    const ip = labels[0]!.replace(/-/g, ".");
    if (isIP(ip) === 4) {
      exists = true;
      addresses = [ip];
    }
  } else if (labels[labels.length - 1] === "pod" && labels.length === 2) {
    exists = true;
  }
  if (!exists) return none("NXDOMAIN");
  if ((qtype !== "A" && qtype !== "ANY") || addresses === undefined || addresses.length === 0) {
    return none("NOERROR");
  }
  return {
    rcode: "NOERROR",
    answers: addresses.map((address) => ({ name: qname.replace(/\.$/, ""), address })),
    soa: false,
  };
}
