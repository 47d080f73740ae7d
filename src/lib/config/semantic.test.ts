import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatFieldPath } from "./field-path.ts";
import type { Kind } from "./kinds.ts";
import { validateSemantics, visit } from "./semantic.ts";

function check(kind: Kind, obj: object): string[] {
  return validateSemantics(kind, obj as Record<string, unknown>).map(
    (i) => `${formatFieldPath(i.path)}: ${i.reason}`,
  );
}

describe("semantic checks", () => {
  it("visit walks lists and maps", () => {
    const seen: string[] = [];
    visit({ a: [{ b: { x: 1, y: 2 } }, { b: { z: 3 } }] }, "a[].b{}", (v, p) =>
      seen.push(`${formatFieldPath(p)}=${String(v)}`),
    );
    assert.deepEqual(seen, ["a[0].b.x=1", "a[0].b.y=2", "a[1].b.z=3"]);
  });

  it("Service ports, target ports and names", () => {
    assert.deepEqual(
      check("Service", {
        spec: {
          ports: [
            { name: "http", port: 70000, targetPort: "Bad_Name" },
            { name: "http", port: 80, targetPort: 0 },
            { port: 81 },
          ],
        },
      }),
      [
        "spec.ports[0].port: must be a port number between 1 and 65535 (got 70000)",
        "spec.ports[0].targetPort: named port must contain only lower-case letters, digits and '-', starting and ending with a letter or digit",
        "spec.ports[1].targetPort: must be a port number between 1 and 65535 (got 0)",
        'spec.ports[1].name: duplicate port name "http" (also spec.ports[0])',
        "spec.ports[2]: name is required when a Service has more than one port",
      ],
    );
  });

  it("container ports in Pods and Deployments", () => {
    assert.deepEqual(check("Pod", { spec: { containers: [{ ports: [{ containerPort: 0 }] }] } }), [
      "spec.containers[0].ports[0].containerPort: must be a port number between 1 and 65535 (got 0)",
    ]);
    assert.deepEqual(
      check("Deployment", {
        spec: {
          template: {
            spec: { initContainers: [{ ports: [{ containerPort: 80, hostPort: 65536 }] }] },
          },
        },
      }),
      [
        "spec.template.spec.initContainers[0].ports[0].hostPort: must be a port number between 0 and 65535 (got 65536)",
      ],
    );
  });

  it("EndpointSlice addresses match the address type", () => {
    assert.deepEqual(
      check("EndpointSlice", {
        addressType: "IPv4",
        endpoints: [{ addresses: ["198.18.0.1", "::1"] }],
        ports: [{ port: 0 }],
      }),
      [
        "ports[0].port: must be a port number between 1 and 65535 (got 0)",
        'endpoints[0].addresses[1]: must be an IPv4 address (got "::1")',
      ],
    );
  });

  it("AuthorizationPolicy ports, CUSTOM provider and target exclusivity", () => {
    assert.deepEqual(
      check("AuthorizationPolicy", {
        spec: {
          action: "CUSTOM",
          selector: { matchLabels: { a: "b" } },
          targetRefs: [{ kind: "Service", name: "x" }],
          rules: [{ to: [{ operation: { ports: ["80", "http"], notPorts: ["99999"] } }] }],
        },
      }),
      [
        'spec.rules[0].to[0].operation.ports[1]: must be a port number between 1 and 65535 (got "http")',
        'spec.rules[0].to[0].operation.notPorts[0]: must be a port number between 1 and 65535 (got "99999")',
        "spec.targetRefs: only one of selector, targetRef, targetRefs may be set (found selector and targetRefs)",
        "spec.provider: required when action is CUSTOM",
      ],
    );
    assert.deepEqual(
      check("AuthorizationPolicy", { spec: { action: "DENY", provider: { name: "x" } } }),
      ["spec.provider: may only be set when action is CUSTOM"],
    );
  });

  it("PeerAuthentication port keys need a selector", () => {
    assert.deepEqual(
      check("PeerAuthentication", {
        spec: { portLevelMtls: { "0": { mode: "STRICT" }, "8080": {} } },
      }),
      [
        'spec.portLevelMtls["0"]: must be a port number between 1 and 65535 (got "0")',
        "spec.portLevelMtls: portLevelMtls requires a workload selector",
      ],
    );
  });

  it("Istio networking ports", () => {
    assert.deepEqual(
      check("VirtualService", {
        spec: {
          http: [
            {
              match: [{ port: 0 }],
              route: [{ destination: { port: { number: 70000 } } }],
              mirror: { port: { number: 65536 } },
            },
          ],
          tcp: [{ route: [{ destination: { port: { number: 5 } } }] }],
        },
      }),
      [
        "spec.http[0].route[0].destination.port.number: must be a port number between 1 and 65535 (got 70000)",
        "spec.http[0].match[0].port: must be a port number between 1 and 65535 (got 0)",
        "spec.http[0].mirror.port.number: must be a port number between 1 and 65535 (got 65536)",
      ],
    );
    assert.deepEqual(
      check("DestinationRule", {
        spec: { subsets: [{ trafficPolicy: { portLevelSettings: [{ port: { number: 0 } }] } }] },
      }),
      [
        "spec.subsets[0].trafficPolicy.portLevelSettings[0].port.number: must be a port number between 1 and 65535 (got 0)",
      ],
    );
    assert.deepEqual(
      check("ServiceEntry", {
        spec: {
          ports: [{ number: 80, targetPort: 70000 }],
          endpoints: [{ ports: { http: 0 } }],
          workloadSelector: {},
        },
      }),
      [
        "spec.ports[0].targetPort: must be a port number between 1 and 65535 (got 70000)",
        "spec.endpoints[0].ports.http: must be a port number between 1 and 65535 (got 0)",
        "spec.endpoints: only one of workloadSelector, endpoints may be set (found workloadSelector and endpoints)",
      ],
    );
    assert.deepEqual(check("WorkloadEntry", { spec: { ports: { http: 65536 } } }), [
      "spec.ports.http: must be a port number between 1 and 65535 (got 65536)",
    ]);
  });
});
