/**
 * A synthetic cluster as stored objects: N nodes, namespaces of services with their pods spread
 * round-robin over the nodes, one AuthorizationPolicy per namespace. Addresses come from
 * 198.18.0.0/15 (pods first, then service VIPs). Objects are built in the config store's stored
 * shape directly: the benchmark measures the control plane, not YAML validation.
 */
import type { ConfigObject, Kind } from "../../src/lib/config/index.ts";

export interface ClusterShape {
  readonly nodes: number;
  readonly pods: number;
  readonly services: number;
  readonly namespaces: number;
}

const BASE = (198 << 24) | (18 << 16);

function ip(n: number): string {
  const v = BASE + n;
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

let rv = 0;
function meta(
  name: string,
  namespace: string,
  labels: Record<string, string> = {},
  annotations: Record<string, string> = {},
) {
  rv += 1;
  return {
    name,
    namespace,
    labels,
    annotations,
    uid: `uid-${namespace}-${name}-${rv}`,
    resourceVersion: String(rv),
    generation: 1,
    creationTimestamp: "2026-01-01T00:00:00Z",
    ownerReferences: [],
  };
}

export function nodeName(i: number): string {
  return `node-${String(i).padStart(4, "0")}`;
}

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
  readonly ip: string;
  readonly app: string;
}

/** The pod at a global index (same for every process). */
export function podAt(shape: ClusterShape, i: number): PodRef {
  const podsPerNs = Math.ceil(shape.pods / shape.namespaces);
  const svcPerNs = Math.ceil(shape.services / shape.namespaces);
  const ns = Math.floor(i / podsPerNs);
  const local = i % podsPerNs;
  return {
    namespace: `ns-${ns}`,
    name: `pod-${local}`,
    node: nodeName(i % shape.nodes),
    ip: ip(1000 + i),
    app: `svc-${local % svcPerNs}`,
  };
}

export function podObject(p: PodRef, version: string): ConfigObject<"Pod"> {
  return {
    kind: "Pod",
    apiVersion: "v1",
    metadata: meta(
      p.name,
      p.namespace,
      { app: p.app, version },
      {
        "ambient.istio.io/redirection": "enabled",
      },
    ),
    spec: {
      nodeName: p.node,
      serviceAccountName: p.app,
      containers: [{ name: "app", image: "app", ports: [{ containerPort: 8080 }] }],
    },
    status: {
      phase: "Running",
      podIP: p.ip,
      podIPs: [{ ip: p.ip }],
      conditions: [{ type: "Ready", status: "True" }],
    },
  };
}

/** Every object of the cluster. */
export function clusterObjects(shape: ClusterShape): ConfigObject[] {
  const out: ConfigObject[] = [];
  const add = (o: unknown) => out.push(o as ConfigObject);
  add({ kind: "Namespace", apiVersion: "v1", metadata: meta("istio-system", ""), spec: {} });
  for (let n = 0; n < shape.nodes; n++) {
    add({ kind: "Node", apiVersion: "v1", metadata: meta(nodeName(n), ""), spec: {} });
  }
  const svcPerNs = Math.ceil(shape.services / shape.namespaces);
  let svc = 0;
  for (let ns = 0; ns < shape.namespaces; ns++) {
    const namespace = `ns-${ns}`;
    add({
      kind: "Namespace",
      apiVersion: "v1",
      metadata: meta(namespace, "", { "istio.io/dataplane-mode": "ambient" }),
      spec: {},
    });
    for (let s = 0; s < svcPerNs && svc < shape.services; s++, svc++) {
      add({
        kind: "Service",
        apiVersion: "v1",
        metadata: meta(`svc-${s}`, namespace),
        spec: {
          selector: { app: `svc-${s}` },
          clusterIP: ip(110_000 + svc),
          ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }],
        },
      });
    }
    add({
      kind: "AuthorizationPolicy",
      apiVersion: "security.istio.io/v1",
      metadata: meta("allow-same-namespace", namespace),
      spec: { rules: [{ from: [{ source: { namespaces: [namespace] } }] }] },
    });
  }
  for (let i = 0; i < shape.pods; i++) add(podObject(podAt(shape, i), "v1"));
  return out;
}

export type { Kind };
