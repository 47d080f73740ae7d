import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { servicePorts } from "./endpoints.ts";
import { renderRules, svcChain } from "./rules.ts";

const golden = (name: string, text: string) => {
  const file = join(import.meta.dirname, "testdata", name);
  if (process.env["UPDATE_GOLDEN"] === "1") writeFileSync(file, text);
  assert.equal(text, readFileSync(file, "utf8"), `${name} (UPDATE_GOLDEN=1 rewrites it)`);
};

const pod = (
  name: string,
  ip: string,
  labels: Record<string, string>,
  ready = true,
  extra: Record<string, unknown> = {},
) => ({
  metadata: { name, namespace: "shop", labels, ...extra },
  spec: { containers: [{ name: "c", ports: [{ name: "web", containerPort: 8080 }] }] },
  status: {
    phase: "Running",
    podIP: ip,
    conditions: [{ type: "Ready", status: ready ? "True" : "False" }],
  },
});

const services = [
  {
    metadata: { name: "web", namespace: "shop" },
    spec: {
      clusterIP: "198.18.16.1",
      selector: { app: "web" },
      ports: [
        { name: "http", port: 80, targetPort: "web" },
        { name: "dns", port: 53, protocol: "UDP", targetPort: 5353 },
      ],
    },
  },
  {
    metadata: { name: "empty", namespace: "shop" },
    spec: { clusterIP: "198.18.16.2", selector: { app: "none" }, ports: [{ port: 9000 }] },
  },
  {
    metadata: { name: "headless", namespace: "shop" },
    spec: { clusterIP: "None", selector: { app: "web" }, ports: [{ port: 80 }] },
  },
  {
    metadata: { name: "manual", namespace: "shop" },
    spec: { clusterIP: "198.18.16.3", ports: [{ name: "tcp", port: 7000 }] },
  },
];

const pods = [
  pod("web-1", "198.19.0.2", { app: "web" }),
  pod("web-2", "198.19.1.2", { app: "web" }),
  pod("web-3", "198.19.1.3", { app: "web" }, false),
  pod("web-4", "198.19.0.4", { app: "web" }, true, { deletionTimestamp: "2030-01-01T00:00:00Z" }),
  {
    ...pod("other", "198.19.0.9", { app: "web" }),
    metadata: { name: "other", namespace: "elsewhere", labels: { app: "web" } },
  },
];

const slices = [
  {
    metadata: {
      name: "manual-1",
      namespace: "shop",
      labels: { "kubernetes.io/service-name": "manual" },
    },
    addressType: "IPv4",
    ports: [{ name: "tcp", port: 7001, protocol: "TCP" }],
    endpoints: [
      { addresses: ["198.18.0.50"], conditions: { ready: true } },
      { addresses: ["198.18.0.51"], conditions: { ready: false } },
    ],
  },
];

describe("kube-proxy rules", () => {
  it("selects ready, live pods of the namespace, resolves named target ports, reads EndpointSlices", () => {
    const ports = servicePorts(services, pods, slices);
    assert.deepEqual(
      ports.map((p) => [
        `${p.namespace}/${p.service}:${p.portName}/${p.protocol}`,
        p.vip,
        p.port,
        p.endpoints.map((e) => `${e.ip}:${e.port}`),
      ]),
      [
        ["shop/empty:/TCP", "198.18.16.2", 9000, []],
        ["shop/manual:tcp/TCP", "198.18.16.3", 7000, ["198.18.0.50:7001"]],
        ["shop/web:dns/UDP", "198.18.16.1", 53, ["198.19.0.2:5353", "198.19.1.2:5353"]],
        ["shop/web:http/TCP", "198.18.16.1", 80, ["198.19.0.2:8080", "198.19.1.2:8080"]],
      ],
    );
  });

  it("renders iptables-restore input (golden), deleting chains no longer needed", () => {
    const ports = servicePorts(services, pods, slices);
    const text = renderRules(ports, [
      "KUBE-SVC-AAAAAAAAAAAAAAAA",
      "KUBE-SEP-BBBBBBBBBBBBBBBB",
      svcChain(ports[1]!),
      "DOCKER",
    ]);
    golden("rules.golden", text);
    // Uniform choice over n endpoints: 1/n, then 1/(n-1), ..., the last unconditional.
    const three = servicePorts(
      services.slice(0, 1),
      [
        pod("a", "198.19.0.2", { app: "web" }),
        pod("b", "198.19.0.3", { app: "web" }),
        pod("c", "198.19.0.4", { app: "web" }),
      ],
      [],
    ).find((p) => p.protocol === "TCP")!;
    const probs = [...renderRules([three]).matchAll(/--probability (\S+)/g)].map((m) => m[1]);
    assert.deepEqual(probs, ["0.3333333333", "0.5000000000"]);
    // Only VIPs are matched: nothing mentions a pod IP as a destination, nor port 15008.
    assert.doesNotMatch(text, /-d 198\.19\./);
    assert.doesNotMatch(text, /15008/);
  });
});
