/**
 * Inbound decisions (HBONE 15008 and plaintext 15006), table-driven from YAML fixtures: the
 * HBONE status a client would see, or where the connection is delivered and which policy allowed it.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Identity } from "../../../lib/identity/index.ts";
import { DEFAULT_ILLEGAL_PORTS, formatAddr } from "./common.ts";
import { parseAuthority, planInbound, planInboundPlaintext } from "./inbound.ts";
import type { InboundInput, InboundPlan } from "./inbound.ts";
import { stateFrom } from "./fixtures.test-helper.ts";
import type { ProxyState } from "../../state/index.ts";

const base = `
workloads:
- {uid: Kubernetes//Pod/ns/server, name: server, namespace: ns, serviceAccount: server, node: node-a, protocol: HBONE,
   workloadIps: [198.18.0.2, "fd00::2"], services: {ns/svc.ns.svc.cluster.local: {80: 8080, 90: 9090}}}
- {uid: Kubernetes//Pod/ns/client, name: client, namespace: ns, serviceAccount: client, protocol: HBONE, workloadIps: [198.18.0.1]}
- {uid: Kubernetes//Pod/ns/waypoint, name: waypoint, namespace: ns, serviceAccount: waypoint, node: node-a, protocol: HBONE,
   workloadIps: [198.18.0.10], services: {ns/waypoint.ns.svc.cluster.local: {15008: 15008}}}
services:
- {name: svc, namespace: ns, hostname: svc.ns.svc.cluster.local, vips: [/198.18.100.1], ports: {80: 0, 90: 9090, 100: 0}}
- {name: svc, namespace: other, hostname: svc.ns.svc.cluster.local, vips: [/198.18.100.99], ports: {80: 1111}}
- {name: waypoint, namespace: ns, hostname: waypoint.ns.svc.cluster.local, vips: [/198.18.100.10], ports: {15008: 15008}}
- {name: wsvc, namespace: ns, hostname: wsvc.ns.svc.cluster.local, vips: [/198.18.100.2], ports: {80: 80},
   waypoint: {destination: ns/waypoint.ns.svc.cluster.local}}
`;

const client: Identity = {
  trustDomain: "cluster.local",
  namespace: "ns",
  serviceAccount: "client",
};

function inbound(
  state: ProxyState,
  over: Partial<InboundInput> & { local?: string | null } = {},
): InboundPlan {
  const localName = over.local === null ? undefined : (over.local ?? "server");
  const local =
    localName === undefined ? undefined : state.workloadByUid(`Kubernetes//Pod/ns/${localName}`);
  return planInbound({
    localWorkload: local,
    localAddress: { ip: local?.workloadIps[0] ?? "198.18.0.2", port: 15008 },
    authority: "198.18.0.2:8080",
    peerIdentity: client,
    peerAddress: { ip: "198.18.0.1", port: 40000 },
    state,
    config: { network: "", illegalPorts: DEFAULT_ILLEGAL_PORTS },
    ...over,
  });
}

interface Want {
  status?: number;
  code?: string;
  upstream?: string;
  connectTo?: string;
  connectFrom?: string;
  policy?: string;
  tunnel?: string;
  service?: string;
  source?: string;
}

function summary(p: InboundPlan): Want {
  if (p.kind === "refused") {
    const d = p.authorization;
    return { status: p.status, code: p.code, ...(d && "policy" in d ? { policy: d.policy } : {}) };
  }
  const d = p.authorization;
  return {
    upstream: formatAddr(p.upstream),
    connectTo: formatAddr(p.connectTo),
    connectFrom: p.connectFrom,
    ...("policy" in d ? { policy: d.policy } : {}),
    ...(p.tunnel
      ? { tunnel: `${p.tunnel.protocol} ${formatAddr(p.tunnel.proxyDestination)}` }
      : {}),
    ...(p.destinationService
      ? { service: `${p.destinationService.namespace}/${p.destinationService.hostname}` }
      : {}),
    ...(p.sourceWorkload ? { source: p.sourceWorkload.name } : {}),
  };
}

function check(p: InboundPlan, want: Want, label: string) {
  const got = summary(p);
  const picked: Record<string, unknown> = {};
  for (const k of Object.keys(want)) picked[k] = (got as Record<string, unknown>)[k];
  assert.deepEqual(
    picked,
    want,
    `${label}\nfull: ${JSON.stringify(got)}${p.kind === "refused" ? ` (${p.message})` : ""}`,
  );
}

interface Case {
  name: string;
  yaml?: string;
  input: Partial<InboundInput> & { local?: string | null };
  want: Want;
}

const cases: Case[] = [
  {
    name: "not CONNECT: 400",
    input: { method: "GET" },
    want: { status: 400, code: "method-not-connect" },
  },
  {
    name: "unparseable authority: 400",
    input: { authority: "no-port" },
    want: { status: 400, code: "bad-authority" },
  },
  {
    name: "unbracketed IPv6 authority: 400",
    input: { authority: "fd00::2:80" },
    want: { status: 400, code: "bad-authority" },
  },
  {
    name: "unknown local workload: 503",
    input: { local: null },
    want: { status: 503, code: "unknown-local-workload" },
  },
  {
    name: "pod IP authority: delivered to podIP:port from the original source",
    input: {},
    want: {
      upstream: "198.18.0.2:8080",
      connectTo: "198.18.0.2:8080",
      connectFrom: "original-source",
      source: "client",
    },
  },
  {
    name: "IPv6 authority on the pod's IPv6 address",
    input: { authority: "[fd00::2]:8080", localAddress: { ip: "fd00::2", port: 15008 } },
    want: { upstream: "[fd00::2]:8080" },
  },
  {
    name: "authority IP is another pod and we are not its waypoint: 400",
    input: { authority: "198.18.0.1:8080" },
    want: { status: 400, code: "ip-mismatch" },
  },
  {
    name: "waypoint sandwich: a service VIP whose waypoint is this pod is accepted",
    input: { local: "waypoint", authority: "198.18.100.2:80" },
    want: { upstream: "198.18.0.10:80" },
  },
  {
    name: "a service VIP whose waypoint is someone else: 400",
    input: { authority: "198.18.100.2:80" },
    want: { status: 400, code: "ip-mismatch" },
  },
  {
    name: "hostname authority: service port mapped through the endpoint's port list",
    input: { authority: "svc.ns.svc.cluster.local:80" },
    want: { upstream: "198.18.0.2:8080", service: "ns/svc.ns.svc.cluster.local" },
  },
  {
    name: "hostname authority: the local namespace's service wins over another namespace's",
    yaml: `workloads: [{uid: Kubernetes//Pod/ns/server, name: server, namespace: ns, serviceAccount: server, protocol: HBONE, workloadIps: [198.18.0.2]}]`,
    input: { authority: "svc.ns.svc.cluster.local:90" },
    want: { upstream: "198.18.0.2:9090" },
  },
  {
    name: "hostname authority: unknown service: 503",
    input: { authority: "nope.ns.svc.cluster.local:80" },
    want: { status: 503, code: "unknown-service-hostname" },
  },
  {
    name: "hostname authority: named port with no mapping: 503",
    input: { authority: "svc.ns.svc.cluster.local:100" },
    want: { status: 503, code: "no-port-for-service" },
  },
  {
    name: "final port is a ztunnel port: 503",
    input: { authority: "198.18.0.2:15001" },
    want: { status: 503, code: "illegal-port" },
  },
  {
    name: "the pod port 15008 itself is refused",
    input: { authority: "198.18.0.2:15008" },
    want: { status: 503, code: "illegal-port" },
  },
  {
    name: "a DENY policy: 401, naming the policy",
    yaml: `policies: [{name: deny-client, namespace: ns, scope: NAMESPACE, action: DENY, rules: [[[{principals: [{exact: cluster.local/ns/ns/sa/client}]}]]]}]`,
    input: {},
    want: { status: 401, code: "denied", policy: "ns/deny-client" },
  },
  {
    name: "policy destination port is the final port, not 15008",
    yaml: `policies: [{name: only-8080, namespace: ns, scope: NAMESPACE, action: ALLOW, rules: [[[{destinationPorts: [8080]}]]]}]`,
    input: {},
    want: { upstream: "198.18.0.2:8080", policy: "ns/only-8080" },
  },
  {
    name: "policy destination IP is the pod IP",
    yaml: `policies: [{name: dst-ip, namespace: ns, scope: NAMESPACE, action: ALLOW, rules: [[[{destinationIps: [198.18.0.2/32]}]]]}]`,
    input: {},
    want: { policy: "ns/dst-ip" },
  },
  {
    name: "workload-selector policy referenced by the workload applies",
    yaml: `policies: [{name: sel, namespace: ns, scope: WORKLOAD_SELECTOR, action: ALLOW, rules: [[[{principals: [{exact: cluster.local/ns/ns/sa/nobody}]}]]]}]
workloads: [{uid: Kubernetes//Pod/ns/server, name: server, namespace: ns, serviceAccount: server, protocol: HBONE,
  workloadIps: [198.18.0.2], authorizationPolicies: [ns/sel]}]`,
    input: {},
    want: { status: 401, code: "denied" },
  },
  {
    name: "PROXY application tunnel: port overridden, loopback delivery, PROXY header carries the target",
    yaml: `workloads: [{uid: Kubernetes//Pod/ns/waypoint, name: waypoint, namespace: ns, serviceAccount: waypoint, protocol: HBONE,
  workloadIps: [198.18.0.10], applicationTunnel: {protocol: PROXY, port: 15088}, services: {ns/waypoint.ns.svc.cluster.local: {15008: 15008}}}]`,
    input: { local: "waypoint", authority: "198.18.100.1:80" },
    want: {
      upstream: "198.18.0.10:15088",
      connectTo: "127.0.0.1:15088",
      connectFrom: "loopback",
      tunnel: "PROXY 198.18.100.1:80",
    },
  },
  {
    name: "PROXY application tunnel with a hostname authority: the header gets the service VIP",
    yaml: `workloads: [{uid: Kubernetes//Pod/ns/waypoint, name: waypoint, namespace: ns, serviceAccount: waypoint, protocol: HBONE,
  workloadIps: [198.18.0.10], applicationTunnel: {protocol: PROXY}, services: {ns/svc.ns.svc.cluster.local: {90: 9090}}}]`,
    input: { local: "waypoint", authority: "svc.ns.svc.cluster.local:90" },
    want: { upstream: "198.18.0.10:9090", tunnel: "PROXY 198.18.100.1:90" },
  },
  {
    name: "through an east-west gateway: no source lookup by IP",
    input: { forwardedNetwork: "west" },
    want: { upstream: "198.18.0.2:8080", source: undefined as unknown as string },
  },
];

describe("planInbound", () => {
  for (const c of cases) {
    it(c.name, () => {
      const state = stateFrom(base, ...(c.yaml !== undefined ? [c.yaml] : []));
      check(inbound(state, c.input), c.want, c.name);
    });
  }

  it("returns the authorization decision and the telemetry service guess", () => {
    const state = stateFrom(base);
    const p = inbound(state, {
      authority: "198.18.0.2:9090",
      forwardedHost: "svc.ns.svc.cluster.local",
    });
    assert.equal(p.kind, "accept");
    if (p.kind !== "accept") return;
    assert.equal(p.authorization.reason, "no-allow-policies");
    assert.deepEqual(p.destinationService, {
      hostname: "svc.ns.svc.cluster.local",
      name: "svc",
      namespace: "ns",
    });
    assert.equal(p.fromGateway, false);
    assert.deepEqual(p.target, { kind: "address", ip: "198.18.0.2", port: 9090 });
  });

  it("explains a denial for the operator", () => {
    const state = stateFrom(
      base,
      `policies: [{name: allow-other, namespace: ns, scope: NAMESPACE, action: ALLOW, rules: [[[{namespaces: [{exact: other}]}]]]}]`,
    );
    const p = inbound(state);
    assert.equal(p.kind, "refused");
    assert.equal(
      p.kind === "refused" && p.message,
      "connection to 198.18.0.2:8080 denied: no ALLOW policy matched (checked ns/allow-other)",
    );
    assert.equal(p.kind === "refused" && p.responseFlag, "DENY");
  });
});

describe("planInboundPlaintext (15006)", () => {
  const plaintext = (state: ProxyState, port = 8080, local: string | null = "server") =>
    planInboundPlaintext({
      localWorkload:
        local === null ? undefined : state.workloadByUid(`Kubernetes//Pod/ns/${local}`),
      originalDestination: { ip: "198.18.0.2", port },
      peerAddress: { ip: "::ffff:198.18.0.1", port: 40000 },
      state,
      config: { network: "", illegalPorts: DEFAULT_ILLEGAL_PORTS },
    });

  it("delivers to the original destination when no policy objects", () => {
    const p = plaintext(stateFrom(base));
    assert.equal(p.kind, "accept");
    assert.equal(p.kind === "accept" && formatAddr(p.upstream), "198.18.0.2:8080");
    assert.equal(
      p.kind === "accept" && p.sourceWorkload?.name,
      "client",
      "source looked up by (unmapped) IP",
    );
    assert.equal(p.kind === "accept" && p.destinationService?.hostname, "svc.ns.svc.cluster.local");
  });

  it("refuses ztunnel's own ports", () => {
    const p = plaintext(stateFrom(base), 15006);
    assert.equal(p.kind === "refused" && p.code, "illegal-port");
  });

  it("refuses when the local workload is unknown", () => {
    const p = plaintext(stateFrom(base), 8080, null);
    assert.equal(p.kind === "refused" && p.code, "unknown-local-workload");
  });

  it("STRICT mTLS (DENY not_principals presence) refuses plaintext", () => {
    const state = stateFrom(
      base,
      `policies: [{name: istio_converted_static_strict, namespace: istio-system, scope: GLOBAL, action: DENY, rules: [[[{notPrincipals: [{presence: {}}]}]]]}]`,
    );
    const p = plaintext(state);
    assert.equal(p.kind, "refused");
    assert.equal(p.kind === "refused" && p.code, "denied");
    assert.equal(
      p.kind === "refused" && p.authorization?.reason === "deny-matched" && p.authorization.policy,
      "istio-system/istio_converted_static_strict",
    );
    // ... while the same policy lets mTLS through on 15008.
    assert.equal(inbound(state).kind, "accept");
  });

  it("positive identity conditions never match plaintext", () => {
    const state = stateFrom(
      base,
      `policies: [{name: allow-ns, namespace: ns, scope: NAMESPACE, action: ALLOW, rules: [[[{namespaces: [{exact: ns}]}]]]}]`,
    );
    assert.equal(plaintext(state).kind, "refused");
    assert.equal(inbound(state).kind, "accept");
  });
});

describe("parseAuthority", () => {
  it("accepts ip:port, [v6]:port and host:port only", () => {
    assert.deepEqual(parseAuthority("198.18.0.2:80"), {
      kind: "address",
      ip: "198.18.0.2",
      port: 80,
    });
    assert.deepEqual(parseAuthority("[fd00::2]:80"), { kind: "address", ip: "fd00::2", port: 80 });
    assert.deepEqual(parseAuthority("svc.ns.svc.cluster.local:80"), {
      kind: "hostname",
      hostname: "svc.ns.svc.cluster.local",
      port: 80,
    });
    for (const bad of [
      "",
      ":80",
      "host",
      "host:",
      "host:99999",
      "a b:80",
      "[fd00::2]80",
      "fd00::2:80",
      "a/b:80",
    ]) {
      assert.equal(parseAuthority(bad), undefined, bad);
    }
  });
});
