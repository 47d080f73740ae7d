import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AmbientError } from "../lib/errors.ts";
import { formatIdentity } from "../lib/identity/index.ts";
import { loadConfig, parseConfig, type Env } from "./config.ts";
import { envFromFlags, formatFlagsHelp, ZTUNNEL_FLAGS } from "./flags.ts";

const noFiles = { fileExists: () => false, cpuCount: 8, hostname: "host-a" };

function load(env: Env) {
  return loadConfig(env, noFiles);
}

function problems(env: Env): string[] {
  const r = parseConfig(env, noFiles);
  assert.equal(r.ok, false, "expected the configuration to be refused");
  return r.ok ? [] : r.reason;
}

describe("loadConfig defaults", () => {
  const c = load({});

  it("uses Istio's defaults outside Kubernetes", () => {
    assert.equal(c.xdsAddress, "https://localhost:15012");
    assert.equal(c.caAddress, "https://localhost:15012");
    assert.deepEqual(c.xdsRootCert, { kind: "file", path: "/var/run/secrets/istio/root-cert.pem" });
    assert.deepEqual(c.caRootCert, { kind: "file", path: "/var/run/secrets/istio/root-cert.pem" });
    assert.deepEqual(c.auth, { kind: "none" });
    assert.equal(c.clusterId, "Kubernetes");
    assert.equal(c.clusterDomain, "cluster.local");
    assert.equal(c.trustDomain, "cluster.local");
    assert.equal(c.secretTtlSeconds, 86400);
    assert.equal(c.proxyMode, "shared");
    assert.equal(c.proxyWorkloadInfo, undefined);
    assert.equal(c.inpodEnabled, true);
    assert.equal(c.inpodUds, "/var/run/ztunnel/ztunnel.sock");
    assert.equal(c.nodeName, undefined);
    assert.equal(c.podName, "host-a");
    assert.equal(c.podNamespace, "istio-system");
    assert.equal(c.instanceIp, "");
    assert.equal(c.ztunnelWorkload, undefined);
    assert.equal(c.xdsOnDemand, false);
    assert.equal(c.localXds, undefined);
    assert.equal(c.fakeCa, false);
    assert.equal(c.workerThreads, 2);
    assert.equal(c.logLevel, "info");
    assert.equal(c.logFormat, "plain");
    assert.deepEqual(c.adminAddress, { host: "127.0.0.1", port: 15000 });
    assert.deepEqual(c.metricsAddress, { host: "0.0.0.0", port: 15020 });
    assert.deepEqual(c.readinessAddress, { host: "0.0.0.0", port: 15021 });
  });

  it("gives the data path ztunnel's defaults", () => {
    const { illegalPorts, ...rest } = c.proxy;
    assert.deepEqual([...illegalPorts].sort(), [15001, 15006, 15008]);
    assert.deepEqual(rest, {
      network: "",
      clusterId: "Kubernetes",
      nodeName: "",
      clusterDomain: "cluster.local",
      hbonePort: 15008,
      packetMark: 1337,
      inpodPortReuse: true,
      originalSource: "try",
      socks5: false,
      dnsProxy: true,
      dnsProxyAddress: { address: "localhost", port: 15053 },
      responseBaggage: true,
      sourceWaitMs: 5000,
      terminationDeadlineMs: 5000,
      poolMaxStreamsPerConnection: 100,
      poolUnusedReleaseTimeoutMs: 300_000,
      connectTimeoutMs: 10_000,
      tls12Enabled: false,
    });
  });

  it("is frozen all the way down", () => {
    assert.ok(Object.isFrozen(c));
    assert.ok(Object.isFrozen(c.proxy));
    assert.throws(() => (c.proxy.illegalPorts as Set<number>).add(1), TypeError);
    assert.throws(() => {
      (c as { podName: string }).podName = "x";
    }, TypeError);
  });

  it("points at istiod's service inside Kubernetes", () => {
    const k = load({ KUBERNETES_SERVICE_HOST: "10.96.0.1" });
    assert.equal(k.xdsAddress, "https://istiod.istio-system.svc:15012");
    assert.equal(k.caAddress, "https://istiod.istio-system.svc:15012");
  });

  it("uses the default token file when it exists", () => {
    const c2 = loadConfig(
      {},
      { ...noFiles, fileExists: (p) => p === "/var/run/secrets/tokens/istio-token" },
    );
    assert.deepEqual(c2.auth, { kind: "file", path: "/var/run/secrets/tokens/istio-token" });
  });
});

describe("loadConfig reads every variable", () => {
  const env: Env = {
    XDS_ADDRESS: "198.18.0.1:15012",
    CA_ADDRESS: "https://ca.example:15012",
    XDS_ROOT_CA: "/etc/xds-root.pem",
    CA_ROOT_CA: "SYSTEM",
    ALT_XDS_HOSTNAME: "istiod.istio-system.svc",
    ALT_CA_HOSTNAME: "ca.istio-system.svc",
    AUTH_TOKEN: "/run/token",
    CLUSTER_ID: "c1",
    CLUSTER_DOMAIN: "corp.local",
    TRUST_DOMAIN: "td.example",
    NETWORK: "net-1",
    NODE_NAME: "node-a",
    POD_NAME: "ztunnel-abc",
    POD_NAMESPACE: "kube-system",
    SERVICE_ACCOUNT: "ztunnel",
    INSTANCE_IP: "198.18.0.2",
    ISTIO_META_DNS_CAPTURE: "false",
    ISTIO_META_FOO: "bar",
    ISTIO_METAJSON_LABELS: '{"app":"ztunnel"}',
    XDS_HEADER_X_Tenant: "a",
    CA_HEADER_X_Tenant: "b",
    XDS_ON_DEMAND: "true",
    SECRET_TTL: "12h",
    PROXY_MODE: "dedicated",
    PROXY_WORKLOAD_INFO: "ns/pod-a/sa-a",
    LOCAL_CA_DIR: "/var/lib/ca",
    INPOD_UDS: "/tmp/zds.sock",
    INPOD_PORT_REUSE: "false",
    ENABLE_ORIG_SRC: "true",
    UNSTABLE_ENABLE_SOCKS5: "true",
    ENABLE_RESPONSE_BAGGAGE: "false",
    CONNECTION_TERMINATION_DEADLINE: "7s",
    POOL_MAX_STREAMS_PER_CONNECTION: "50",
    POOL_UNUSED_RELEASE_TIMEOUT: "1m30s",
    ZTUNNEL_WORKER_THREADS: "4",
    TLS12_ENABLED: "true",
    PACKET_MARK: "1338",
    RUST_LOG: "warn,xds=debug",
    LOG_FORMAT: "json",
    ADMIN_ADDRESS: "127.0.0.1:0",
    METRICS_ADDRESS: "[::1]:9090",
    READINESS_ADDRESS: ":0",
  };
  const c = load(env);

  it("control plane and identity", () => {
    assert.equal(c.xdsAddress, "https://198.18.0.1:15012");
    assert.equal(c.caAddress, "https://ca.example:15012");
    assert.deepEqual(c.xdsRootCert, { kind: "file", path: "/etc/xds-root.pem" });
    assert.deepEqual(c.caRootCert, { kind: "system" });
    assert.equal(c.altXdsHostname, "istiod.istio-system.svc");
    assert.equal(c.altCaHostname, "ca.istio-system.svc");
    assert.deepEqual(c.auth, { kind: "file", path: "/run/token" });
    assert.equal(c.clusterId, "c1");
    assert.equal(c.proxy.clusterId, "c1");
    assert.equal(c.clusterDomain, "corp.local");
    assert.deepEqual(c.xdsHeaders, { x_tenant: "a" });
    assert.deepEqual(c.caHeaders, { x_tenant: "b" });
    assert.equal(c.xdsOnDemand, true);
    assert.equal(c.secretTtlSeconds, 43200);
    assert.equal(c.localCaDir, "/var/lib/ca");
  });

  it("node, pod and metadata", () => {
    assert.equal(c.nodeName, "node-a");
    assert.equal(c.proxy.nodeName, "node-a");
    assert.equal(c.proxy.network, "net-1");
    assert.equal(c.podName, "ztunnel-abc");
    assert.equal(c.podNamespace, "kube-system");
    assert.equal(c.instanceIp, "198.18.0.2");
    assert.deepEqual(c.ztunnelWorkload, {
      name: "ztunnel-abc",
      namespace: "kube-system",
      serviceAccount: "ztunnel",
    });
    assert.equal(
      c.ztunnelIdentity && formatIdentity(c.ztunnelIdentity),
      "spiffe://td.example/ns/kube-system/sa/ztunnel",
    );
    assert.deepEqual(c.proxyMetadata, { DNS_CAPTURE: "false", FOO: "bar" });
    assert.deepEqual(c.jsonMetadata, { LABELS: { app: "ztunnel" } });
  });

  it("proxy mode", () => {
    assert.equal(c.proxyMode, "dedicated");
    assert.deepEqual(c.proxyWorkloadInfo, {
      namespace: "ns",
      name: "pod-a",
      serviceAccount: "sa-a",
    });
    assert.equal(c.inpodEnabled, false, "dedicated mode never runs the in-pod manager");
    assert.equal(c.inpodUds, "/tmp/zds.sock");
  });

  it("data path", () => {
    assert.equal(c.proxy.inpodPortReuse, false);
    assert.equal(c.proxy.originalSource, "require");
    assert.equal(c.proxy.socks5, true);
    assert.deepEqual([...c.proxy.illegalPorts].sort(), [15001, 15006, 15008, 15080]);
    assert.equal(c.proxy.dnsProxy, false);
    assert.equal(c.proxy.responseBaggage, false);
    assert.equal(c.proxy.terminationDeadlineMs, 7000);
    assert.equal(c.proxy.poolMaxStreamsPerConnection, 50);
    assert.equal(c.proxy.poolUnusedReleaseTimeoutMs, 90_000);
    assert.equal(c.proxy.tls12Enabled, true);
    assert.equal(c.proxy.packetMark, 1338);
    assert.equal(c.workerThreads, 4);
  });

  it("logging and listeners", () => {
    assert.equal(c.logLevel, "warn,xds=debug");
    assert.equal(c.logSpec.defaultLevel, "warn");
    assert.equal(c.logSpec.scopes.get("xds"), "debug");
    assert.equal(c.logFormat, "json");
    assert.deepEqual(c.adminAddress, { host: "127.0.0.1", port: 0 });
    assert.deepEqual(c.metricsAddress, { host: "::1", port: 9090 });
    assert.deepEqual(c.readinessAddress, { host: "0.0.0.0", port: 0 });
  });

  it("ISTIO_META_CLUSTER_ID wins over CLUSTER_ID", () => {
    assert.equal(load({ CLUSTER_ID: "a", ISTIO_META_CLUSTER_ID: "b" }).clusterId, "b");
  });

  it("CA_ADDRESS defaults to XDS_ADDRESS; FAKE_CA disables it", () => {
    assert.equal(load({ XDS_ADDRESS: "https://cp:15012" }).caAddress, "https://cp:15012");
    const fake = load({ FAKE_CA: "true", CA_ADDRESS: "https://ca:1" });
    assert.equal(fake.fakeCa, true);
    assert.equal(fake.caAddress, undefined);
  });

  it("an empty XDS_ADDRESS disables xDS; a local config replaces it", () => {
    assert.equal(load({ XDS_ADDRESS: "" }).xdsAddress, undefined);
    const local = load({ LOCAL_XDS_PATH: "/etc/local.yaml" });
    assert.deepEqual(local.localXds, { kind: "file", path: "/etc/local.yaml" });
    assert.equal(local.xdsAddress, undefined);
    assert.deepEqual(load({ LOCAL_XDS: "workloads: []" }).localXds, {
      kind: "inline",
      yaml: "workloads: []",
    });
  });

  it("root certificates may be inline PEM", () => {
    const pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert.deepEqual(load({ XDS_ROOT_CA: pem }).xdsRootCert, { kind: "pem", pem });
  });

  it("AUTH_TOKEN: a literal token, or empty for none", () => {
    assert.deepEqual(load({ AUTH_TOKEN: "eyJhbGciOi.x.y" }).auth, {
      kind: "static",
      token: "eyJhbGciOi.x.y",
    });
    assert.deepEqual(load({ AUTH_TOKEN: "" }).auth, { kind: "none" });
  });

  it("ENABLE_ORIG_SRC=false turns original source off", () => {
    assert.equal(load({ ENABLE_ORIG_SRC: "false" }).proxy.originalSource, "off");
  });

  it("DNS proxy address from ISTIO_META_DNS_PROXY_ADDR", () => {
    assert.deepEqual(load({ ISTIO_META_DNS_PROXY_ADDR: "0.0.0.0:5353" }).proxy.dnsProxyAddress, {
      address: "0.0.0.0",
      port: 5353,
    });
    assert.deepEqual(load({ ISTIO_META_DNS_PROXY_ADDR: "localhost:5354" }).proxy.dnsProxyAddress, {
      address: "localhost",
      port: 5354,
    });
  });

  it("worker threads as a percentage of the CPUs", () => {
    assert.equal(load({ ZTUNNEL_WORKER_THREADS: "50%" }).workerThreads, 4);
    assert.equal(load({ ZTUNNEL_WORKER_THREADS: "30%", ZTUNNEL_CPU_LIMIT: "16" }).workerThreads, 5);
    assert.equal(load({ ZTUNNEL_WORKER_THREADS: "10%", ZTUNNEL_CPU_LIMIT: "4" }).workerThreads, 1);
  });

  it("INPOD_ENABLED=false runs shared mode without a node agent", () => {
    assert.equal(load({ INPOD_ENABLED: "false" }).inpodEnabled, false);
  });
});

describe("termination deadline (INTEROP §1.6)", () => {
  const deadline = (env: Env) => load(env).proxy.terminationDeadlineMs;
  it("CONNECTION_TERMINATION_DEADLINE wins", () => {
    assert.equal(
      deadline({ CONNECTION_TERMINATION_DEADLINE: "3s", TERMINATION_GRACE_PERIOD_SECONDS: "30" }),
      3000,
    );
  });
  it("grace period minus 5 s when above 10 s", () => {
    assert.equal(deadline({ TERMINATION_GRACE_PERIOD_SECONDS: "30" }), 25_000);
    assert.equal(deadline({ TERMINATION_GRACE_PERIOD_SECONDS: "11" }), 6000);
  });
  it("minus 1 s otherwise, at least 1 s", () => {
    assert.equal(deadline({ TERMINATION_GRACE_PERIOD_SECONDS: "10" }), 9000);
    assert.equal(deadline({ TERMINATION_GRACE_PERIOD_SECONDS: "2" }), 1000);
    assert.equal(deadline({ TERMINATION_GRACE_PERIOD_SECONDS: "1" }), 1000);
    assert.equal(deadline({ TERMINATION_GRACE_PERIOD_SECONDS: "0" }), 1000);
  });
  it("5 s by default", () => {
    assert.equal(deadline({}), 5000);
  });
});

describe("loadConfig refuses bad values, all at once", () => {
  it("reports every bad variable in one error", () => {
    const env: Env = {
      XDS_ADDRESS: "not an address",
      CA_ADDRESS: "https://ca:99999",
      INSTANCE_IP: "1.2.3",
      XDS_HEADER_bad$name: "x",
      CA_HEADER_ok: "caf\u00e9",
      XDS_ON_DEMAND: "yes",
      SECRET_TTL: "soon",
      PROXY_MODE: "node",
      PROXY_WORKLOAD_INFO: "ns/name",
      INPOD_PORT_REUSE: "maybe",
      ENABLE_ORIG_SRC: "2",
      UNSTABLE_ENABLE_SOCKS5: "on",
      ENABLE_RESPONSE_BAGGAGE: "nope",
      CONNECTION_TERMINATION_DEADLINE: "-1s",
      POOL_MAX_STREAMS_PER_CONNECTION: "0",
      POOL_UNUSED_RELEASE_TIMEOUT: "5 minutes",
      ZTUNNEL_WORKER_THREADS: "150%",
      TLS12_ENABLED: "TRUE!",
      ISTIO_METAJSON_X: "{",
      ISTIO_META_DNS_PROXY_ADDR: "nowhere",
      RUST_LOG: "info,xds=loud",
      LOG_FORMAT: "xml",
      ADMIN_ADDRESS: "localhost",
      METRICS_ADDRESS: "::1:15020",
      READINESS_ADDRESS: "host.example:15021",
      LOCAL_XDS_PATH: "/a.yaml",
      LOCAL_XDS: "workloads: []",
      FAKE_CA: "sure",
      PACKET_MARK: "-1",
    };
    const found = problems(env);
    const named = (v: string) => found.filter((p) => p.startsWith(v)).length;
    for (const v of [
      "XDS_ADDRESS",
      "CA_ADDRESS",
      "INSTANCE_IP",
      "XDS_HEADER_bad$name",
      "CA_HEADER_ok",
      "XDS_ON_DEMAND",
      "SECRET_TTL",
      "PROXY_MODE",
      "PROXY_WORKLOAD_INFO",
      "INPOD_PORT_REUSE",
      "ENABLE_ORIG_SRC",
      "UNSTABLE_ENABLE_SOCKS5",
      "ENABLE_RESPONSE_BAGGAGE",
      "CONNECTION_TERMINATION_DEADLINE",
      "POOL_MAX_STREAMS_PER_CONNECTION",
      "POOL_UNUSED_RELEASE_TIMEOUT",
      "ZTUNNEL_WORKER_THREADS",
      "TLS12_ENABLED",
      "ISTIO_METAJSON_X",
      "ISTIO_META_DNS_PROXY_ADDR",
      "RUST_LOG",
      "LOG_FORMAT",
      "ADMIN_ADDRESS",
      "METRICS_ADDRESS",
      "READINESS_ADDRESS",
      "LOCAL_XDS_PATH, LOCAL_XDS",
      "FAKE_CA",
      "PACKET_MARK",
    ]) {
      assert.ok(named(v) >= 1, `expected a problem naming ${v}; got:\n${found.join("\n")}`);
    }
  });

  it("the thrown error names each variable, with a stable code", () => {
    assert.throws(
      () => load({ SECRET_TTL: "x", LOG_FORMAT: "xml" }),
      (err: unknown) =>
        err instanceof AmbientError &&
        err.code === "ZTUNNEL_CONFIG_INVALID" &&
        err.message.includes("SECRET_TTL") &&
        err.message.includes("LOG_FORMAT"),
    );
  });

  it("dedicated mode needs PROXY_WORKLOAD_INFO", () => {
    assert.ok(
      problems({ PROXY_MODE: "dedicated" }).some((p) => p.startsWith("PROXY_WORKLOAD_INFO")),
    );
  });

  it("the DNS proxy and on-demand xDS exclude each other", () => {
    assert.ok(problems({ XDS_ON_DEMAND: "true" }).some((p) => p.includes("on-demand")));
    assert.equal(
      load({ XDS_ON_DEMAND: "true", ISTIO_META_DNS_CAPTURE: "false" }).xdsOnDemand,
      true,
    );
  });

  it("SECRET_TTL must be at least a second", () => {
    assert.ok(problems({ SECRET_TTL: "10ms" }).some((p) => p.startsWith("SECRET_TTL")));
  });
});

describe("flags", () => {
  it("set their variables", () => {
    const r = envFromFlags([
      "--xds-address",
      "https://cp:15012",
      "--fake-ca",
      "--log-level=debug",
      "--node-name",
      "node-a",
    ]);
    assert.deepEqual(r, {
      ok: true,
      value: {
        XDS_ADDRESS: "https://cp:15012",
        FAKE_CA: "true",
        RUST_LOG: "debug",
        NODE_NAME: "node-a",
      },
    });
  });

  it("refuse unknown flags and missing values", () => {
    assert.equal(envFromFlags(["--nope"]).ok, false);
    assert.equal(envFromFlags(["--xds-address"]).ok, false);
    assert.equal(envFromFlags(["stray"]).ok, false);
  });

  it("every flag's variable is one loadConfig reads, and help lists them all", () => {
    const help = formatFlagsHelp();
    for (const f of ZTUNNEL_FLAGS) {
      assert.ok(help.includes(`--${f.name}`), f.name);
      assert.ok(help.includes(`[${f.env}]`), f.env);
    }
    // A bad value for each flag's variable is either refused or accepted, never ignored silently:
    // check a few representative ones round-trip through loadConfig.
    const env = envFromFlags(["--secret-ttl", "1h", "--tls12", "true", "--network", "n"]);
    assert.ok(env.ok);
    const c = load(env.value);
    assert.equal(c.secretTtlSeconds, 3600);
    assert.equal(c.proxy.tls12Enabled, true);
    assert.equal(c.proxy.network, "n");
  });
});
