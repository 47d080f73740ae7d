import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyLocalConfig, parseLocalConfig, ProxyState } from "../state/index.ts";
import { LocalWorkload } from "./local-workload.ts";

const yaml = (canonical: string) => `
workloads:
- {uid: k//Pod/ns/p, name: p, namespace: ns, serviceAccount: sa, node: n1, workloadIps: [198.18.0.1], canonicalName: ${canonical}}
- {uid: k//Pod/ns/other, name: p, namespace: ns, serviceAccount: sa, node: n2, workloadIps: [198.18.0.9]}
`;

function load(state: ProxyState, y: string): void {
  const cfg = parseLocalConfig(y);
  if (!cfg.ok) throw new Error(cfg.reason.join("; "));
  applyLocalConfig(state, cfg.value);
}

describe("LocalWorkload", () => {
  it("waits for the pod to appear among this node's workloads and follows updates", async () => {
    const state = new ProxyState({ localNode: "n1" });
    const local = new LocalWorkload(state, { name: "p", namespace: "ns", serviceAccount: "sa" });
    assert.equal(local.get(), undefined);
    const waiting = local.wait(5000);
    load(state, yaml("v1"));
    const w = await waiting;
    assert.equal(w?.uid, "k//Pod/ns/p", "the workload on our node, not the namesake elsewhere");
    load(state, yaml("v2"));
    assert.equal(local.get()?.canonicalName, "v2");
    local.close();
  });

  it("gives up after the wait, and at once when aborted or closed", async () => {
    const state = new ProxyState({ localNode: "n1" });
    const local = new LocalWorkload(state, { name: "p", namespace: "ns", serviceAccount: "sa" });
    const t0 = performance.now();
    assert.equal(await local.wait(30), undefined);
    assert.ok(performance.now() - t0 >= 25);
    const ac = new AbortController();
    const aborted = local.wait(60_000, ac.signal);
    ac.abort();
    assert.equal(await aborted, undefined);
    const closed = local.wait(60_000);
    local.close();
    assert.equal(await closed, undefined);
  });
});
