import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AmbientError } from "../lib/errors.ts";
import { loadConfig, parseDuration } from "./config.ts";

describe("loadConfig", () => {
  it("defaults to the files source, istiod's ports and Istio defaults; frozen", () => {
    const c = loadConfig([], {}, "/work");
    assert.deepEqual(c.source, { type: "files", dir: "/var/lib/ambient/control-plane/config" });
    assert.deepEqual(c.grpcAddress, { host: "0.0.0.0", port: 15012 });
    assert.deepEqual(c.httpAddress, { host: "0.0.0.0", port: 15014 });
    assert.equal(c.authentication, "local");
    assert.equal(c.clusterId, "Kubernetes");
    assert.deepEqual(c.trustedNodeAccounts, ["istio-system/ztunnel"]);
    assert.equal(c.defaultCertTtlSeconds, 86400);
    assert.equal(c.maxCertTtlSeconds, 90 * 86400);
    assert.equal(c.credentialsDir, "/var/lib/ambient/control-plane/credentials");
    assert.ok(Object.isFrozen(c));
  });

  it("reads Istio's env names; flags win", () => {
    const c = loadConfig(
      ["--config-dir", "cfg", "--cluster-id", "flag-cluster", "--node", "n1", "--node", "n2"],
      {
        CLUSTER_ID: "env-cluster",
        TRUST_DOMAIN: "example.org",
        CA_TRUSTED_NODE_ACCOUNTS: "istio-system/ztunnel, kube-system/agent",
        MAX_WORKLOAD_CERT_TTL: "48h",
        DEFAULT_WORKLOAD_CERT_TTL: "1h30m",
        PILOT_AUTO_ALLOW_WAYPOINT_POLICY: "true",
        PILOT_DEBOUNCE_AFTER: "10ms",
        ROOT_CA_DIR: "/etc/cacerts",
      },
      "/work",
    );
    assert.deepEqual(c.source, { type: "files", dir: "/work/cfg" });
    assert.equal(c.clusterId, "flag-cluster");
    assert.equal(c.trustDomain, "example.org");
    assert.deepEqual(c.trustedNodeAccounts, ["istio-system/ztunnel", "kube-system/agent"]);
    assert.equal(c.maxCertTtlSeconds, 48 * 3600);
    assert.equal(c.defaultCertTtlSeconds, 5400);
    assert.equal(c.autoAllowWaypointPolicy, true);
    assert.equal(c.debounceMs, 10);
    assert.equal(c.rootCaDir, "/etc/cacerts");
    assert.deepEqual(c.extraNodes, ["n1", "n2"]);
  });

  it("--kubeconfig switches source and authentication to Kubernetes", () => {
    const c = loadConfig(["--kubeconfig=/k/config"], {}, "/");
    assert.deepEqual(c.source, { type: "kubernetes", kubeconfig: "/k/config" });
    assert.equal(c.authentication, "kubernetes");
  });

  it("reports every bad key at once", () => {
    assert.throws(
      () =>
        loadConfig(["--grpc-address", "nowhere", "--bogus", "--config-dir", "x", "--in-cluster"], {
          MAX_WORKLOAD_CERT_TTL: "forever",
          CA_TRUSTED_NODE_ACCOUNTS: "ztunnel",
          PILOT_AUTO_ALLOW_WAYPOINT_POLICY: "maybe",
          LOG_LEVEL: "loud",
        }),
      (err: unknown) => {
        assert.ok(err instanceof AmbientError);
        assert.equal(err.code, "CONFIG_INVALID");
        for (const want of [
          /--grpc-address: "nowhere"/,
          /unknown flag --bogus/,
          /--config-dir cannot be combined/,
          /MAX_WORKLOAD_CERT_TTL: "forever" is not a duration/,
          /"ztunnel" is not <namespace>\/<serviceaccount>/,
          /PILOT_AUTO_ALLOW_WAYPOINT_POLICY: "maybe"/,
          /unknown log level "loud"/,
        ]) {
          assert.match(err.message, want);
        }
        return true;
      },
    );
  });

  it("parses Go durations", () => {
    assert.equal(parseDuration("24h"), 86_400_000);
    assert.equal(parseDuration("1h30m"), 5_400_000);
    assert.equal(parseDuration("100ms"), 100);
    assert.equal(parseDuration("0"), 0);
    assert.equal(parseDuration("10"), undefined);
    assert.equal(parseDuration("h"), undefined);
  });
});
