/**
 * The composition root: builds the control plane from its config and one bundle of inputs —
 * config store → AmbientIndex → XdsServer, the CA service beside it on the same gRPC port, the
 * HTTP port for metrics and debug — and tears it down cleanly. No globals: two control planes
 * can run in one process (tests do).
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile, rename } from "node:fs/promises";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { ServerCredentials, type Metadata, type Server } from "@grpc/grpc-js";
import { KubeConfig } from "@kubernetes/client-node";
import {
  FileConfigStore,
  KubeConfigStore,
  type ConfigBatch,
  type ConfigStore,
} from "../lib/config/index.ts";
import { AmbientError, fail, type Result } from "../lib/errors.ts";
import { createGrpcServer } from "../lib/grpc/index.ts";
import {
  CA_FILES,
  CertificateAuthority,
  generateKey,
  type CertificateAuthorityOptions,
} from "../lib/identity/index.ts";
import { LogOutput, parseLevelSpec, type Logger } from "../lib/log/index.ts";
import { XdsServer } from "../lib/xds/index.ts";
import { AmbientIndex } from "./ambient/index.ts";
import { describeCaller, type Authenticator, type Caller } from "./auth/caller.ts";
import { LocalTokenAuthority, NODE_TOKEN_TTL_SECONDS } from "./auth/local-tokens.ts";
import { TokenReviewAuthenticator } from "./auth/token-review.ts";
import { addCaService } from "./ca/ca-service.ts";
import { NodePods } from "./ca/node-pods.ts";
import type { ControlPlaneConfig } from "./config.ts";
import { DebugServer } from "./http/debug-server.ts";
import { ControlPlaneMetrics } from "./http/metrics.ts";
import { WaypointStatusWriter, type WaypointDeployer } from "./status/waypoint-status.ts";
import {
  AmbientPublisher,
  registerAmbientTypes,
  type AddressMeta,
  type AmbientXdsServer,
} from "./xds/ambient-xds.ts";

/** Inputs that are not configuration: what tests and the local runtime plug in. */
export interface ControlPlaneInputs {
  /** Use this store instead of building one from `config.source` (tests, embedding). */
  readonly store?: ConfigStore;
  /** The Kubernetes client config (else from `config.source`). */
  readonly kubeConfig?: KubeConfig;
  readonly logOutput?: LogOutput;
  /** Whatever deploys waypoints; without it Gateway status is never written. */
  readonly waypointDeployer?: WaypointDeployer;
}

/** Large enough for a ztunnel reconnecting with every resource in `initial_resource_versions`. */
const MAX_RECEIVE_BYTES = 256 * 1024 * 1024;
/** The serving certificate outlives any one run; it is re-issued at every start. */
const SERVING_CERT_TTL_SECONDS = 365 * 24 * 3600;

function packageVersion(): string {
  try {
    const pkg = JSON.parse(
      readFileSync(join(import.meta.dirname, "..", "..", "package.json"), "utf8"),
    ) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

async function writeAtomic(path: string, text: string, mode = 0o644): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode });
  await rename(tmp, path);
}

function kubeConfigFor(config: ControlPlaneConfig): KubeConfig {
  const kc = new KubeConfig();
  if (config.source.type !== "kubernetes") return kc;
  if (config.source.kubeconfig === undefined) kc.loadFromCluster();
  else kc.loadFromFile(config.source.kubeconfig);
  return kc;
}

/** The IPs a listen address is reachable on: itself, or every local address for a wildcard. */
function listenIps(host: string): string[] {
  if (host !== "0.0.0.0" && host !== "::") return host === "localhost" ? ["127.0.0.1"] : [host];
  const out = new Set<string>(["127.0.0.1"]);
  if (host === "::") out.add("::1");
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family === "IPv4" || host === "::") out.add(a.address.split("%")[0]!);
    }
  }
  return [...out];
}

export class ControlPlane {
  readonly config: ControlPlaneConfig;
  readonly store: ConfigStore;
  readonly index: AmbientIndex;
  readonly xds: AmbientXdsServer;
  readonly ca: CertificateAuthority;
  readonly metrics: ControlPlaneMetrics;
  /** Set in local authentication mode: issues and verifies node tokens. */
  readonly tokens: LocalTokenAuthority | undefined;
  readonly #log: Logger;
  readonly #grpc: Server;
  readonly #http: DebugServer;
  readonly #nodePods = new NodePods();
  readonly #publisher: AmbientPublisher;
  readonly #status: WaypointStatusWriter | undefined;
  readonly #tokenNodes = new Set<string>();
  /** Token writes started by config events; the first ones finish before xDS serves. */
  readonly #tokenWrites = new Set<Promise<unknown>>();
  #unsubscribe: (() => void) | undefined;
  #refreshTimer: NodeJS.Timeout | undefined;
  #grpcPort = 0;
  #httpPort = 0;
  #serving = false;
  #stopped = false;

  private constructor(parts: {
    config: ControlPlaneConfig;
    store: ConfigStore;
    ca: CertificateAuthority;
    tokens: LocalTokenAuthority | undefined;
    authenticator: Authenticator;
    logOutput: LogOutput;
    deployer: WaypointDeployer | undefined;
  }) {
    const { config, store, ca, logOutput } = parts;
    this.config = config;
    this.store = store;
    this.ca = ca;
    this.tokens = parts.tokens;
    this.#log = logOutput.logger("control-plane");
    this.index = new AmbientIndex({
      clusterId: config.clusterId,
      domainSuffix: config.domainSuffix,
      network: config.network,
      rootNamespace: config.rootNamespace,
      systemNamespace: config.systemNamespace,
      trustDomain: config.trustDomain,
      defaultAllowFromWaypoint: config.autoAllowWaypointPolicy,
      enableServiceEntrySelectPods: config.enableServiceEntrySelectPods,
      enableK8sServiceSelectWorkloadEntries: config.enableK8sSelectWorkloadEntries,
    });
    this.metrics = new ControlPlaneMetrics({
      version: packageVersion(),
      configErrors: () => this.store.errors().length,
      conversionWarnings: () => this.index.reports().length,
    });
    const authLog = logOutput.logger("auth");
    const authenticator = parts.authenticator;
    const clusterId = config.clusterId;
    this.xds = new XdsServer<Caller, AddressMeta | undefined>({
      authenticate: async ({ metadata, peer }) => {
        const r = await checkedAuthenticate(authenticator, clusterId, metadata, peer);
        if (!r.ok) authLog.warn("xDS stream refused", { peer, reason: r.reason });
        return r;
      },
      authorizeProxy: (proxy, caller) => {
        // A node's token speaks for that node only: it cannot pose as another node's proxy.
        if (caller.node !== undefined && proxy.nodeName !== "" && proxy.nodeName !== caller.node) {
          const reason = `${describeCaller(caller)} may not connect as a proxy of node ${proxy.nodeName}`;
          authLog.warn("xDS stream refused", { proxy: proxy.id, reason });
          return fail(reason);
        }
        return { ok: true, value: undefined };
      },
      debounceMs: config.debounceMs,
      maxDelayMs: config.debounceMaxMs,
      observer: this.metrics.xdsObserver(),
      logger: logOutput.logger("xds"),
    });
    this.#publisher = new AmbientPublisher(
      this.xds,
      registerAmbientTypes(this.xds, (name) => this.index.lookupAddresses(name)[0]?.bytes),
    );
    this.#grpc = createGrpcServer({
      "grpc.max_receive_message_length": MAX_RECEIVE_BYTES,
      "grpc.max_send_message_length": -1,
    });
    this.xds.attach(this.#grpc);
    addCaService(this.#grpc, {
      ca,
      authenticator: {
        authenticate: (metadata, peer) =>
          checkedAuthenticate(authenticator, clusterId, metadata, peer),
      },
      trustDomain: config.trustDomain,
      trustedNodeAccounts: config.trustedNodeAccounts,
      hasAccountOnNode: (node, ns, sa) => this.#nodePods.hasAccountOnNode(node, ns, sa),
      logger: logOutput.logger("ca"),
      observer: this.metrics.caObserver(),
    });
    this.#status =
      parts.deployer === undefined
        ? undefined
        : new WaypointStatusWriter(store, parts.deployer, logOutput.logger("status"));
    this.#http = new DebugServer(
      {
        ready: () =>
          this.#serving
            ? { ready: true, reason: "" }
            : { ready: false, reason: "configuration not loaded yet" },
        configErrors: () => this.store.errors(),
        reports: () => this.index.reports(),
        connections: (versions) => this.xds.connections({ versions }),
        connection: (id) => this.xds.connection(id, { versions: true }),
        enforcement: () => this.index.enforcement(),
        addresses: () => this.index.addresses(),
        authorizations: () => this.index.authorizations(),
        xdsStats: () => this.xds.stats(),
        metrics: async () => ({
          contentType: this.metrics.registry.contentType,
          body: await this.metrics.registry.metrics(),
        }),
      },
      logOutput.logger("http"),
    );
  }

  /** Builds everything and starts serving; resolves once xDS is listening with the config loaded. */
  static async start(
    config: ControlPlaneConfig,
    inputs: ControlPlaneInputs = {},
  ): Promise<ControlPlane> {
    const logOutput =
      inputs.logOutput ??
      new LogOutput({
        format: config.logFormat,
        ...(() => {
          const s = parseLevelSpec(config.logLevel);
          return s.ok ? { spec: s.value } : {};
        })(),
      });
    const log = logOutput.logger("control-plane");
    const kube =
      inputs.kubeConfig ??
      (config.source.type === "kubernetes" ? kubeConfigFor(config) : undefined);
    const store =
      inputs.store ??
      (config.source.type === "files"
        ? new FileConfigStore({ dir: config.source.dir, log: logOutput.logger("config") })
        : new KubeConfigStore({ kubeConfig: kube!, log: logOutput.logger("config") }));

    const caOptions: CertificateAuthorityOptions = {
      trustDomain: config.trustDomain,
      defaultTtlSeconds: config.defaultCertTtlSeconds,
      maxTtlSeconds: config.maxCertTtlSeconds,
    };
    const ca = await loadCa(config, caOptions);
    log.info("CA ready", {
      kind: ca.kind,
      root: config.rootCaDir ?? join(config.stateDir, "ca"),
      trustDomain: config.trustDomain,
    });

    let tokens: LocalTokenAuthority | undefined;
    let authenticator: Authenticator;
    const cp: { current?: ControlPlane } = {};
    if (config.authentication === "local") {
      tokens = await LocalTokenAuthority.loadOrCreate(config.stateDir, {
        audiences: config.tokenAudiences,
      });
      authenticator = tokens;
    } else {
      if (kube === undefined) {
        throw new AmbientError(
          "CP_AUTH",
          "Kubernetes authentication needs a kubeconfig (--kubeconfig or --in-cluster)",
        );
      }
      authenticator = new TokenReviewAuthenticator({
        kubeConfig: kube,
        audiences: config.tokenAudiences,
        pods: (ns, name) =>
          cp.current === undefined ? undefined : cp.current.#nodePods.pod(ns, name),
      });
    }
    const plane = new ControlPlane({
      config,
      store,
      ca,
      tokens,
      authenticator,
      logOutput,
      deployer: inputs.waypointDeployer,
    });
    cp.current = plane;
    try {
      await plane.#start();
    } catch (err) {
      await plane.stop();
      throw err;
    }
    return plane;
  }

  get grpcPort(): number {
    return this.#grpcPort;
  }

  get httpPort(): number {
    return this.#httpPort;
  }

  /** PEM roots proxies must trust (ztunnel's `XDS_ROOT_CA`/`CA_ROOT_CA`); also in `<state-dir>/root-cert.pem`. */
  get rootCertPem(): string {
    return this.ca.roots().join("");
  }

  get rootCertPath(): string {
    return join(this.config.stateDir, "root-cert.pem");
  }

  /** Path of a node's token file (local authentication). */
  nodeTokenPath(node: string): string {
    return join(this.config.credentialsDir, `${node}.token`);
  }

  /** Issues (and writes) a token for a node now, e.g. for a node the runtime just created. */
  async addNode(node: string): Promise<string> {
    if (this.tokens === undefined) {
      throw new AmbientError(
        "CP_AUTH",
        "node tokens exist only with local authentication; Kubernetes nodes use projected service account tokens",
      );
    }
    this.#tokenNodes.add(node);
    return this.tokens.writeNodeToken(
      this.config.credentialsDir,
      node,
      this.config.systemNamespace,
    );
  }

  /** A waypoint's deployment became ready or went away: re-write its Gateway status. */
  waypointChanged(namespace: string, name: string): void {
    this.#status?.waypointChanged(namespace, name);
  }

  async #start(): Promise<void> {
    const config = this.config;
    await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
    await writeAtomic(this.rootCertPath, this.rootCertPem);
    this.#httpPort = await this.#http.listen(config.httpAddress.host, config.httpAddress.port);
    this.#log.info("HTTP listening", {
      address: `${config.httpAddress.host}:${this.#httpPort}`,
      endpoints: "/metrics /ready /debug",
    });
    for (const n of config.extraNodes) await this.addNode(n);

    this.#unsubscribe = this.store.subscribe((batch) => this.#onBatch(batch));
    const started = Date.now();
    await this.store.start();
    await this.store.synced;
    const addresses = this.index.addresses().length;
    this.#log.info("configuration loaded", {
      source: this.store.source,
      ms: Date.now() - started,
      addresses,
      authorizations: this.index.authorizations().length,
      problems: this.store.errors().length,
    });

    // Nodes in the initial configuration have their token files before any proxy can connect.
    await Promise.all([...this.#tokenWrites]);
    const creds = await this.#servingCredentials();
    this.#grpcPort = await new Promise<number>((resolve, reject) => {
      const { host, port } = config.grpcAddress;
      const target = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
      this.#grpc.bindAsync(target, creds, (err, bound) =>
        err !== null
          ? reject(
              new AmbientError(
                "CP_LISTEN",
                `cannot listen for xDS on ${target}: ${err.message}; is another control plane running?`,
                { cause: err },
              ),
            )
          : resolve(bound),
      );
    });
    this.#serving = true;
    this.#log.info("xDS and CA listening", {
      address: `${config.grpcAddress.host}:${this.#grpcPort}`,
      authentication: config.authentication,
    });
    if (this.tokens !== undefined) {
      this.#refreshTimer = setInterval(
        () => void this.#refreshTokens(),
        (NODE_TOKEN_TTL_SECONDS * 1000) / 2,
      );
      this.#refreshTimer.unref();
    }
  }

  #onBatch(batch: ConfigBatch): void {
    for (const e of batch.events) this.metrics.configEvents.inc({ kind: e.kind });
    this.#nodePods.apply(batch);
    const delta = this.index.applyBatch(batch);
    this.#publisher.publish(delta);
    this.#status?.onBatch(batch);
    if (this.tokens !== undefined) {
      for (const e of batch.events) {
        if (e.kind !== "Node" || e.type !== "added") continue;
        const name = e.new.metadata.name;
        if (this.#tokenNodes.has(name)) continue;
        const write = this.addNode(name).then(
          (path) => this.#log.info("node token written", { node: name, path }),
          (err: unknown) =>
            this.#log.error("cannot write node token", {
              node: name,
              error: err instanceof Error ? err.message : String(err),
            }),
        );
        this.#tokenWrites.add(write);
        void write.finally(() => this.#tokenWrites.delete(write));
      }
    }
  }

  async #refreshTokens(): Promise<void> {
    for (const node of this.#tokenNodes) {
      try {
        await this.addNode(node);
      } catch (err) {
        this.#log.error("cannot refresh node token", {
          node,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }

  async #servingCredentials(): Promise<ServerCredentials> {
    const ns = this.config.systemNamespace;
    const { privateKeyPem, publicKeyPem } = await generateKey("ecdsa-p256");
    const chain = await this.ca.issue({
      publicKeyPem,
      dnsNames: [`istiod.${ns}.svc`, `istiod.${ns}.svc.${this.config.domainSuffix}`, "localhost"],
      ipAddresses: listenIps(this.config.grpcAddress.host),
      notAfter: new Date(Date.now() + SERVING_CERT_TTL_SECONDS * 1000),
    });
    return ServerCredentials.createSsl(
      null,
      [{ private_key: Buffer.from(privateKeyPem), cert_chain: Buffer.from(chain.join("")) }],
      false,
    );
  }

  /** Stops serving: xDS streams end with OK (proxies keep their config and reconnect), ports close. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#serving = false;
    clearInterval(this.#refreshTimer);
    this.#unsubscribe?.();
    this.xds.close();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.#grpc.forceShutdown();
        resolve();
      }, 2000);
      this.#grpc.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
    await this.#http.close();
    await this.store.close();
    this.#log.info("stopped");
  }
}

/** Authentication plus the `clusterid` header check (a proxy of another cluster is refused). */
async function checkedAuthenticate(
  authenticator: Authenticator,
  clusterId: string,
  metadata: Metadata,
  peer: string,
): Promise<Result<Caller>> {
  const header = metadata.get("clusterid")[0];
  if (header !== undefined && String(header) !== "" && String(header) !== clusterId) {
    return fail(
      `clusterid "${String(header)}" is not this control plane's cluster "${clusterId}" (check CLUSTER_ID on both sides)`,
    );
  }
  return authenticator.authenticate(metadata, peer);
}

async function loadCa(
  config: ControlPlaneConfig,
  options: CertificateAuthorityOptions,
): Promise<CertificateAuthority> {
  if (config.rootCaDir !== undefined) {
    if (existsSync(join(config.rootCaDir, CA_FILES.caCert)))
      return CertificateAuthority.fromPluginFiles(config.rootCaDir, options);
  }
  return CertificateAuthority.loadOrCreate(join(config.stateDir, "ca"), options);
}
