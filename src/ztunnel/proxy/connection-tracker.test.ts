import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseIdentity } from "../../lib/identity/index.ts";
import { applyLocalConfig, parseLocalConfig, ProxyState, type Workload } from "../state/index.ts";
import { ConnectionTracker } from "./connection-tracker.ts";

function load(state: ProxyState, yaml: string): void {
  const cfg = parseLocalConfig(yaml);
  if (!cfg.ok) throw new Error(cfg.reason.join("; "));
  applyLocalConfig(state, cfg.value);
}

const client = parseIdentity("spiffe://cluster.local/ns/ns/sa/client");
assert.ok(client.ok);

describe("ConnectionTracker", () => {
  it("re-checks tracked connections and revokes the ones a new policy denies", () => {
    const state = new ProxyState();
    load(
      state,
      `workloads: [{uid: k//Pod/ns/s, name: s, namespace: ns, workloadIps: [198.18.0.2], protocol: HBONE}]`,
    );
    const target = state.workloadByUid("k//Pod/ns/s") as Workload;
    const t = new ConnectionTracker();
    const closed: string[] = [];
    const conn = (port: number) => {
      const c = t.trackInbound({
        protocol: "HBONE",
        src: { ip: "198.18.0.1", port: 40000 + port },
        srcIdentity: client.value,
        dst: { ip: "198.18.0.2", port },
        originalDst: `198.18.0.2:${port}`,
      });
      c.setCloser((e) => closed.push(`${port}: ${e.message}`));
      return c;
    };
    conn(80);
    conn(7000);
    assert.equal(t.recheck(state, target, () => new Error("x")).length, 0);
    load(
      state,
      `policies: [{name: deny, namespace: ns, scope: Namespace, action: Deny, rules: [[[{destinationPorts: [7000]}]]]}]`,
    );
    const revoked = t.recheck(state, target, () => new Error("policy change"));
    assert.equal(revoked.length, 1);
    assert.equal(revoked[0]?.decision.allowed, false);
    assert.deepEqual(closed, ["7000: policy change"]);
    assert.equal(t.inboundCount, 1);
    assert.deepEqual(t.dump().inbound, [
      {
        src: "198.18.0.1:40080",
        originalDst: "198.18.0.2:80",
        actualDst: "198.18.0.2:80",
        protocol: "HBONE",
      },
    ]);
  });

  it("closes a connection revoked before its closer was attached as soon as it is", () => {
    const t = new ConnectionTracker();
    const c = t.trackInbound({
      protocol: "TCP",
      src: { ip: "198.18.0.9", port: 1 },
      srcIdentity: undefined,
      dst: { ip: "198.18.0.2", port: 80 },
      originalDst: undefined,
    });
    c.revoke(new Error("late"));
    assert.equal(c.revoked, true);
    let got = "";
    c.setCloser((e) => (got = e.message));
    assert.equal(got, "late");
    assert.equal(t.inboundCount, 0);
  });

  it("lists outbound connections until they are released", () => {
    const t = new ConnectionTracker();
    const done = t.trackOutbound({
      src: { ip: "198.18.0.1", port: 5 },
      originalDst: { ip: "198.18.10.1", port: 80 },
      actualDst: { ip: "198.18.0.2", port: 15008 },
      protocol: "HBONE",
    });
    assert.deepEqual(t.dump().outbound, [
      {
        src: "198.18.0.1:5",
        originalDst: "198.18.10.1:80",
        actualDst: "198.18.0.2:15008",
        protocol: "HBONE",
      },
    ]);
    done();
    assert.equal(t.outboundCount, 0);
  });
});
