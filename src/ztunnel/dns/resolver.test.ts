/**
 * The resolver core, table-driven: one client (namespace ns1, default network) asking names
 * against a fixed mesh state. Each case is one rule of INTEROP §2.6.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { applyLocalConfig, parseLocalConfig, ProxyState } from "../state/index.ts";
import { resolveQuestion } from "./resolver.ts";
import type { DnsClient, Resolution, ResolveOptions } from "./resolver.ts";
import { kubernetesSearchDomains } from "./resolv-conf.ts";

const mesh = `
services:
- {name: www.example.com, namespace: ns1, hostname: www.example.com, vips: [/198.18.1.1]}
- {name: productpage, namespace: ns1, hostname: productpage.ns1.svc.cluster.local, vips: [/198.18.9.9]}
- {name: example, namespace: ns2, hostname: example.ns2.svc.cluster.local, vips: [/198.18.10.10]}
- {name: everywhere, namespace: ns2, hostname: everywhere.io, vips: [/198.18.10.110]}
- {name: everywhere, namespace: preferred-ns, hostname: everywhere.io, vips: [/198.18.10.111]}
- {name: everywhere, namespace: ns1, hostname: everywhere.io, vips: [/198.18.10.112]}
- {name: preferred, namespace: ns2, hostname: preferred.io, vips: [/198.18.10.210]}
- {name: preferred, namespace: preferred-ns, hostname: preferred.io, vips: [/198.18.10.211]}
- {name: canonical, namespace: ns2, hostname: canonical.svc, vips: [/198.18.10.140]}
- {name: canonical, namespace: ns3, hostname: canonical.svc, vips: [/198.18.10.141], canonical: true}
- {name: local, namespace: ns1, hostname: canonical.with.local, vips: [/198.18.10.150]}
- {name: local, namespace: ns2, hostname: canonical.with.local, vips: [/198.18.10.151], canonical: true}
- {name: details, namespace: ns2, hostname: details.ns2.svc.cluster.remote,
   vips: [/198.18.11.11, /198.18.12.12, /198.18.13.13, /198.18.14.14]}
- {name: v4, namespace: ns1, hostname: ipv4.localhost, vips: [/198.18.2.2]}
- {name: v6, namespace: ns1, hostname: ipv6.localhost, vips: ["/2001:db8::ff00:42:8329"]}
- {name: dual, namespace: ns1, hostname: dual.localhost, vips: [/198.18.2.2, "/2001:db8::ff00:42:8329"]}
- {name: w1, namespace: ns1, hostname: "*.wildcard", vips: [/198.18.10.10]}
- {name: w2, namespace: ns1, hostname: "*.b.wildcard", vips: [/198.18.11.11]}
- {name: w3, namespace: ns1, hostname: "*.svc.mesh.company.net", vips: [/198.18.1.3]}
- {name: nw2-only, namespace: ns1, hostname: nw2-only.ns1.svc.cluster.local, vips: [nw2/198.18.20.20]}
- {name: both, namespace: ns1, hostname: both-networks.ns1.svc.cluster.local, vips: [/198.18.21.21, nw2/198.18.22.22]}
- {name: cidr, namespace: ns1, hostname: cidr.ns1.svc.cluster.local, vips: [/198.18.64.0/24]}
- {name: headless, namespace: ns1, hostname: headless.ns1.svc.cluster.local}
- {name: headless-ipv6, namespace: ns1, hostname: headless-ipv6.ns1.svc.cluster.local, ipFamilies: IPV6_ONLY}
- {name: headless-all, namespace: ns1, hostname: headless-all.ns1.svc.cluster.local,
   loadBalancer: {healthPolicy: ALLOW_ALL}}
- {name: headless.example.com, namespace: ns1, hostname: headless.example.com}
- {name: private, namespace: ns2, hostname: private.ns2.svc.cluster.local, vips: [/198.18.40.1], visibility: NAMESPACE}
- {name: shared, namespace: ns2, hostname: shared.io, vips: [/198.18.41.1], visibility: NAMESPACE}
- {name: shared, namespace: ns3, hostname: shared.io, vips: [/198.18.41.2]}
workloads:
- {uid: c//pod-0, name: pod-0, namespace: ns1, workloadIps: [198.18.30.30, "2001:db8::30"],
   services: {ns1/headless.ns1.svc.cluster.local: {80: 80}, ns1/headless-all.ns1.svc.cluster.local: {80: 80}}}
- {uid: c//pod-1, name: pod-1, namespace: ns1, workloadIps: [198.18.31.31, "2001:db8::31"],
   services: {ns1/headless.ns1.svc.cluster.local: {80: 80}, ns1/headless-all.ns1.svc.cluster.local: {80: 80}}}
- {uid: c//pod-sick, name: pod-sick, namespace: ns1, workloadIps: [198.18.32.32], status: UNHEALTHY,
   services: {ns1/headless.ns1.svc.cluster.local: {80: 80}, ns1/headless-all.ns1.svc.cluster.local: {80: 80}}}
- {uid: c//ext, name: ext, namespace: ns1, workloadIps: [198.18.34.34],
   services: {ns1/headless.example.com: {80: 80}}}
- {uid: c//pod-2, name: pod-2, namespace: ns1, workloadIps: [198.18.33.33, "2001:db8::33"],
   services: {ns1/headless-ipv6.ns1.svc.cluster.local: {80: 80}}}
`;

function stateOf(yaml: string): ProxyState {
  const cfg = parseLocalConfig(yaml);
  if (!cfg.ok) assert.fail(`fixture is invalid:\n${cfg.reason.join("\n")}`);
  const state = new ProxyState();
  applyLocalConfig(state, cfg.value);
  return state;
}

const state = stateOf(mesh);
const client: DnsClient = { namespace: "ns1", network: "", clusterId: "Kubernetes" };
const options: ResolveOptions = {
  clusterDomain: "cluster.local",
  searchDomains: kubernetesSearchDomains("ns1", "cluster.local"),
  preferredNamespace: "preferred-ns",
  // Identity: records keep state order, so expectations are exact.
  shuffle: () => {},
};

/** "forward" or the answer records as "<type> <name> <data>" lines. */
function summary(r: Resolution): string | string[] {
  if (r.kind === "forward") return `forward:${r.reason}`;
  return r.records.map((x) => `${x.type} ${x.name} ${x.data}`);
}

interface Case {
  name: string;
  q: string;
  type?: string;
  want: string | string[];
  client?: DnsClient;
  opts?: Partial<ResolveOptions>;
}

const cases: Case[] = [
  {
    name: "other record types are forwarded",
    q: "productpage.ns1",
    type: "MX",
    want: "forward:unsupported-type",
  },
  { name: "SRV is forwarded too", q: "productpage", type: "SRV", want: "forward:unsupported-type" },
  { name: "unknown names are forwarded", q: "www.bing.com", want: "forward:unknown-host" },
  {
    name: "external host with a VIP",
    q: "www.example.com",
    want: ["A www.example.com 198.18.1.1"],
  },
  {
    name: "trailing dot is accepted and dropped from record names",
    q: "www.example.com.",
    want: ["A www.example.com 198.18.1.1"],
  },
  { name: "case is kept as asked", q: "WWW.Example.COM", want: ["A WWW.Example.COM 198.18.1.1"] },
  {
    name: "external host matched after stripping a search domain: CNAME + A",
    q: "www.example.com.ns1.svc.cluster.local",
    want: [
      "CNAME www.example.com.ns1.svc.cluster.local www.example.com",
      "A www.example.com 198.18.1.1",
    ],
  },
  {
    name: "k8s FQDN",
    q: "productpage.ns1.svc.cluster.local",
    want: ["A productpage.ns1.svc.cluster.local 198.18.9.9"],
  },
  { name: "k8s name.namespace", q: "productpage.ns1", want: ["A productpage.ns1 198.18.9.9"] },
  {
    name: "k8s short name in the client's namespace",
    q: "productpage",
    want: ["A productpage 198.18.9.9"],
  },
  {
    name: "k8s name.namespace.svc",
    q: "example.ns2.svc",
    want: ["A example.ns2.svc 198.18.10.10"],
  },
  {
    name: "name.namespace with the search domain appended: CNAME to the stripped name",
    q: "productpage.ns1.ns1.svc.cluster.local",
    want: [
      "CNAME productpage.ns1.ns1.svc.cluster.local productpage.ns1",
      "A productpage.ns1 198.18.9.9",
    ],
  },
  {
    name: "search domain svc.cluster.local stripped",
    q: "example.ns2.svc.cluster.local.svc.cluster.local",
    want: [
      "CNAME example.ns2.svc.cluster.local.svc.cluster.local example.ns2.svc.cluster.local",
      "A example.ns2.svc.cluster.local 198.18.10.10",
    ],
  },
  {
    name: "AAAA for an IPv4-only host after stripping: empty NOERROR, no CNAME",
    q: "productpage.ns1.ns1.svc.cluster.local",
    type: "AAAA",
    want: [],
  },
  {
    name: "other namespace, name.namespace",
    q: "example.ns2",
    want: ["A example.ns2 198.18.10.10"],
  },
  {
    name: "other namespace, short name is not expanded to it",
    q: "example",
    want: "forward:unknown-host",
  },
  {
    name: "a hostname in another cluster domain, all VIPs",
    q: "details.ns2.svc.cluster.remote",
    want: [
      "A details.ns2.svc.cluster.remote 198.18.11.11",
      "A details.ns2.svc.cluster.remote 198.18.12.12",
      "A details.ns2.svc.cluster.remote 198.18.13.13",
      "A details.ns2.svc.cluster.remote 198.18.14.14",
    ],
  },
  {
    name: "another cluster domain is not expanded from a short name",
    q: "details.ns2",
    want: "forward:unknown-host",
  },
  {
    name: "A on a dual-stack host returns only A",
    q: "dual.localhost",
    want: ["A dual.localhost 198.18.2.2"],
  },
  {
    name: "AAAA on a dual-stack host returns only AAAA",
    q: "dual.localhost",
    type: "AAAA",
    want: ["AAAA dual.localhost 2001:db8::ff00:42:8329"],
  },
  { name: "A on an IPv6-only host: empty NOERROR", q: "ipv6.localhost", want: [] },
  { name: "AAAA on an IPv4-only host: empty NOERROR", q: "ipv4.localhost", type: "AAAA", want: [] },
  { name: "wildcard parent", q: "foo.wildcard", want: ["A foo.wildcard 198.18.10.10"] },
  {
    name: "the most specific wildcard wins",
    q: "a.b.wildcard",
    want: ["A a.b.wildcard 198.18.11.11"],
  },
  { name: "wildcard two levels up", q: "x.y.wildcard", want: ["A x.y.wildcard 198.18.10.10"] },
  {
    name: "wildcard on a domain",
    q: "foo.svc.mesh.company.net",
    want: ["A foo.svc.mesh.company.net 198.18.1.3"],
  },
  {
    name: "wildcard with a namespace-like label",
    q: "foo.foons.svc.mesh.company.net",
    want: ["A foo.foons.svc.mesh.company.net 198.18.1.3"],
  },
  {
    name: "wildcard matched after stripping a search domain: no CNAME, asked name kept",
    q: "foo.svc.mesh.company.net.ns1.svc.cluster.local",
    want: ["A foo.svc.mesh.company.net.ns1.svc.cluster.local 198.18.1.3"],
  },
  {
    name: "a bare wildcard name itself is only the literal host",
    q: "wildcard",
    want: "forward:unknown-host",
  },
  {
    name: "no VIP on the client's network: empty NOERROR",
    q: "nw2-only.ns1.svc.cluster.local",
    want: [],
  },
  {
    name: "only VIPs on the client's network",
    q: "both-networks.ns1.svc.cluster.local",
    want: ["A both-networks.ns1.svc.cluster.local 198.18.21.21"],
  },
  {
    name: "client on another network sees that network's VIPs",
    q: "both-networks.ns1.svc.cluster.local",
    client: { namespace: "ns1", network: "nw2" },
    want: ["A both-networks.ns1.svc.cluster.local 198.18.22.22"],
  },
  { name: "CIDR VIPs are not addresses: empty NOERROR", q: "cidr.ns1.svc.cluster.local", want: [] },
  {
    name: "headless service: healthy endpoint IPs for A",
    q: "headless.ns1.svc.cluster.local",
    want: [
      "A headless.ns1.svc.cluster.local 198.18.30.30",
      "A headless.ns1.svc.cluster.local 198.18.31.31",
    ],
  },
  {
    name: "headless service: endpoint IPs for AAAA",
    q: "headless",
    type: "AAAA",
    want: ["AAAA headless 2001:db8::30", "AAAA headless 2001:db8::31"],
  },
  {
    name: "headless service with health policy ALLOW_ALL includes unhealthy endpoints",
    q: "headless-all",
    want: [
      "A headless-all 198.18.30.30",
      "A headless-all 198.18.31.31",
      "A headless-all 198.18.32.32",
    ],
  },
  {
    name: "headless IPv6-only service answers AAAA",
    q: "headless-ipv6.ns1.svc.cluster.local",
    type: "AAAA",
    want: ["AAAA headless-ipv6.ns1.svc.cluster.local 2001:db8::33"],
  },
  {
    name: "headless IPv6-only service: A is empty even though the pod has an IPv4 address",
    q: "headless-ipv6.ns1.svc.cluster.local",
    want: [],
  },
  {
    name: "pod host FQDN of a headless service",
    q: "pod-0.headless.ns1.svc.cluster.local",
    want: ["A pod-0.headless.ns1.svc.cluster.local 198.18.30.30"],
  },
  {
    name: "pod host FQDN, AAAA",
    q: "pod-1.headless.ns1.svc.cluster.local",
    type: "AAAA",
    want: ["AAAA pod-1.headless.ns1.svc.cluster.local 2001:db8::31"],
  },
  {
    name: "pod host pod.sub.ns",
    q: "pod-0.headless.ns1",
    want: ["A pod-0.headless.ns1 198.18.30.30"],
  },
  {
    name: "pod host pod.sub.ns.svc",
    q: "pod-1.headless.ns1.svc",
    want: ["A pod-1.headless.ns1.svc 198.18.31.31"],
  },
  {
    name: "pod host pod.sub (client's namespace)",
    q: "pod-0.headless",
    want: ["A pod-0.headless 198.18.30.30"],
  },
  {
    name: "unhealthy pods are not pod hosts",
    q: "pod-sick.headless.ns1.svc.cluster.local",
    want: "forward:unknown-host",
  },
  {
    name: "unknown pod of a headless service",
    q: "pod-9.headless.ns1.svc.cluster.local",
    want: "forward:unknown-host",
  },
  {
    name: "headless service outside .svc.<domain> is not answered",
    q: "headless.example.com",
    want: "forward:unknown-host",
  },
  {
    name: "preferred namespace chosen when the client's has none",
    q: "preferred.io",
    want: ["A preferred.io 198.18.10.211"],
  },
  {
    name: "the client's namespace wins",
    q: "everywhere.io",
    want: ["A everywhere.io 198.18.10.112"],
  },
  {
    name: "canonical wins when no namespace-local service",
    q: "canonical.svc",
    want: ["A canonical.svc 198.18.10.141"],
  },
  {
    name: "namespace-local wins over canonical",
    q: "canonical.with.local",
    want: ["A canonical.with.local 198.18.10.150"],
  },
  {
    name: "a service visible only to its namespace is not answered elsewhere",
    q: "private.ns2",
    want: "forward:unknown-host",
  },
  {
    name: "a namespace-private service is answered inside its namespace",
    q: "private",
    client: { namespace: "ns2", network: "" },
    opts: { searchDomains: kubernetesSearchDomains("ns2", "cluster.local") },
    want: ["A private 198.18.40.1"],
  },
  {
    name: "invisible services are skipped, visible ones with the same host used",
    q: "shared.io",
    want: ["A shared.io 198.18.41.2"],
  },
  {
    name: "IPv6 disabled: AAAA is empty",
    q: "dual.localhost",
    type: "AAAA",
    opts: { ipv6Enabled: false },
    want: [],
  },
  {
    name: "IPv6 disabled: A unaffected",
    q: "dual.localhost",
    opts: { ipv6Enabled: false },
    want: ["A dual.localhost 198.18.2.2"],
  },
  {
    name: "another cluster domain",
    q: "productpage.ns1",
    opts: { clusterDomain: "corp.example", searchDomains: [] },
    want: "forward:unknown-host",
  },
  {
    name: "no search domains: no stripping",
    q: "productpage.ns1.ns1.svc.cluster.local",
    opts: { searchDomains: [] },
    want: "forward:unknown-host",
  },
  {
    name: "static search domains (dedicated mode) are stripped too",
    q: "www.example.com.corp.example",
    opts: { searchDomains: ["corp.example."] },
    want: ["CNAME www.example.com.corp.example www.example.com", "A www.example.com 198.18.1.1"],
  },
  { name: "the root name is not a mesh name", q: ".", want: "forward:unknown-host" },
];

describe("resolveQuestion", () => {
  for (const c of cases) {
    it(c.name, () => {
      const r = resolveQuestion(c.q, c.type ?? "A", c.client ?? client, state, {
        ...options,
        ...c.opts,
      });
      assert.deepEqual(summary(r), c.want);
    });
  }

  it("answers with TTL 30 s", () => {
    const r = resolveQuestion("productpage.ns1.ns1.svc.cluster.local", "A", client, state, options);
    assert.equal(r.kind, "answer");
    assert.deepEqual(r.kind === "answer" ? r.records.map((x) => x.ttl) : [], [30, 30]);
  });

  it("shuffles the address records (and only them)", () => {
    const seen: string[][] = [];
    const r = resolveQuestion("details.ns2.svc.cluster.remote", "A", client, state, {
      ...options,
      shuffle: <T>(xs: T[]) => {
        seen.push(xs.map(String));
        xs.reverse();
      },
    });
    assert.deepEqual(seen, [["198.18.11.11", "198.18.12.12", "198.18.13.13", "198.18.14.14"]]);
    assert.deepEqual(summary(r), [
      "A details.ns2.svc.cluster.remote 198.18.14.14",
      "A details.ns2.svc.cluster.remote 198.18.13.13",
      "A details.ns2.svc.cluster.remote 198.18.12.12",
      "A details.ns2.svc.cluster.remote 198.18.11.11",
    ]);
  });

  it("the default shuffle keeps the set of records", () => {
    const { shuffle: _unused, ...random } = options;
    for (let i = 0; i < 20; i++) {
      const r = summary(
        resolveQuestion("details.ns2.svc.cluster.remote", "A", client, state, random),
      );
      assert.ok(Array.isArray(r));
      assert.deepEqual([...r].sort(), [
        "A details.ns2.svc.cluster.remote 198.18.11.11",
        "A details.ns2.svc.cluster.remote 198.18.12.12",
        "A details.ns2.svc.cluster.remote 198.18.13.13",
        "A details.ns2.svc.cluster.remote 198.18.14.14",
      ]);
    }
  });

  it("reports what matched", () => {
    const r = resolveQuestion("pod-0.headless", "A", client, state, options);
    assert.equal(r.kind, "answer");
    if (r.kind === "answer") {
      assert.equal(r.match.kind, "pod");
      assert.equal(r.match.hostname, "pod-0.headless.ns1.svc.cluster.local");
    }
    const s = resolveQuestion("foo.wildcard", "A", client, state, options);
    assert.equal(
      s.kind === "answer" && s.match.kind === "service" ? s.match.hostname : "",
      "*.wildcard",
    );
  });

  it("follows state changes (a removed service is forwarded)", () => {
    const st = stateOf(mesh);
    assert.equal(resolveQuestion("productpage", "A", client, st, options).kind, "answer");
    st.removeService({ namespace: "ns1", hostname: "productpage.ns1.svc.cluster.local" });
    assert.deepEqual(
      summary(resolveQuestion("productpage", "A", client, st, options)),
      "forward:unknown-host",
    );
  });
});
