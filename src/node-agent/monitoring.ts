/**
 * The agent's HTTP endpoints on TCP: `/metrics` (Prometheus text; istio-cni serves it on 15014)
 * and `/readyz` + `/healthz` (istio-cni: port 8000). When both ports are the same one server
 * answers all three paths.
 */
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface MonitoringOptions {
  readonly host: string;
  readonly metricsPort: number;
  readonly readinessPort: number;
  readonly registry: Registry;
  /** Why the agent is not ready, or undefined when it is. */
  readonly notReadyReason: () => string | undefined;
}

function text(res: ServerResponse, status: number, body: string, type = "text/plain"): void {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

export class MonitoringServers {
  readonly #servers: Server[];
  readonly #byRole = new Map<"metrics" | "readiness", Server>();

  private constructor(servers: Server[]) {
    this.#servers = servers;
  }

  static async start(o: MonitoringOptions): Promise<MonitoringServers> {
    const wants = (metrics: boolean, readiness: boolean) =>
      createServer((req, res) => {
        const path = (req.url ?? "").split("?")[0];
        if (metrics && path === "/metrics") {
          o.registry.metrics().then(
            (body) => text(res, 200, body, o.registry.contentType),
            (err: unknown) => text(res, 500, `collecting metrics failed: ${String(err)}\n`),
          );
        } else if (readiness && path === "/healthz") {
          text(res, 200, "ok\n");
        } else if (readiness && path === "/readyz") {
          const why = o.notReadyReason();
          if (why === undefined) text(res, 200, "ready\n");
          else text(res, 503, `not ready: ${why}\n`);
        } else {
          text(res, 404, "not found\n");
        }
      });
    const same = o.metricsPort === o.readinessPort && o.metricsPort !== 0;
    const plan: { server: Server; port: number; roles: ("metrics" | "readiness")[] }[] = same
      ? [{ server: wants(true, true), port: o.metricsPort, roles: ["metrics", "readiness"] }]
      : [
          { server: wants(true, false), port: o.metricsPort, roles: ["metrics"] },
          { server: wants(false, true), port: o.readinessPort, roles: ["readiness"] },
        ];
    const m = new MonitoringServers(plan.map((p) => p.server));
    try {
      for (const p of plan) {
        await new Promise<void>((resolve, reject) => {
          p.server.once("error", reject);
          p.server.listen(p.port, o.host, () => {
            p.server.off("error", reject);
            resolve();
          });
        });
        for (const r of p.roles) m.#byRole.set(r, p.server);
      }
    } catch (err) {
      await m.close();
      throw err;
    }
    return m;
  }

  /** The bound port of the metrics or readiness server (useful with port 0). */
  port(role: "metrics" | "readiness"): number {
    return (this.#byRole.get(role)?.address() as AddressInfo | null)?.port ?? 0;
  }

  async close(): Promise<void> {
    await Promise.all(
      this.#servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (!s.listening) return resolve();
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
  }
}
