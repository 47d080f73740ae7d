import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { allocate } from "./ipam.ts";
import { IFNAME_MAX, nodeBridgePort, podHostInterface, podNetns } from "./names.ts";
import { ipCommand } from "./pending.ts";
import { planTopology, type NetOp } from "./plan.ts";
import type { TopologySpec } from "./spec.ts";

const spec: TopologySpec = {
  cluster: "demo",
  nodes: [{ name: "node1" }, { name: "node2" }],
  pods: [
    { namespace: "default", name: "a", node: "node1" },
    { namespace: "default", name: "b", node: "node2" },
  ],
  services: [{ namespace: "default", name: "web" }],
};

function plan(s: TopologySpec) {
  const a = allocate(s);
  if (!a.ok) assert.fail(a.reason.join("; "));
  return planTopology(s, a.value);
}

/** One line per operation, the way the executor runs it. */
function render(ops: readonly NetOp[]): string {
  return (
    ops
      .map((o) => {
        if (o.kind === "sysctl") return `[${o.netns}] sysctl -w ${o.key}=${o.value}`;
        if (o.kind === "netns" || o.kind === "netns-delete") return `ip ${ipCommand(o)}`;
        return `[${o.netns}] ip ${ipCommand(o)}`;
      })
      .join("\n") + "\n"
  );
}

describe("planTopology", () => {
  it("matches the golden plan for two nodes with a pod each", () => {
    const p = plan(spec);
    const text = `# up\n${render(p.ops)}\n# down\n${render(p.teardown)}`;
    const file = join(import.meta.dirname, "testdata", "two-nodes.golden");
    if (process.env["UPDATE_GOLDEN"] === "1") writeFileSync(file, text);
    assert.equal(text, readFileSync(file, "utf8"));
  });

  it("describes where everything is for the rest of the runtime", () => {
    const t = plan(spec).topology;
    assert.equal(t.prefix, "amb-demo-");
    assert.deepEqual(t.controlPlane, {
      netns: "amb-demo-cp",
      netnsPath: "/run/netns/amb-demo-cp",
      address: "198.18.0.1",
    });
    assert.deepEqual(t.nodes[0], {
      name: "node1",
      netns: "amb-demo-node1",
      netnsPath: "/run/netns/amb-demo-node1",
      address: "198.18.0.2",
      podCidr: "198.19.0.0/24",
      podGateway: "198.19.0.1",
    });
    assert.equal(t.pods[1]!.netns, "amb-demo-default-b");
    assert.equal(t.pods[1]!.ip, "198.19.1.2");
    assert.equal(t.pods[1]!.gateway, "198.19.1.1");
    assert.deepEqual(t.services, [{ namespace: "default", name: "web", vip: "198.18.16.1" }]);
    assert.deepEqual(
      t.namespaces.map((n) => n.role),
      ["network", "control-plane", "node", "node", "pod", "pod"],
    );
  });

  it("creates nothing in the host namespace", () => {
    for (const op of plan(spec).ops) {
      if (op.kind === "netns") continue;
      assert.match(op.netns, /^amb-demo-/);
      if (op.kind === "veth") assert.match(op.peerNetns, /^amb-demo-/);
    }
  });

  it("keeps interface names within 15 bytes, hashing long ones", () => {
    const long = "a-very-long-node-name-indeed";
    assert.equal(nodeBridgePort("node1"), "n-node1");
    assert.equal(nodeBridgePort(long).length, 14);
    assert.notEqual(nodeBridgePort(long), nodeBridgePort(`${long}2`));
    assert.match(podHostInterface("default", "a"), /^vp[0-9a-f]{12}$/);
    const p = plan({
      ...spec,
      nodes: [{ name: long }],
      pods: [{ namespace: "x", name: "y", node: long }],
    });
    for (const op of p.ops) {
      if ("dev" in op) assert.ok(op.dev.length <= IFNAME_MAX, op.dev);
    }
    assert.ok(podNetns("c", "ns", "p".repeat(253)).length <= 255);
  });

  it("rejects namespace names that collide", () => {
    const s: TopologySpec = {
      cluster: "demo",
      nodes: [{ name: "web-a" }],
      pods: [{ namespace: "web", name: "a", node: "web-a" }],
    };
    assert.throws(() => plan(s), {
      code: "NETWORK_INVALID_TOPOLOGY",
      message: /namespace name amb-demo-web-a is used twice/,
    });
  });
});
