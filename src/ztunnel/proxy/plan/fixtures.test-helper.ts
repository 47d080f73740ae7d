/**
 * Test fixtures for the planners: ztunnel local-config YAML loaded into a ProxyState, and a
 * compact summary of a plan to compare against. (Named *.test-helper.ts: used by tests only.)
 */
import assert from "node:assert/strict";
import { formatIdentity } from "../../../lib/identity/index.ts";
import { applyLocalConfig, parseLocalConfig, ProxyState } from "../../state/index.ts";
import { formatAddr } from "./common.ts";
import type { OutboundPlan } from "./outbound.ts";

export function stateFrom(...yamls: string[]): ProxyState {
  return loadInto(new ProxyState({ localNode: "node-a" }), ...yamls);
}

/** Applies more fixture documents (as one xDS batch each) to an existing state. */
export function loadInto(state: ProxyState, ...yamls: string[]): ProxyState {
  for (const y of yamls) {
    const cfg = parseLocalConfig(y);
    if (!cfg.ok) assert.fail(`fixture is invalid:\n${cfg.reason.join("\n")}`);
    applyLocalConfig(state, cfg.value);
  }
  return state;
}

/** The fields of an outbound plan a test compares, as plain strings. */
export interface OutboundSummary {
  kind?: string;
  code?: string;
  via?: string;
  protocol?: string;
  destination?: string;
  authority?: string;
  identities?: string[];
  innerAuthority?: string;
  innerIdentities?: string[];
  forwardedNetwork?: string;
  upstream?: string;
  waypoint?: string;
  gateway?: string;
  service?: string;
  forwardedHost?: string;
  reason?: string;
  hostname?: string;
}

export function summarize(p: OutboundPlan): OutboundSummary {
  switch (p.kind) {
    case "refused":
      return { kind: p.kind, code: p.code, ...(p.service ? { service: p.service.hostname } : {}) };
    case "passthrough":
      return { kind: p.kind, destination: formatAddr(p.destination), reason: p.reason };
    case "needs-dns":
      return { kind: p.kind, hostname: p.hostname, upstream: p.workload.name };
    case "connect":
      return {
        kind: p.kind,
        via: p.via,
        protocol: p.protocol,
        destination: formatAddr(p.destination),
        ...(p.authority !== undefined ? { authority: p.authority } : {}),
        identities: p.expectedIdentities.map(formatIdentity),
        ...(p.inner
          ? {
              innerAuthority: p.inner.authority,
              innerIdentities: p.inner.expectedIdentities.map(formatIdentity),
              forwardedNetwork: p.inner.forwardedNetwork,
            }
          : {}),
        upstream: p.upstream.workload.name,
        ...(p.waypoint ? { waypoint: p.waypoint.workload.name } : {}),
        ...(p.gateway ? { gateway: p.gateway.workload.name } : {}),
        ...(p.service ? { service: p.service.hostname } : {}),
        ...(p.forwardedHost !== undefined ? { forwardedHost: p.forwardedHost } : {}),
      };
  }
}

/** Compares only the keys `want` names. */
export function assertSubset(got: OutboundSummary, want: OutboundSummary, label: string): void {
  const picked: Record<string, unknown> = {};
  for (const k of Object.keys(want)) picked[k] = (got as Record<string, unknown>)[k];
  assert.deepEqual(picked, want, `${label}\nfull plan summary: ${JSON.stringify(got)}`);
}
