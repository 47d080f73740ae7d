/**
 * Simulated ztunnels: many XdsClients (one gRPC channel each) in one process. Forked by index.ts
 * with its proxies in argv[2] (JSON). Reports `synced` per proxy once it holds what it should
 * (every Address for a wildcard proxy, its node's workloads for an on-demand one), then, once
 * told `measure`, every Address update's arrival time.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { AuthorizationSchema } from "../../src/lib/gen/istio/security/authorization_pb.ts";
import { AddressSchema } from "../../src/lib/gen/istio/workload/workload_pb.ts";
import { LogOutput, MemorySink } from "../../src/lib/log/index.ts";
import { XdsClient, buildProxyNode } from "../../src/lib/xds/index.ts";

interface ProxySpec {
  readonly id: number;
  readonly node: string;
  readonly onDemand: boolean;
  readonly expectAddresses: number;
  readonly expectAuthorizations: number;
}

interface Args {
  readonly grpcPort: number;
  readonly rootCertPem: string;
  readonly credentialsDir: string;
  readonly proxies: readonly ProxySpec[];
}

const args = JSON.parse(process.argv[2] ?? "{}") as Args;
const send = (m: unknown) => process.send?.(m);
const now = () => performance.timeOrigin + performance.now();
const quiet = new LogOutput({ sink: new MemorySink() }).logger("xds");
let measuring = false;
const clients: XdsClient[] = [];

for (const p of args.proxies) {
  const addresses = new Set<string>();
  const authorizations = new Set<string>();
  let synced = false;
  const check = () => {
    if (
      !synced &&
      addresses.size >= p.expectAddresses &&
      authorizations.size >= p.expectAuthorizations
    ) {
      synced = true;
      send({ type: "synced", id: p.id, at: now(), addresses: addresses.size });
    }
  };
  const token = await readFile(join(args.credentialsDir, `${p.node}.token`), "utf8");
  const client = new XdsClient({
    address: `https://127.0.0.1:${args.grpcPort}`,
    tls: { rootCertsPem: args.rootCertPem },
    token: () => token,
    node: buildProxyNode({
      instanceIp: "198.18.0.1",
      podName: `ztunnel-${p.node}`,
      podNamespace: "istio-system",
      nodeName: p.node,
    }),
    onDemand: p.onDemand,
    logger: quiet,
    handlers: [
      {
        schema: AddressSchema,
        apply: ({ updates, removed }) => {
          const at = now();
          for (const u of updates) addresses.add(u.name);
          for (const n of removed) addresses.delete(n);
          if (measuring) {
            send({
              type: "arrival",
              id: p.id,
              at,
              names: updates.map((u) => u.name),
              removed: removed.length,
            });
          }
          check();
        },
      },
      {
        schema: AuthorizationSchema,
        onDemand: false,
        apply: ({ updates, removed }) => {
          for (const u of updates) authorizations.add(u.name);
          for (const n of removed) authorizations.delete(n);
          check();
        },
      },
    ],
  });
  clients.push(client);
  client.start();
}
send({ type: "started", count: clients.length });

process.on("message", (raw) => {
  const m = raw as { type: string };
  if (m.type === "measure") measuring = true;
  if (m.type === "stop") {
    for (const c of clients) c.close();
    setTimeout(() => process.exit(0), 100).unref();
  }
});
