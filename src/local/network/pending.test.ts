import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { allocate } from "./ipam.ts";
import { pendingOps, type Observation, type ObservedLink, type ObservedRoute } from "./pending.ts";
import { planTopology, type NetOp } from "./plan.ts";
import type { TopologySpec } from "./spec.ts";

const spec: TopologySpec = {
  cluster: "demo",
  nodes: [{ name: "node1" }, { name: "node2" }],
  pods: [
    { namespace: "default", name: "a", node: "node1" },
    { namespace: "default", name: "b", node: "node2" },
  ],
};

function plan(s: TopologySpec, prev?: Parameters<typeof allocate>[1]) {
  const a = allocate(s, prev);
  if (!a.ok) assert.fail(a.reason.join("; "));
  return { plan: planTopology(s, a.value), ipam: a.value };
}

type MutableNetns = {
  links: Map<string, ObservedLink & { addrs: string[] }>;
  routes: ObservedRoute[];
  sysctls: Map<string, string>;
};

/** What the kernel would hold after running `ops` (a small simulation of ip's effects). */
function simulate(ops: readonly NetOp[]): Observation {
  const nss = new Map<string, MutableNetns>();
  let ifindex = 10;
  const ns = (name: string) => nss.get(name)!;
  for (const op of ops) {
    switch (op.kind) {
      case "netns":
        nss.set(op.netns, {
          links: new Map([["lo", { ifindex: 1, up: false, addrs: [] }]]),
          routes: [],
          sysctls: new Map(),
        });
        break;
      case "sysctl":
        ns(op.netns).sysctls.set(op.key, op.value);
        break;
      case "bridge":
        ns(op.netns).links.set(op.dev, {
          ifindex: ifindex++,
          kind: "bridge",
          up: false,
          addrs: [],
        });
        break;
      case "veth": {
        const a = ifindex++;
        const b = ifindex++;
        ns(op.netns).links.set(op.dev, {
          ifindex: a,
          kind: "veth",
          peerIfindex: b,
          up: false,
          addrs: [],
        });
        ns(op.peerNetns).links.set(op.peerDev, {
          ifindex: b,
          kind: "veth",
          peerIfindex: a,
          up: false,
          addrs: [],
        });
        break;
      }
      case "master": {
        const l = ns(op.netns).links.get(op.dev)!;
        ns(op.netns).links.set(op.dev, { ...l, master: op.master });
        break;
      }
      case "up": {
        const l = ns(op.netns).links.get(op.dev)!;
        ns(op.netns).links.set(op.dev, { ...l, up: true });
        break;
      }
      case "addr":
        ns(op.netns).links.get(op.dev)!.addrs.push(op.cidr);
        break;
      case "route":
        ns(op.netns).routes.push({
          dst: op.dst,
          dev: op.dev,
          ...(op.via !== undefined ? { via: op.via } : {}),
          ...(op.src !== undefined ? { src: op.src } : {}),
          onlink: op.onlink === true,
        });
        break;
      case "netns-delete":
      case "link-delete":
      case "addr-delete":
      case "route-delete":
        throw new Error(`not simulated: ${op.kind}`);
    }
  }
  return { netns: nss };
}

const managed = ["198.19.0.0/16"];

describe("pendingOps", () => {
  it("is everything, phase by phase, for a fresh machine", () => {
    const { plan: p } = plan(spec);
    const todo = pendingOps(p.ops, { netns: new Map() }, managed);
    assert.equal(todo.length, p.ops.length);
    assert.deepEqual(
      todo.slice(0, 6).map((o) => o.kind),
      Array(6).fill("netns"),
    );
    assert.equal(todo.at(-1)!.kind, "route");
  });

  it("is nothing when the namespaces already hold the plan", () => {
    const { plan: p } = plan(spec);
    assert.deepEqual(pendingOps(p.ops, simulate(p.ops), managed), []);
  });

  it("re-creates a pod's veth on its new node and drops the old address", () => {
    const { plan: before, ipam } = plan(spec);
    const moved: TopologySpec = {
      ...spec,
      pods: [{ namespace: "default", name: "a", node: "node2" }, spec.pods![1]!],
    };
    const { plan: after } = plan(moved, ipam);
    const todo = pendingOps(after.ops, simulate(before.ops), managed);
    const lines = todo.map((o) => `${o.kind} ${o.netns} ${"dev" in o ? o.dev : ""}`.trim());
    assert.ok(lines.includes("link-delete amb-demo-default-a eth0"));
    assert.ok(
      todo.some(
        (o) =>
          o.kind === "veth" && o.netns === "amb-demo-node2" && o.peerNetns === "amb-demo-default-a",
      ),
    );
    assert.ok(
      todo.some(
        (o) => o.kind === "addr" && o.netns === "amb-demo-default-a" && o.cidr === "198.19.1.3/32",
      ),
    );
    assert.ok(
      todo.some(
        (o) => o.kind === "route" && o.netns === "amb-demo-default-a" && o.via === "198.19.1.1",
      ),
    );
    // The old node's host route goes away with the veth; nothing to delete explicitly.
    assert.ok(!todo.some((o) => o.kind === "route-delete"));
    // Untouched pod b: nothing for it.
    assert.ok(!todo.some((o) => o.netns === "amb-demo-default-b"));
  });

  it("deletes routes to a node that left and addresses that changed", () => {
    const { plan: before, ipam } = plan(spec);
    const obs = simulate(before.ops);
    // Someone changed node1's address by hand.
    const eth0 = obs.netns.get("amb-demo-node1")!.links.get("eth0") as unknown as {
      addrs: string[];
    };
    eth0.addrs.splice(0, 1, "198.18.0.77/24");
    const smaller: TopologySpec = { ...spec, nodes: [{ name: "node1" }], pods: [spec.pods![0]!] };
    const { plan: after } = plan(smaller, ipam);
    const todo = pendingOps(after.ops, obs, managed);
    assert.deepEqual(
      todo.map((o) => o.kind),
      ["addr-delete", "addr", "route-delete", "route-delete"],
    );
    assert.deepEqual(todo[0], {
      kind: "addr-delete",
      netns: "amb-demo-node1",
      dev: "eth0",
      cidr: "198.18.0.77/24",
    });
    assert.deepEqual(
      todo
        .filter((o) => o.kind === "route-delete")
        .map((o) => `${o.netns} ${"dst" in o ? o.dst : ""}`)
        .sort(),
      ["amb-demo-cp 198.19.1.0/24", "amb-demo-node1 198.19.1.0/24"],
    );
  });
});
