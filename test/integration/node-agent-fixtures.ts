/**
 * Shared pieces of the node agent integration tests (root): pod and node network namespaces of
 * this test process (amb-agt-<pid>-<n>, addresses from 198.18.0.0/15 only), the API-server
 * stand-in with Pods and Namespaces, ztunnel's real in-pod side (WorkloadManager +
 * InpodStateManager with the ZDS tests' proxy factory: its listeners answer inside the pod), the
 * plugin-event client the runtime would be, and a running agent.
 */
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { Registry } from "prom-client";
import { KubeConfigStore } from "../../src/lib/config/index.ts";
import { LogOutput, MemorySink } from "../../src/lib/log/index.ts";
import { FakeKubeApi } from "../../src/testing/fake-kube-api.ts";
import {
  InpodStateManager,
  WorkloadManager,
  createInpodMetrics,
} from "../../src/ztunnel/inpod/index.ts";
import {
  NodeAgent,
  loadConfig,
  linuxRules,
  type RulesBackend,
} from "../../src/node-agent/index.ts";
import { TestProxies } from "./zds-fixtures.ts";

const run = promisify(execFile);

export async function sh(cmd: string, args: string[]): Promise<string> {
  return (await run(cmd, args, { timeout: 20_000 })).stdout;
}

/** A network namespace of this test process: a pod (address on a veth kept inside) or a node. */
export class TestNetns {
  readonly name: string;
  readonly ip: string;

  private constructor(name: string, ip: string) {
    this.name = name;
    this.ip = ip;
  }

  get path(): string {
    return `/run/netns/${this.name}`;
  }

  /** `ip` is this namespace's address (198.18.x.y), on a /24 with a veth pair inside. */
  static async create(suffix: string, ip: string): Promise<TestNetns> {
    const name = `amb-agt-${process.pid}-${suffix}`;
    await sh("ip", ["netns", "add", name]);
    try {
      await sh("ip", ["-n", name, "link", "set", "lo", "up"]);
      await sh("ip", ["-n", name, "link", "add", "amb0", "type", "veth", "peer", "name", "amb1"]);
      await sh("ip", ["-n", name, "link", "set", "amb1", "up"]);
      await sh("ip", ["-n", name, "addr", "add", `${ip}/24`, "dev", "amb0"]);
      await sh("ip", ["-n", name, "link", "set", "amb0", "up"]);
    } catch (err) {
      await sh("ip", ["netns", "del", name]).catch(() => "");
      throw err;
    }
    return new TestNetns(name, ip);
  }

  exec(cmd: string, args: string[]): Promise<string> {
    return sh("ip", ["netns", "exec", this.name, cmd, ...args]);
  }

  /** `iptables-save` (or ip6tables-save) inside. */
  save(v6 = false): Promise<string> {
    return this.exec(v6 ? "ip6tables-save" : "iptables-save", []);
  }

  /** The rule lines (`-A ...`) of our chains and jumps, for comparing and counting. */
  async istioRules(v6 = false): Promise<string[]> {
    return (await this.save(v6))
      .split("\n")
      .filter((l) => l.startsWith("-A") && l.includes("ISTIO"));
  }

  /**
   * Connects from inside with bash's /dev/tcp and returns what the server sent, or the error
   * text ("refused", ...) when the connection fails.
   */
  async connect(address: string, port: number): Promise<string> {
    try {
      return (
        await this.exec("timeout", [
          "3",
          "bash",
          "-c",
          `exec 3<>/dev/tcp/${address}/${port} && cat <&3`,
        ])
      ).trim();
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      return `failed: ${(e.stderr ?? e.message).trim()}`;
    }
  }

  async destroy(): Promise<void> {
    await sh("ip", ["netns", "del", this.name]);
  }
}

export function kubeConfigFor(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "fake", server, skipTLSVerify: true }],
    users: [{ name: "agent", token: "t" }],
    contexts: [{ name: "fake", cluster: "fake", user: "agent" }],
    currentContext: "fake",
  });
  return kc;
}

export function memoryLog(): { out: LogOutput; sink: MemorySink } {
  const sink = new MemorySink();
  return { sink, out: new LogOutput({ sink, spec: { defaultLevel: "debug", scopes: new Map() } }) };
}

export const NODE = "node-1";

export const nsObject = (name: string, labels: Record<string, string> = {}) => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, labels },
});

export const podObject = (
  namespace: string,
  name: string,
  labels: Record<string, string> = {},
  ip?: string,
) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace, labels },
  spec: {
    nodeName: NODE,
    serviceAccountName: "default",
    containers: [{ name: "app", image: "app" }],
  },
  ...(ip ? { status: { phase: "Running", podIP: ip, podIPs: [{ ip }] } } : {}),
});

/** ztunnel's in-pod side: proxies and state survive reconnects; the ZDS client can be swapped. */
export class Ztunnel {
  readonly proxies = new TestProxies();
  readonly state: InpodStateManager;
  readonly path: string;
  manager: WorkloadManager | undefined;

  constructor(path: string) {
    this.path = path;
    this.state = new InpodStateManager({
      startProxy: this.proxies.start,
      metrics: createInpodMetrics(new Registry()),
      log: memoryLog().out.logger("inpod"),
    });
  }

  connect(): WorkloadManager {
    this.manager = WorkloadManager.start({
      state: this.state,
      path: this.path,
      log: memoryLog().out.logger("inpod"),
      reconnectInitialMs: 20,
      reconnectMaxMs: 200,
    });
    return this.manager;
  }

  async disconnect(): Promise<void> {
    await this.manager?.close();
    this.manager = undefined;
  }

  async shutdown(): Promise<void> {
    await this.disconnect();
    await this.state.drain();
  }
}

/** Posts a plugin event as the runtime does; resolves status and body. */
export function postEvent(
  socketPath: string,
  path: "/cmdadd" | "/cmddel",
  body: unknown,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = request(
      {
        socketPath,
        path,
        method: "POST",
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

/** istio-cni's ADD body for a pod sandbox. */
export function addEvent(namespace: string, name: string, netns: TestNetns, uid?: string) {
  return {
    CmdAddEvent: {
      ContainerID: `sandbox-${name}`,
      Netns: netns.path,
      IfName: "eth0",
      Args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${name}${uid ? `;K8S_POD_UID=${uid}` : ""}`,
      Path: "/opt/cni/bin",
    },
    PodName: name,
    PodNamespace: namespace,
    IPs: [{ Address: { IP: netns.ip, Mask: "////AA==" }, Gateway: null }],
  };
}

export interface AgentEnv {
  readonly api: FakeKubeApi;
  readonly dir: string;
  readonly zdsPath: string;
  readonly pluginSocket: string;
}

export async function apiAndDirs(): Promise<AgentEnv> {
  const api = new FakeKubeApi();
  await api.listen();
  const dir = mkdtempSync(join(tmpdir(), "amb-agt-it-"));
  return {
    api,
    dir,
    zdsPath: join(dir, "ztunnel", "ztunnel.sock"),
    pluginSocket: join(dir, "istio-cni", "pluginevent.sock"),
  };
}

export interface RunningAgent {
  readonly agent: NodeAgent;
  readonly store: KubeConfigStore;
  readonly sink: MemorySink;
  close(): Promise<void>;
}

/** A node agent against the API stand-in, with its files under `env.dir`. */
export async function startAgent(
  env: AgentEnv,
  node: TestNetns,
  extra: Record<string, string> = {},
  rules: RulesBackend = linuxRules,
): Promise<RunningAgent> {
  const { out, sink } = memoryLog();
  const config = loadConfig({
    NODE_NAME: NODE,
    CNI_AGENT_RUN_DIR: join(env.dir, "istio-cni"),
    ZTUNNEL_UDS_ADDRESS: env.zdsPath,
    HOST_NETNS_PATH: node.path,
    MONITORING_HOST: "127.0.0.1",
    MONITORING_PORT: "0",
    READINESS_PORT: "0",
    AMBIENT_POD_LOOKUP_TIMEOUT_MS: "3000",
    ...extra,
  });
  const store = new KubeConfigStore({
    kubeConfig: kubeConfigFor(env.api.url),
    kinds: ["Pod", "Namespace"],
    log: out.logger("config"),
    backoff: { initialMs: 50, maxMs: 200 },
  });
  let agent: NodeAgent;
  try {
    agent = await NodeAgent.start({ config, store, logOutput: out, rules });
  } catch (err) {
    await store.close();
    throw err;
  }
  return {
    agent,
    store,
    sink,
    close: async () => {
      await agent.close();
      await store.close();
    },
  };
}

/** Polls `check` until it stops throwing; rethrows its last error after `timeoutMs`. */
export async function eventually(check: () => unknown, timeoutMs = 10_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (performance.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** The value of an unlabelled (or first matching) sample of `name` in Prometheus text. */
export async function metric(port: number, name: string): Promise<number | undefined> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text);
  return m === null ? undefined : Number(m[1]);
}

export function redirectionOf(api: FakeKubeApi, namespace: string, name: string): unknown {
  const p = api.get("v1", "Pod", namespace, name) as
    { metadata?: { annotations?: Record<string, string> } } | undefined;
  return p?.metadata?.annotations?.["ambient.istio.io/redirection"];
}
