import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryConfigStore } from "../../lib/config/index.ts";
import { LogOutput, MemorySink } from "../../lib/log/index.ts";
import { WaypointStatusWriter, type GatewayStatusAddress } from "./waypoint-status.ts";

const gateway = (name: string, className: string) => ({
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "Gateway",
  metadata: { name, namespace: "app" },
  spec: {
    gatewayClassName: className,
    listeners: [{ name: "mesh", port: 15008, protocol: "HBONE" }],
  },
});

describe("WaypointStatusWriter", () => {
  it("writes the deployer's addresses to waypoint Gateways only, and only when they change", async () => {
    const log = new LogOutput({ sink: new MemorySink() }).logger("status");
    const store = new MemoryConfigStore({
      log,
      objects: [gateway("waypoint", "istio-waypoint"), gateway("ingress", "istio")],
    });
    await store.start();
    const ready = new Map<string, GatewayStatusAddress[]>();
    let asked = 0;
    const writer = new WaypointStatusWriter(
      store,
      {
        addresses: (ns, name) => {
          asked += 1;
          return ready.get(`${ns}/${name}`);
        },
      },
      log,
    );
    let writes = 0;
    store.subscribe((batch) => {
      if (!batch.initial) writes += batch.events.length;
      writer.onBatch(batch);
    });
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(asked, 1, "only the waypoint Gateway is considered");
    assert.equal(writes, 0, "not deployed yet and no addresses held: nothing to write");

    ready.set("app/waypoint", [{ type: "IPAddress", value: "198.18.5.1" }]);
    writer.waypointChanged("app", "waypoint");
    await new Promise((r) => setTimeout(r, 10));
    const gw = store.get("Gateway", "app", "waypoint");
    assert.deepEqual(gw?.status?.addresses, [{ type: "IPAddress", value: "198.18.5.1" }]);
    assert.equal(gw?.status?.conditions?.[0]?.status, "True");
    assert.equal(store.get("Gateway", "app", "ingress")?.status?.addresses, undefined);
    const after = writes;
    writer.waypointChanged("app", "waypoint");
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(writes, after, "unchanged addresses are not written again");
  });
});
