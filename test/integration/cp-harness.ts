/**
 * Shared by the control-plane integration tests: a control plane on loopback (gRPC over TLS and
 * HTTP on ephemeral ports) reading a temporary config directory, XdsClients that hold what they
 * were sent, a CA client, and small waiting helpers. Everything is removed in `close()`.
 */
import { mkdtemp, readFile, rm, writeFile, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Metadata, credentials } from "@grpc/grpc-js";
import type { ConfigStore } from "../../src/lib/config/index.ts";
import { ControlPlane, loadConfig } from "../../src/control-plane/index.ts";
import type { ControlPlaneInputs } from "../../src/control-plane/index.ts";
import { IstioCertificateService } from "../../src/lib/gen/istio/v1/auth/ca_pb.ts";
import { AuthorizationSchema } from "../../src/lib/gen/istio/security/authorization_pb.ts";
import type { Authorization } from "../../src/lib/gen/istio/security/authorization_pb.ts";
import { AddressSchema } from "../../src/lib/gen/istio/workload/workload_pb.ts";
import type { Address } from "../../src/lib/gen/istio/workload/workload_pb.ts";
import { createGrpcClient, unaryCall } from "../../src/lib/grpc/index.ts";
import { LogOutput, MemorySink, parseLevelSpec } from "../../src/lib/log/index.ts";
import { XdsClient, buildProxyNode } from "../../src/lib/xds/index.ts";
import type { MessageEvent, Rejection } from "../../src/lib/xds/index.ts";

export const MESH_YAML = `
apiVersion: v1
kind: Namespace
metadata: { name: istio-system }
---
apiVersion: v1
kind: Namespace
metadata: { name: app, labels: { istio.io/dataplane-mode: ambient } }
---
apiVersion: v1
kind: Node
metadata: { name: node-a }
---
apiVersion: v1
kind: Node
metadata: { name: node-b }
`;

export function podYaml(
  name: string,
  node: string,
  ip: string,
  app: string,
  serviceAccount = app,
): string {
  return `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: app, labels: { app: ${app} } }
spec: { nodeName: ${node}, serviceAccountName: ${serviceAccount}, containers: [{ name: app, image: ${app} }] }
status: { phase: Running, podIP: ${ip}, conditions: [{ type: Ready, status: "True" }] }
`;
}

export const WEB_SERVICE_YAML = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: app }
spec:
  selector: { app: web }
  clusterIP: 198.19.0.10
  ports: [{ name: http, port: 80, targetPort: 8080 }]
`;

export function policyYaml(principal: string): string {
  return `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-web, namespace: app }
spec:
  selector: { matchLabels: { app: db } }
  rules:
    - from: [{ source: { principals: ["${principal}"] } }]
`;
}

/** The default fixture: web-1 on node-a, web-2 and db-1 on node-b, Service web, one policy. */
export function defaultFiles(): Record<string, string> {
  return {
    "mesh.yaml": MESH_YAML,
    "web-1.yaml": podYaml("web-1", "node-a", "198.18.10.1", "web"),
    "web-2.yaml": podYaml("web-2", "node-b", "198.18.10.2", "web"),
    "db-1.yaml": podYaml("db-1", "node-b", "198.18.10.3", "db"),
    "service.yaml": WEB_SERVICE_YAML,
    "policy.yaml": policyYaml("cluster.local/ns/app/sa/web"),
  };
}

export const uid = (pod: string) => `Kubernetes//Pod/app/${pod}`;
export const WEB_SERVICE = "app/web.app.svc.cluster.local";

export interface PlaneHandle {
  plane: ControlPlane;
  readonly dir: string;
  readonly stateDir: string;
  readonly lines: string[];
  /** Starts (again) on the same ports and directories, e.g. after stop(). */
  restart(): Promise<void>;
  writeFile(name: string, text: string): Promise<void>;
  removeFile(name: string): Promise<void>;
  getJson<T = unknown>(path: string): Promise<{ status: number; body: T }>;
  getText(path: string): Promise<{ status: number; body: string }>;
  token(node: string): Promise<string>;
  close(): Promise<void>;
}

export async function startPlane(
  options: {
    files?: Record<string, string>;
    flags?: readonly string[];
    env?: Record<string, string>;
    inputs?: ControlPlaneInputs;
  } = {},
): Promise<PlaneHandle> {
  const base = await mkdtemp(join(tmpdir(), "amb-cp-"));
  const dir = join(base, "config");
  const stateDir = join(base, "state");
  const { mkdir } = await import("node:fs/promises");
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(options.files ?? defaultFiles())) {
    await writeFile(join(dir, name), text);
  }
  const sink = new MemorySink();
  const spec = parseLevelSpec("info");
  const logOutput = new LogOutput({ sink, ...(spec.ok ? { spec: spec.value } : {}) });
  let grpcPort = 0;
  let httpPort = 0;
  const start = async () => {
    const config = loadConfig(
      [
        ...(options.inputs?.store === undefined && !(options.flags ?? []).includes("--kubeconfig")
          ? ["--config-dir", dir]
          : []),
        "--state-dir",
        stateDir,
        "--grpc-address",
        `127.0.0.1:${grpcPort}`,
        "--http-address",
        `127.0.0.1:${httpPort}`,
        "--debounce-after",
        "10ms",
        "--debounce-max",
        "100ms",
        ...(options.flags ?? []),
      ],
      options.env ?? {},
    );
    const plane = await ControlPlane.start(config, { logOutput, ...options.inputs });
    grpcPort = plane.grpcPort;
    httpPort = plane.httpPort;
    return plane;
  };
  let plane: ControlPlane;
  try {
    plane = await start();
  } catch (err) {
    await rm(base, { recursive: true, force: true });
    throw err;
  }
  const handle: PlaneHandle = {
    plane,
    dir,
    stateDir,
    lines: sink.lines,
    async restart() {
      handle.plane = await start();
    },
    writeFile: (name, text) => writeFile(join(dir, name), text),
    removeFile: (name) => unlink(join(dir, name)),
    async getText(path) {
      const res = await fetch(`http://127.0.0.1:${handle.plane.httpPort}${path}`);
      return { status: res.status, body: await res.text() };
    },
    async getJson<T>(path: string) {
      const res = await fetch(`http://127.0.0.1:${handle.plane.httpPort}${path}`);
      return { status: res.status, body: (await res.json()) as T };
    },
    token: (node) => readFile(handle.plane.nodeTokenPath(node), "utf8"),
    async close() {
      await handle.plane.stop();
      await rm(base, { recursive: true, force: true });
    },
  };
  return handle;
}

/** An XdsClient that keeps what it holds, records every response, and can refuse names. */
export class HeldState {
  readonly addresses = new Map<string, { version: string; address: Address }>();
  readonly authorizations = new Map<string, { version: string; authorization: Authorization }>();
  readonly messages: MessageEvent[] = [];
  readonly client: XdsClient;
  /** Names the Address handler refuses (NACK) with this reason. */
  readonly refuse = new Map<string, string>();
  terminations = 0;

  constructor(
    plane: ControlPlane,
    options: {
      node: string;
      token: () => string | undefined | Promise<string | undefined>;
      onDemand?: boolean;
      podName?: string;
    },
  ) {
    this.client = new XdsClient({
      address: `https://127.0.0.1:${plane.grpcPort}`,
      tls: () => ({ rootCertsPem: plane.rootCertPem }),
      token: options.token,
      node: buildProxyNode({
        instanceIp: "198.18.0.2",
        podName: options.podName ?? `ztunnel-${options.node}`,
        podNamespace: "istio-system",
        nodeName: options.node,
      }),
      onDemand: options.onDemand ?? false,
      logger: new LogOutput({ sink: new MemorySink() }).logger("xds"),
      backoff: { initialMs: 20, maxMs: 200 },
      handlers: [
        {
          schema: AddressSchema,
          apply: ({ updates, removed }) => {
            const rejections: Rejection[] = [];
            for (const u of updates) {
              const reason = this.refuse.get(u.name);
              if (reason !== undefined) {
                rejections.push({ name: u.name, reason });
                continue;
              }
              this.addresses.set(u.name, { version: u.version, address: u.resource as Address });
            }
            for (const n of removed) this.addresses.delete(n);
            return rejections;
          },
        },
        {
          schema: AuthorizationSchema,
          onDemand: false,
          apply: ({ updates, removed }) => {
            for (const u of updates) {
              this.authorizations.set(u.name, {
                version: u.version,
                authorization: u.resource as Authorization,
              });
            }
            for (const n of removed) this.authorizations.delete(n);
          },
        },
      ],
      observer: {
        message: (e) => this.messages.push(e),
        terminated: () => {
          this.terminations += 1;
        },
      },
    });
    this.client.start();
  }

  addressNames(): string[] {
    return [...this.addresses.keys()].sort();
  }

  close(): void {
    this.client.close();
  }
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 5000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sends CreateCertificate to the control plane with a bearer token. */
export async function requestCertificate(
  plane: ControlPlane,
  request: { csr: string; validityDuration?: bigint; impersonate?: string },
  token: string | undefined,
): Promise<string[]> {
  const client = createGrpcClient(
    IstioCertificateService,
    `127.0.0.1:${plane.grpcPort}`,
    credentials.createSsl(Buffer.from(plane.rootCertPem)),
  );
  try {
    const md = new Metadata();
    if (token !== undefined) md.set("authorization", `Bearer ${token}`);
    md.set("clusterid", "Kubernetes");
    const res = await unaryCall(
      client,
      "createCertificate",
      {
        csr: request.csr,
        validityDuration: request.validityDuration ?? 3600n,
        ...(request.impersonate !== undefined
          ? { metadata: { ImpersonatedIdentity: request.impersonate } }
          : {}),
      },
      { metadata: md },
    );
    return res.certChain;
  } finally {
    client.close();
  }
}

/** One metric's value from a Prometheus text page (labels as written, e.g. `{type="address"}`). */
export function metricValue(text: string, name: string, labels = ""): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}${labels} `))
      return Number(line.slice(name.length + labels.length + 1));
  }
  return undefined;
}

export type { ConfigStore };
