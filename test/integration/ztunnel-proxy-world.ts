/**
 * A small mesh for the ztunnel proxy tests (root), without control plane or node agent:
 *
 *   node   amb-zp-<pid>-n   router between the others (ip_forward), no mesh
 *   A      amb-zp-<pid>-a   198.19.171.2  client-a  (sa client),   enrolled
 *   B      amb-zp-<pid>-b   198.19.172.2  server-b  (sa server-b), enrolled, endpoint of echo
 *   C      amb-zp-<pid>-c   198.19.173.2  server-c  (sa server-c), enrolled, endpoint of echo
 *   D      amb-zp-<pid>-d   198.19.174.2  a client outside the mesh
 *   E      amb-zp-<pid>-e   198.19.175.2  a server outside the mesh
 *   W      amb-zp-<pid>-w   198.19.177.2  waypoint-w (sa waypoint), enrolled, application tunnel
 *                                        PROXY on 15088 (a "sandwich" waypoint's inbound)
 *   G      amb-zp-<pid>-g   198.19.176.2  an east-west gateway of network "net2" (HboneServers of
 *                                        this test: the gateway, and behind it the remote ztunnel)
 *
 * Service echo.zp.svc.cluster.local, VIP 198.19.180.10:80 -> 8080 on B and C; service
 * remote.zp.svc.cluster.local, VIP 198.19.180.20:80, whose only endpoint is on network net2. The enrolled pods
 * get Istio's in-pod redirection rules (src/node-agent/rules); their proxies run in this process
 * (startInpodProxy) with a ProxyState from a local-config fixture, certificates from the test
 * PKI, one Prometheus registry and JSON log lines in memory. Apps are Node servers in this
 * process listening inside the pods' namespaces; clients are curl (`ip netns exec`) or sockets
 * created in a namespace. Everything is removed by `close()`.
 */
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { Server, Socket } from "node:net";
import { promisify } from "node:util";
import { Registry } from "prom-client";
import { HboneServer } from "../../src/lib/hbone/index.ts";
import {
  formatIdentity,
  identityKey,
  parseIdentity,
  type Identity,
  type WorkloadCertificate,
} from "../../src/lib/identity/index.ts";
import { LogOutput, MemorySink } from "../../src/lib/log/index.ts";
import { closeFd, createNetnsSocket, openNetns } from "../../src/lib/net/index.ts";
import {
  applyPodRules,
  buildPodRules,
  defaultPodSettings,
} from "../../src/node-agent/rules/index.ts";
import { createTestPki, type TestPki } from "../../src/testing/pki.ts";
import {
  startInpodProxy,
  type CertificateSource,
  type ProxyConfig,
  type ProxyInputs,
  type WorkloadProxy,
} from "../../src/ztunnel/proxy/index.ts";
import { seededRng } from "../../src/ztunnel/proxy/plan/index.ts";
import { applyLocalConfig, parseLocalConfig, ProxyState } from "../../src/ztunnel/state/index.ts";

const run = promisify(execFile);

export async function sh(cmd: string, args: string[]): Promise<string> {
  return (await run(cmd, args, { timeout: 30_000 })).stdout;
}

export const NODE_NAME = "node-zp";
export const VIP = "198.19.180.10";
export const SERVICE_HOST = "echo.zp.svc.cluster.local";

export interface PodSpec {
  readonly key: "a" | "b" | "c" | "d" | "e" | "w" | "g";
  readonly ip: string;
  readonly gateway: string;
  readonly enrolled: boolean;
}

export const PODS: readonly PodSpec[] = [
  { key: "a", ip: "198.19.171.2", gateway: "198.19.171.1", enrolled: true },
  { key: "b", ip: "198.19.172.2", gateway: "198.19.172.1", enrolled: true },
  { key: "c", ip: "198.19.173.2", gateway: "198.19.173.1", enrolled: true },
  { key: "d", ip: "198.19.174.2", gateway: "198.19.174.1", enrolled: false },
  { key: "e", ip: "198.19.175.2", gateway: "198.19.175.1", enrolled: false },
  { key: "w", ip: "198.19.177.2", gateway: "198.19.177.1", enrolled: true },
  { key: "g", ip: "198.19.176.2", gateway: "198.19.176.1", enrolled: false },
];

export const IP = {
  a: "198.19.171.2",
  b: "198.19.172.2",
  c: "198.19.173.2",
  d: "198.19.174.2",
  e: "198.19.175.2",
  w: "198.19.177.2",
  g: "198.19.176.2",
} as const;

export const REMOTE_VIP = "198.19.180.20";
export const REMOTE_HOST = "remote.zp.svc.cluster.local";

export const ID = {
  a: "spiffe://cluster.local/ns/zp/sa/client",
  b: "spiffe://cluster.local/ns/zp/sa/server-b",
  c: "spiffe://cluster.local/ns/zp/sa/server-c",
  w: "spiffe://cluster.local/ns/zp/sa/waypoint",
  gateway: "spiffe://cluster.local/ns/istio-system/sa/eastwest",
  remote: "spiffe://cluster.local/ns/zp/sa/remote",
} as const;

/** Policies B's workload refers to; each takes effect when a test adds it. */
export const B_POLICIES = [
  "zp/allow-client",
  "zp/deny-9090",
  "zp/deny-7000",
  "istio-system/istio_converted_static_strict",
];

const workloadYaml = (key: string, name: string, sa: string, ip: string, extra: string): string => `
- uid: Kubernetes//Pod/zp/${name}
  name: ${name}
  namespace: zp
  serviceAccount: ${sa}
  workloadIps: [${ip}]
  protocol: HBONE
  node: ${NODE_NAME}
  canonicalName: ${key === "a" ? "client" : "echo"}
  canonicalRevision: v1
  workloadName: ${key === "a" ? "client" : `echo-${key}`}
  workloadType: deployment
  clusterId: Kubernetes
  locality: {region: region-1, zone: zone-${key}}
${extra}`;

export const STATE_YAML = `
workloads:${workloadYaml("a", "client-a", "client", IP.a, "")}${workloadYaml(
  "b",
  "server-b",
  "server-b",
  IP.b,
  `  services: {zp/${SERVICE_HOST}: {80: 8080}}
  authorizationPolicies: [${B_POLICIES.join(", ")}]`,
)}${workloadYaml("c", "server-c", "server-c", IP.c, `  services: {zp/${SERVICE_HOST}: {80: 8080}}`)}
- uid: Kubernetes//Pod/zp/waypoint-w
  name: waypoint-w
  namespace: zp
  serviceAccount: waypoint
  workloadIps: [${IP.w}]
  protocol: HBONE
  node: ${NODE_NAME}
  workloadName: waypoint
  applicationTunnel: {protocol: PROXY, port: 15088}
- uid: net2//Pod/istio-system/eastwest
  name: eastwest
  namespace: istio-system
  serviceAccount: eastwest
  network: net2
  workloadIps: [${IP.g}]
  protocol: HBONE
- uid: net2//Pod/zp/remote
  name: remote
  namespace: zp
  serviceAccount: remote
  network: net2
  protocol: HBONE
  networkGateway: {destination: net2/${IP.g}, hboneMtlsPort: 15008}
  services: {zp/${REMOTE_HOST}: {80: 8080}}
services:
- name: echo
  namespace: zp
  hostname: ${SERVICE_HOST}
  vips: [/${VIP}]
  ports: {80: 8080}
- name: remote
  namespace: zp
  hostname: ${REMOTE_HOST}
  vips: [/${REMOTE_VIP}]
  ports: {80: 8080}
  subjectAltNames: [${ID.remote}]
`;

/** Certificates from the test PKI, issued on first use and kept; `rotate` issues a new one. */
export class TestCertificates implements CertificateSource {
  readonly #pki: TestPki;
  readonly #certs = new Map<string, Promise<WorkloadCertificate>>();
  readonly requested: string[] = [];

  constructor(pki: TestPki) {
    this.#pki = pki;
  }

  certificate(identity: Identity): Promise<WorkloadCertificate> {
    const k = identityKey(identity);
    this.requested.push(k);
    let c = this.#certs.get(k);
    if (c === undefined) {
      c = this.#pki.issue(identity);
      this.#certs.set(k, c);
    }
    return c;
  }

  rotate(identity: string): Promise<WorkloadCertificate> {
    const id = parseIdentity(identity);
    if (!id.ok) throw new Error(id.reason);
    const c = this.#pki.issue(id.value);
    this.#certs.set(identityKey(id.value), c);
    return c;
  }

  roots(): readonly string[] {
    return [this.#pki.rootPem];
  }
}

export function proxyConfig(overrides: Partial<ProxyConfig> = {}): ProxyConfig {
  return Object.freeze({
    network: "",
    clusterId: "Kubernetes",
    nodeName: NODE_NAME,
    clusterDomain: "cluster.local",
    illegalPorts: new Set([15001, 15006, 15008, 15080]),
    hbonePort: 15008,
    packetMark: 1337,
    inpodPortReuse: true,
    originalSource: "try",
    socks5: true,
    dnsProxy: true,
    dnsProxyAddress: { address: "localhost", port: 15053 },
    responseBaggage: true,
    sourceWaitMs: 2000,
    terminationDeadlineMs: 5000,
    poolMaxStreamsPerConnection: 100,
    poolUnusedReleaseTimeoutMs: 300_000,
    connectTimeoutMs: 5000,
    tls12Enabled: false,
    ...overrides,
  });
}

/** One line of the JSON logs. */
export type LogLine = Record<string, string | number | boolean | null> & {
  level: string;
  scope: string;
  message: string;
};

/** What an app server saw of one connection. */
export interface AppConnection {
  readonly pod: string;
  readonly port: number;
  readonly peer: string;
  readonly bytesRead: number;
  readonly bytesWritten: number;
}

/** Deterministic content for big transfers: a 1 MiB block, repeated. */
export const BLOCK = (() => {
  const b = Buffer.alloc(1 << 20);
  let seed = createHash("sha256").update("ztunnel-proxy").digest();
  for (let o = 0; o < b.length; o += 32) {
    seed.copy(b, o);
    seed = createHash("sha256").update(seed).digest();
  }
  return b;
})();

export function expectedSha256(bytes: number): string {
  const h = createHash("sha256");
  let left = bytes;
  while (left > 0) {
    const n = Math.min(left, BLOCK.length);
    h.update(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n));
    left -= n;
  }
  return h.digest("hex");
}

export type Enrolled = "a" | "b" | "c" | "w";

/** What the east-west gateway and the remote ztunnel behind it saw of each CONNECT. */
export interface GatewaySeen {
  readonly hop: "gateway" | "remote";
  readonly authority: string;
  readonly peerIdentity: string;
  readonly forwardedNetwork: string | undefined;
}

/** A parsed PROXY v2 header, as the application-tunnel app received it. */
export interface ProxyHeaderSeen {
  readonly src: string;
  readonly dst: string;
  readonly identity: string | undefined;
}

export class World {
  readonly prefix = `amb-zp-${process.pid}`;
  readonly registry = new Registry();
  readonly sink = new MemorySink();
  readonly output = new LogOutput({
    spec: { defaultLevel: "info", scopes: new Map([["access", "debug"]]) },
    format: "json",
    sink: this.sink,
  });
  readonly state = new ProxyState({ localNode: NODE_NAME });
  readonly appConnections: AppConnection[] = [];
  readonly gatewaySeen: GatewaySeen[] = [];
  readonly #hboneServers: HboneServer[] = [];
  certificates!: TestCertificates;
  readonly proxies = new Map<string, WorkloadProxy>();
  readonly #netns = new Map<string, number>();
  readonly #namespaces: string[] = [];
  readonly #servers: (Server | HttpServer)[] = [];
  readonly #sockets = new Set<Socket>();
  config: ProxyConfig = proxyConfig();

  ns(key: string): string {
    return `${this.prefix}-${key}`;
  }

  netnsFd(key: string): number {
    const fd = this.#netns.get(key);
    if (fd === undefined) throw new Error(`no namespace ${key}`);
    return fd;
  }

  inputs(): ProxyInputs {
    return {
      config: this.config,
      state: this.state,
      certificates: this.certificates,
      registry: this.registry,
      accessLog: this.output.logger("access"),
      log: this.output.logger("proxy"),
    };
  }

  async setup(): Promise<void> {
    if (process.getuid?.() !== 0) {
      throw new Error("these tests need root (network namespaces, iptables, SO_MARK)");
    }
    this.certificates = new TestCertificates(await createTestPki());
    const node = this.ns("n");
    await sh("ip", ["netns", "add", node]);
    this.#namespaces.push(node);
    await sh("ip", ["-n", node, "link", "set", "lo", "up"]);
    await sh("ip", ["netns", "exec", node, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    for (const p of PODS) {
      const name = this.ns(p.key);
      await sh("ip", ["netns", "add", name]);
      this.#namespaces.push(name);
      await sh("ip", ["-n", name, "link", "set", "lo", "up"]);
      const host = `v${p.key}`;
      await sh("ip", [
        "-n",
        node,
        "link",
        "add",
        host,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        name,
      ]);
      await sh("ip", ["-n", node, "addr", "add", `${p.gateway}/24`, "dev", host]);
      await sh("ip", ["-n", node, "link", "set", host, "up"]);
      await sh("ip", ["-n", name, "addr", "add", `${p.ip}/24`, "dev", "eth0"]);
      await sh("ip", ["-n", name, "link", "set", "eth0", "up"]);
      await sh("ip", ["-n", name, "route", "add", "default", "via", p.gateway]);
      this.#netns.set(p.key, openNetns(`/run/netns/${name}`));
      if (p.enrolled) {
        await applyPodRules(`/run/netns/${name}`, buildPodRules(defaultPodSettings));
      }
    }
    const cfg = parseLocalConfig(STATE_YAML);
    if (!cfg.ok) throw new Error(`bad fixture: ${cfg.reason.join("; ")}`);
    applyLocalConfig(this.state, cfg.value);

    for (const key of ["b", "c"] as const) {
      await this.httpApp(key, 8080, `server-${key}`);
      await this.httpApp(key, 9090, `server-${key}:9090`);
      await this.echoApp(key, 7000);
    }
    await this.httpApp("e", 8080, "external");
    await this.proxyProtocolApp("w", 15088);
    await this.startGateway();
    for (const key of ["a", "b", "c", "w"] as const) await this.startProxy(key);
  }

  workloadInfo(key: Enrolled) {
    if (key === "w") return { name: "waypoint-w", namespace: "zp", serviceAccount: "waypoint" };
    const sa = key === "a" ? "client" : `server-${key}`;
    const name = key === "a" ? "client-a" : `server-${key}`;
    return { name, namespace: "zp", serviceAccount: sa };
  }

  async startProxy(key: Enrolled): Promise<WorkloadProxy> {
    const proxy = await startInpodProxy(
      this.inputs(),
      { uid: `uid-${key}`, workloadInfo: this.workloadInfo(key), netnsFd: this.netnsFd(key) },
      { dnsUpstreams: [], rng: seededRng(key.charCodeAt(0)) },
    );
    this.proxies.set(key, proxy);
    return proxy;
  }

  proxy(key: Enrolled): WorkloadProxy {
    const p = this.proxies.get(key);
    if (p === undefined) throw new Error(`no proxy for ${key}`);
    return p;
  }

  /** A listening TCP socket inside pod `key` (no mark: it is the app's). */
  #listenFd(key: string, port: number, address = "0.0.0.0"): number {
    return createNetnsSocket({
      netns: this.netnsFd(key),
      protocol: "tcp",
      family: 4,
      reuseAddr: true,
      bind: { address, port },
      listen: { backlog: 511 },
    }).fd;
  }

  #recordApp(pod: string, port: number, socket: Socket): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.once("close", () => {
      this.appConnections.push({
        pod,
        port,
        peer,
        bytesRead: socket.bytesRead,
        bytesWritten: socket.bytesWritten,
      });
    });
  }

  /**
   * HTTP app: `GET /` answers `<label> peer=<ip:port>`; `GET /big?bytes=N[&rate=B]` streams N bytes
   * of BLOCK content (at about B bytes per second when given).
   */
  async httpApp(key: string, port: number, label: string): Promise<void> {
    const server = createHttpServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname === "/big") {
        const total = Number(url.searchParams.get("bytes") ?? "0");
        const rate = Number(url.searchParams.get("rate") ?? "0");
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": total });
        let left = total;
        const chunk = rate > 0 ? Math.max(1024, Math.floor(rate / 20)) : BLOCK.length;
        const pump = (): void => {
          while (left > 0) {
            const offset = (total - left) % BLOCK.length;
            const n = Math.min(left, chunk, BLOCK.length - offset);
            left -= n;
            const more = res.write(BLOCK.subarray(offset, offset + n));
            if (rate > 0 && left > 0) {
              setTimeout(pump, 50);
              return;
            }
            if (!more && left > 0) {
              res.once("drain", pump);
              return;
            }
          }
          res.end();
        };
        pump();
        return;
      }
      res.end(`${label} peer=${req.socket.remoteAddress}:${req.socket.remotePort}\n`);
    });
    server.on("connection", (s: Socket) => this.#recordApp(key, port, s));
    await new Promise<void>((resolve) => server.listen({ fd: this.#listenFd(key, port) }, resolve));
    this.#servers.push(server);
  }

  /** Echo app: writes back whatever it reads. */
  async echoApp(key: string, port: number): Promise<void> {
    const server = new Server({ allowHalfOpen: true }, (s) => {
      this.#recordApp(key, port, s);
      s.on("error", () => {});
      s.pipe(s);
    });
    await new Promise<void>((resolve) => server.listen({ fd: this.#listenFd(key, port) }, resolve));
    this.#servers.push(server);
  }

  /**
   * The application behind a PROXY application tunnel: reads the PROXY v2 header, answers with
   * what it says as JSON, then echoes the rest.
   */
  async proxyProtocolApp(key: string, port: number): Promise<void> {
    const server = new Server({ allowHalfOpen: true }, (s) => {
      s.on("error", () => {});
      let buf = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length < 16) return;
        const len = 16 + buf.readUInt16BE(14);
        if (buf.length < len) return;
        s.off("data", onData);
        s.write(JSON.stringify(parseProxyV2(buf.subarray(0, len))) + "\n");
        s.end();
      };
      s.on("data", onData);
    });
    await new Promise<void>((resolve) => server.listen({ fd: this.#listenFd(key, port) }, resolve));
    this.#servers.push(server);
  }

  /**
   * The east-west gateway in G: an HBONE server (gateway identity) that forwards each CONNECT's
   * bytes, opaque, to a second HBONE server standing for the remote network's ztunnel (identity
   * of the remote workload), which delivers to E's app.
   */
  async startGateway(): Promise<void> {
    const g = this.netnsFd("g");
    const cert = async (id: string) => {
      const parsed = parseIdentity(id);
      if (!parsed.ok) throw new Error(parsed.reason);
      return this.certificates.certificate(parsed.value);
    };
    const dialG = (ip: string, port: number): Socket => {
      const { fd } = createNetnsSocket({ netns: g, protocol: "tcp", family: 4 });
      return new Socket({ fd }).connect(port, ip);
    };
    const connected = (s: Socket): Promise<Socket> =>
      new Promise((resolve, reject) => {
        s.once("connect", () => resolve(s));
        s.once("error", reject);
      });
    const remote = new HboneServer({
      certificate: await cert(ID.remote),
      hook: async (req) => {
        this.gatewaySeen.push({
          hop: "remote",
          authority: req.rawAuthority,
          peerIdentity: formatIdentity(req.peerIdentity),
          forwardedNetwork: req.forwardedNetwork,
        });
        return { kind: "accept", upstream: await connected(dialG(IP.e, 8080)) };
      },
    });
    const gateway = new HboneServer({
      certificate: await cert(ID.gateway),
      hook: async (req) => {
        this.gatewaySeen.push({
          hop: "gateway",
          authority: req.rawAuthority,
          peerIdentity: formatIdentity(req.peerIdentity),
          forwardedNetwork: req.forwardedNetwork,
        });
        return { kind: "accept", upstream: await connected(dialG("127.0.0.1", 25008)) };
      },
    });
    await remote.listen({ fd: this.#listenFd("g", 25008, "127.0.0.1") });
    await gateway.listen({ fd: this.#listenFd("g", 15008) });
    this.#hboneServers.push(remote, gateway);
  }

  /** A TCP connection made by an app inside pod `key` (unmarked, so the pod's rules capture it). */
  connectFrom(key: string, ip: string, port: number): Socket {
    const { fd } = createNetnsSocket({ netns: this.netnsFd(key), protocol: "tcp", family: 4 });
    const s = new Socket({ fd, allowHalfOpen: true });
    this.#sockets.add(s);
    s.once("close", () => this.#sockets.delete(s));
    return s.connect(port, ip);
  }

  /** Runs curl inside pod `key`; resolves with exit code and output. */
  curl(key: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return this.exec(key, "curl", ["-sS", "--max-time", "20", ...args]);
  }

  exec(
    key: string,
    cmd: string,
    args: string[],
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn("ip", ["netns", "exec", this.ns(key), cmd, ...args], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
      child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
    });
  }

  /** Adds policies given as local-config YAML (`policies:` list items). */
  addPolicies(yamlItems: string): void {
    const cfg = parseLocalConfig(`policies:\n${yamlItems}`);
    if (!cfg.ok) throw new Error(`bad policy: ${cfg.reason.join("; ")}`);
    applyLocalConfig(this.state, cfg.value);
  }

  removePolicy(key: string): void {
    this.state.removeAuthorization(key);
    this.state.commit();
  }

  logs(): LogLine[] {
    return this.sink.lines.map((l) => JSON.parse(l) as LogLine);
  }

  /** Log lines written after `mark` (a previous `this.sink.lines.length`). */
  logsSince(mark: number): LogLine[] {
    return this.sink.lines.slice(mark).map((l) => JSON.parse(l) as LogLine);
  }

  /** Sum of a metric's series whose labels include `match`. */
  async metric(name: string, match: Record<string, string> = {}): Promise<number> {
    const m = this.registry.getSingleMetric(name);
    if (m === undefined) return 0;
    const got = await m.get();
    let sum = 0;
    for (const v of got.values) {
      const labels = v.labels as Record<string, string | number>;
      if (Object.entries(match).every(([k, want]) => String(labels[k]) === want)) sum += v.value;
    }
    return sum;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await Promise.all([...this.proxies.values()].map((p) => p.stop("immediate")));
    await Promise.all(this.#hboneServers.map((h) => h.close()));
    for (const s of this.#servers) {
      if ("closeAllConnections" in s) s.closeAllConnections();
      s.close();
    }
    for (const fd of this.#netns.values()) closeFd(fd);
    for (const ns of this.#namespaces.reverse()) {
      await sh("ip", ["netns", "del", ns]).catch(() => "");
    }
  }
}

/** Reads a PROXY v2 header (TCP over IPv4 only, as these tests send). */
export function parseProxyV2(h: Buffer): ProxyHeaderSeen & { command: number; family: number } {
  const ip = (o: number) => `${h[o]}.${h[o + 1]}.${h[o + 2]}.${h[o + 3]}`;
  let identity: string | undefined;
  for (let o = 28; o + 3 <= h.length;) {
    const type = h[o]!;
    const len = h.readUInt16BE(o + 1);
    if (type === 0xd0) identity = h.subarray(o + 3, o + 3 + len).toString();
    o += 3 + len;
  }
  return {
    command: h[12]!,
    family: h[13]!,
    src: `${ip(16)}:${h.readUInt16BE(24)}`,
    dst: `${ip(20)}:${h.readUInt16BE(26)}`,
    identity,
  };
}

/** Open fds of this process. */
export function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
