/**
 * Waypoint Gateway status. A waypoint is only used once its `Gateway.status.addresses` is set
 * (INTEROP §7.1), and only whatever deploys waypoints knows their addresses: in Kubernetes a
 * controller, locally the runtime. So the control plane writes status only when such a deployer
 * is plugged in (`WaypointDeployer`); without one it writes nothing and never invents addresses.
 */
import type { ConfigBatch, ConfigObject, ConfigStore } from "../../lib/config/index.ts";
import type { Logger } from "../../lib/log/index.ts";

export interface GatewayStatusAddress {
  readonly type: "Hostname" | "IPAddress";
  readonly value: string;
}

export interface WaypointDeployer {
  /** The waypoint's addresses once it is deployed and ready; undefined while it is not. */
  addresses(namespace: string, name: string): readonly GatewayStatusAddress[] | undefined;
}

type Gateway = ConfigObject<"Gateway">;

export const WAYPOINT_CLASS = "istio-waypoint";

function sameAddresses(gw: Gateway, want: readonly GatewayStatusAddress[]): boolean {
  const have = (gw.status?.addresses ?? []) as readonly { type?: string; value: string }[];
  return (
    have.length === want.length &&
    have.every((a, i) => a.value === want[i]!.value && (a.type ?? "IPAddress") === want[i]!.type)
  );
}

/** Writes `status.addresses` and a Programmed condition for waypoint Gateways that need it. */
export class WaypointStatusWriter {
  readonly #store: ConfigStore;
  readonly #deployer: WaypointDeployer;
  readonly #log: Logger;

  constructor(store: ConfigStore, deployer: WaypointDeployer, log: Logger) {
    this.#store = store;
    this.#deployer = deployer;
    this.#log = log;
  }

  /** Looks at the Gateways a batch touched. */
  onBatch(batch: ConfigBatch): void {
    for (const e of batch.events) {
      if (e.kind !== "Gateway" || e.type === "deleted") continue;
      this.reconcile(e.new);
    }
  }

  /** The deployer says a waypoint's readiness changed. */
  waypointChanged(namespace: string, name: string): void {
    const gw = this.#store.get("Gateway", namespace, name);
    if (gw !== undefined) this.reconcile(gw);
  }

  reconcile(gw: Gateway): void {
    if (gw.spec.gatewayClassName !== WAYPOINT_CLASS) return;
    const ns = gw.metadata.namespace;
    const name = gw.metadata.name;
    const addresses = this.#deployer.addresses(ns, name) ?? [];
    if (sameAddresses(gw, addresses)) return;
    const ready = addresses.length > 0;
    const now = new Date().toISOString();
    const condition = {
      type: "Programmed",
      status: ready ? "True" : "False",
      reason: ready ? "Programmed" : "Pending",
      message: ready ? "waypoint deployed" : "waiting for the waypoint to be deployed",
      lastTransitionTime: now,
      observedGeneration: gw.metadata.generation ?? 0,
    };
    void this.#store
      .writeStatus({
        type: "status",
        kind: "Gateway",
        namespace: ns,
        name,
        status: { addresses: addresses.map((a) => ({ ...a })), conditions: [condition] },
      })
      .then((r) => {
        if (!r.ok) {
          this.#log.warn("cannot write waypoint status", {
            gateway: `${ns}/${name}`,
            reason: r.reason.message,
          });
        }
      });
  }
}
