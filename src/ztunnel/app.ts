/**
 * ztunnel's composition root (istio/ztunnel `src/app.rs`): builds the one `ProxyInputs` bundle
 * (configuration, state, certificates, metrics registry, loggers) and starts, in order:
 *
 * 1. the readiness server (so probes get a clear 503 from the first moment),
 * 2. the certificate manager (CA client, or the local CA with `FAKE_CA`), following the state,
 * 3. xDS (or the static local config) filling the ProxyState,
 * 4. the admin and metrics servers,
 * 5. once xDS has synced: the proxies — in shared mode the in-pod WorkloadManager (ZDS) whose
 *    proxies come from the data path's `startInpodProxy`; in dedicated mode the one proxy from
 *    `startDedicatedProxy`.
 *
 * Shutdown (SIGTERM, `/quitquitquit`): readiness turns false, the node agent connection closes,
 * every proxy is stopped gracefully within the termination deadline, then xDS, the CA client,
 * the certificate holders and the servers close. Nothing is left running, so the process exits.
 */
import type { Registry } from "prom-client";
import { AmbientError } from "../lib/errors.ts";
import type { FetchCertificate } from "../lib/identity/index.ts";
import { LogOutput, type Logger, type Sink } from "../lib/log/index.ts";
import { systemTimers, type Timers } from "../lib/timers.ts";
import {
  ADDRESS_TYPE_URL,
  type BackoffOptions,
  type XdsClient,
  type XdsTlsOptions,
} from "../lib/xds/index.ts";
import type { PacketConn, WorkloadInfo } from "../lib/zds/index.ts";
import { adminHandler, buildConfigDump, startHttpServer } from "./admin/index.ts";
import type { RunningHttpServer } from "./admin/index.ts";
import { createZtunnelRegistry, metricsHandler } from "./admin/metrics.ts";
import type { ZtunnelConfig } from "./config.ts";
import { readRootCert, tokenReader } from "./credentials.ts";
import { formatListenAddress, type ListenAddress } from "./env-values.ts";
import {
  CertificateManager,
  createCaClient,
  createLocalCa,
  type CaClient,
} from "./identity/index.ts";
import {
  InpodStateManager,
  WorkloadManager,
  createInpodMetrics,
  type ProxyHandle,
  type StartProxyRequest,
} from "./inpod/index.ts";
import type { ProxyInputs } from "./proxy/inputs.ts";
import { Readiness, readinessResponse } from "./readiness.ts";
import { ProxyState, applyLocalConfig } from "./state/index.ts";
import { VERSION, buildInfo } from "./version.ts";
import { createZtunnelXdsClient, loadLocalXds } from "./xds/index.ts";

export interface DedicatedProxyOptions {
  /** `PROXY_WORKLOAD_INFO`: the one workload this proxy serves. */
  readonly workloadInfo: WorkloadInfo;
}

/** Where proxies come from: the data path (`src/ztunnel/proxy`), or a test's stand-in. */
export interface ProxyFactory {
  readonly startInpodProxy?: (
    inputs: ProxyInputs,
    request: StartProxyRequest,
  ) => Promise<ProxyHandle>;
  readonly startDedicatedProxy?: (
    inputs: ProxyInputs,
    options: DedicatedProxyOptions,
  ) => Promise<ProxyHandle>;
}

export interface ZtunnelAppOptions {
  readonly config: ZtunnelConfig;
  readonly proxies?: ProxyFactory;
  /** Where log lines go; default stderr. */
  readonly logSink?: Sink;
  readonly timers?: Timers;
  /** Opens the ZDS connection (tests); default the SEQPACKET socket at `INPOD_UDS`. */
  readonly zdsConnect?: () => PacketConn;
  /** xDS reconnect backoff (tests). */
  readonly xdsBackoff?: BackoffOptions;
}

export interface ZtunnelAddresses {
  readonly admin: ListenAddress;
  readonly metrics: ListenAddress;
  readonly readiness: ListenAddress;
}

/** How long a dedicated proxy that failed to start waits before the next attempt. */
const DEDICATED_RETRY_MS = 5000;
/** Slack after the termination deadline for proxies to finish stopping. */
const STOP_GRACE_MS = 1000;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class ZtunnelApp {
  readonly config: ZtunnelConfig;
  readonly inputs: ProxyInputs;
  readonly state: ProxyState;
  readonly certificates: CertificateManager;
  readonly registry: Registry;
  readonly readiness: Readiness;
  readonly logOutput: LogOutput;
  readonly log: Logger;
  /** Resolves when shutdown has finished. */
  readonly closed: Promise<void>;

  readonly #options: ZtunnelAppOptions;
  readonly #timers: Timers;
  readonly #servers: RunningHttpServer[] = [];
  readonly #cleanups: (() => void)[] = [];
  #addresses: ZtunnelAddresses | undefined;
  #xds: XdsClient | undefined;
  #caClient: CaClient | undefined;
  #staticConfig: unknown;
  #inpodState: InpodStateManager | undefined;
  #workloadManager: WorkloadManager | undefined;
  #dedicated: ProxyHandle | undefined;
  #dedicatedStarting: Promise<void> | undefined;
  #retryTimer: unknown;
  #shutdown: Promise<void> | undefined;
  #resolveClosed!: () => void;

  private constructor(
    options: ZtunnelAppOptions,
    parts: {
      logOutput: LogOutput;
      registry: Registry;
      state: ProxyState;
      certificates: CertificateManager;
      inputs: ProxyInputs;
      readiness: Readiness;
    },
  ) {
    this.#options = options;
    this.config = options.config;
    this.#timers = options.timers ?? systemTimers;
    this.logOutput = parts.logOutput;
    this.log = parts.logOutput.logger("ztunnel");
    this.registry = parts.registry;
    this.state = parts.state;
    this.certificates = parts.certificates;
    this.inputs = parts.inputs;
    this.readiness = parts.readiness;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  /** Builds everything and starts it; on failure stops what had started and rethrows. */
  static async start(options: ZtunnelAppOptions): Promise<ZtunnelApp> {
    const config = options.config;
    const logOutput = new LogOutput({
      spec: config.logSpec,
      format: config.logFormat,
      ...(options.logSink !== undefined ? { sink: options.logSink } : {}),
    });
    const registry = createZtunnelRegistry(VERSION);
    const state = new ProxyState({ localNode: config.nodeName });
    const timers = options.timers ?? systemTimers;

    // Certificates: the local CA (static mode) or the control plane's CA.
    let caClient: CaClient | undefined;
    let extraRoots: readonly string[] = [];
    let fetch: FetchCertificate;
    if (config.fakeCa) {
      const local = await createLocalCa({
        dir: config.localCaDir,
        trustDomain: config.trustDomain,
        ttlSeconds: config.secretTtlSeconds,
      });
      fetch = local.fetch;
      extraRoots = local.ca.roots();
    } else if (config.caAddress !== undefined) {
      const altHostname = config.altCaHostname;
      caClient = createCaClient({
        address: config.caAddress,
        tls: async (): Promise<XdsTlsOptions> => {
          const rootCertsPem = await readRootCert(config.caRootCert, "CA_ROOT_CA");
          return {
            ...(rootCertsPem !== undefined ? { rootCertsPem } : {}),
            ...(altHostname !== undefined ? { altHostname } : {}),
          };
        },
        token: tokenReader(config.auth),
        clusterId: config.clusterId,
        headers: config.caHeaders,
        ttlSeconds: config.secretTtlSeconds,
        impersonate: config.proxyMode === "shared",
        log: logOutput.logger("identity"),
      });
      fetch = caClient.fetch;
    } else {
      fetch = () =>
        Promise.reject(
          new AmbientError(
            "ZTUNNEL_NO_CA",
            "no CA is configured (CA_ADDRESS is empty and FAKE_CA is not set)",
          ),
        );
    }
    const certificates = new CertificateManager({
      fetch,
      timers,
      extraRoots,
      log: logOutput.logger("identity"),
    });

    const readinessInputs = new Readiness({
      certificateAvailable: (id) => certificates.isAvailable(id),
      localIdentities: () => state.localIdentities(),
    });

    const xds =
      config.localXds === undefined && config.xdsAddress !== undefined
        ? createZtunnelXdsClient({
            address: config.xdsAddress,
            config,
            state,
            registry,
            logOutput,
            ...(options.xdsBackoff !== undefined ? { backoff: options.xdsBackoff } : {}),
            ...(options.timers !== undefined ? { timers: options.timers } : {}),
          })
        : undefined;

    const inputs: ProxyInputs = {
      config: config.proxy,
      state,
      certificates,
      registry,
      accessLog: logOutput.logger("access"),
      log: logOutput.logger("proxy"),
      ...(xds !== undefined && config.xdsOnDemand
        ? { demand: { demand: (name: string) => xds.lookup(ADDRESS_TYPE_URL, name) } }
        : {}),
    };
    const app = new ZtunnelApp(options, {
      logOutput,
      registry,
      state,
      certificates,
      inputs,
      readiness: readinessInputs,
    });
    app.#caClient = caClient;
    app.#xds = xds;
    try {
      await app.#start();
    } catch (err) {
      await app.shutdown("start-up failed");
      throw err;
    }
    return app;
  }

  /** Where the servers listen (real ports). */
  get addresses(): ZtunnelAddresses {
    if (this.#addresses === undefined) {
      throw new AmbientError("ZTUNNEL_NOT_STARTED", "ztunnel has not started");
    }
    return this.#addresses;
  }

  /** The in-pod state manager (shared mode with INPOD_ENABLED). */
  get inpod(): InpodStateManager | undefined {
    return this.#inpodState;
  }

  /** The xDS client, when connected to a control plane. */
  get xds(): XdsClient | undefined {
    return this.#xds;
  }

  configDump(): Record<string, unknown> {
    return buildConfigDump({
      state: this.state,
      config: this.config,
      staticConfig: this.#staticConfig,
      version: buildInfo(),
      certificates: this.certificates.dump(),
      ...(this.#inpodState !== undefined
        ? { workloadState: this.#inpodState.workloadState() }
        : {}),
    });
  }

  async #start(): Promise<void> {
    const config = this.config;
    const log = this.log;
    log.info("starting ztunnel", {
      version: VERSION,
      mode: config.proxyMode,
      node: config.nodeName ?? "",
      xds: config.localXds !== undefined ? "local config" : (config.xdsAddress ?? "none"),
      ca: config.fakeCa ? "local CA" : (config.caAddress ?? "none"),
    });

    if (config.proxyMode === "shared" && config.inpodEnabled) {
      const inpodLog = this.logOutput.logger("inpod");
      const startInpodProxy = this.#options.proxies?.startInpodProxy;
      this.#inpodState = new InpodStateManager({
        startProxy: (request) =>
          startInpodProxy !== undefined
            ? startInpodProxy(this.inputs, request)
            : Promise.reject(
                new AmbientError(
                  "ZTUNNEL_NO_DATA_PATH",
                  "this ztunnel was built without the in-pod data path (no startInpodProxy)",
                ),
              ),
        metrics: createInpodMetrics(this.registry),
        log: inpodLog,
      });
    }
    if (config.proxyMode === "dedicated") this.readiness.requireProxy();

    const readinessCheck = this.#readinessSources();
    // 1. Readiness first.
    this.#servers.push(
      await startHttpServer(
        "readiness",
        config.readinessAddress,
        ({ method, path }) => {
          if (path !== "/healthz/ready") return { status: 404, body: "not found\n" };
          if (method !== "GET" && method !== "HEAD")
            return { status: 405, body: "method not allowed\n" };
          return readinessResponse(readinessCheck());
        },
        this.logOutput.logger("readiness"),
      ),
    );

    // 2. Certificates follow the state.
    this.#cleanups.push(this.certificates.track(this.state));

    // 3. xDS or the static config.
    if (config.localXds !== undefined) {
      const local = await loadLocalXds(config.localXds);
      applyLocalConfig(this.state, local.config);
      this.#staticConfig = local.document;
      log.info("loaded the local config", {
        addresses: local.config.addresses.length,
        policies: local.config.authorizations.length,
      });
      this.#xdsSynced();
    } else if (this.#xds !== undefined) {
      const client = this.#xds;
      void client.ready.then(() => this.#xdsSynced());
      client.start();
    } else {
      log.warn(
        "no xDS address and no local config: ztunnel knows no workloads (XDS_ADDRESS is empty)",
      );
      this.#xdsSynced();
    }

    // 4. Operator endpoints.
    this.#servers.push(
      await startHttpServer(
        "admin",
        config.adminAddress,
        adminHandler({
          configDump: () => this.configDump(),
          logOutput: this.logOutput,
          initialLogSpec: config.logSpec,
          quit: () => void this.shutdown("admin /quitquitquit"),
        }),
        this.logOutput.logger("admin"),
      ),
      await startHttpServer(
        "metrics",
        config.metricsAddress,
        metricsHandler(this.registry),
        this.logOutput.logger("metrics"),
      ),
    );
    const [readiness, admin, metrics] = this.#servers;
    this.#addresses = {
      readiness: readiness!.address,
      admin: admin!.address,
      metrics: metrics!.address,
    };
    log.info("ztunnel started", {
      admin: formatListenAddress(this.#addresses.admin),
      metrics: formatListenAddress(this.#addresses.metrics),
      readiness: formatListenAddress(this.#addresses.readiness),
    });
  }

  #readinessSources() {
    return () => {
      const inpodState = this.#inpodState;
      const manager = this.#workloadManager;
      return this.readiness.check(
        inpodState === undefined
          ? undefined
          : {
              connected: manager?.connected ?? false,
              snapshotReceived: inpodState.snapshotReceived,
              pendingUids: inpodState.pendingUids(),
            },
      );
    };
  }

  /** The first full view is in: readiness can count certificates, proxies may start. */
  #xdsSynced(): void {
    if (this.#shutdown !== undefined) return;
    this.readiness.markXdsSynced();
    this.log.info("xDS synced", {
      workloads: [...this.state.workloads()].length,
      local_identities: this.state.localIdentities().length,
    });
    if (this.#inpodState !== undefined) {
      this.#workloadManager = WorkloadManager.start({
        state: this.#inpodState,
        path: this.config.inpodUds,
        log: this.logOutput.logger("inpod"),
        ...(this.#options.zdsConnect !== undefined ? { connect: this.#options.zdsConnect } : {}),
        ...(this.#options.timers !== undefined ? { timers: this.#options.timers } : {}),
      });
    }
    if (this.config.proxyMode === "dedicated") this.#startDedicated();
  }

  #startDedicated(): void {
    this.#retryTimer = undefined;
    if (this.#shutdown !== undefined) return;
    const workloadInfo = this.config.proxyWorkloadInfo;
    const start = this.#options.proxies?.startDedicatedProxy;
    if (workloadInfo === undefined) return;
    if (start === undefined) {
      this.log.error(
        "this ztunnel was built without the dedicated data path (no startDedicatedProxy)",
      );
      return;
    }
    this.#dedicatedStarting = start(this.inputs, { workloadInfo }).then(
      (handle) => {
        this.#dedicatedStarting = undefined;
        if (this.#shutdown !== undefined) {
          void handle.stop("immediate");
          return;
        }
        this.#dedicated = handle;
        this.readiness.markProxyStarted();
        this.log.info("dedicated proxy started", { ...workloadInfo });
      },
      (err: unknown) => {
        this.#dedicatedStarting = undefined;
        this.log.error("the dedicated proxy failed to start; retrying", {
          error: message(err),
          retry_ms: DEDICATED_RETRY_MS,
        });
        if (this.#shutdown === undefined) {
          this.#retryTimer = this.#timers.setTimeout(
            () => this.#startDedicated(),
            DEDICATED_RETRY_MS,
          );
        }
      },
    );
  }

  /**
   * Drains and stops everything (idempotent). Readiness turns false at once; proxies get the
   * termination deadline to finish their connections.
   */
  shutdown(reason: string): Promise<void> {
    this.#shutdown ??= this.#doShutdown(reason).finally(() => this.#resolveClosed());
    return this.#shutdown;
  }

  async #doShutdown(reason: string): Promise<void> {
    const deadlineMs = this.config.proxy.terminationDeadlineMs;
    this.readiness.markDraining();
    this.log.info("shutting down: draining", { reason, deadline_ms: deadlineMs });
    if (this.#retryTimer !== undefined) this.#timers.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;

    // Stop taking pods and stop the proxies, bounded by the deadline.
    const stopping = (async () => {
      await this.#workloadManager?.close();
      await this.#inpodState?.drain();
      await this.#dedicatedStarting;
      await this.#dedicated?.stop("graceful");
    })().catch((err: unknown) =>
      this.log.warn("stopping the proxies failed", { error: message(err) }),
    );
    let timer: unknown;
    const timedOut = await Promise.race([
      stopping.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = this.#timers.setTimeout(() => resolve(true), deadlineMs + STOP_GRACE_MS);
      }),
    ]);
    this.#timers.clearTimeout(timer);
    if (timedOut) {
      this.log.warn("proxies did not stop within the termination deadline; exiting anyway", {
        deadline_ms: deadlineMs,
      });
    }

    this.#xds?.close();
    this.#caClient?.close();
    for (const c of this.#cleanups.splice(0)) c();
    this.certificates.stop();
    await Promise.all(this.#servers.map((s) => s.close()));
    this.log.info("ztunnel stopped", { reason });
  }
}
