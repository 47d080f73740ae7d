import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfig } from "./config.ts";

describe("loadConfig", () => {
  it("defaults follow istio-cni", () => {
    const c = loadConfig({ NODE_NAME: "node-1" });
    assert.equal(c.nodeName, "node-1");
    assert.equal(c.systemNamespace, "istio-system");
    assert.equal(c.ztunnelSocket, "/var/run/ztunnel/ztunnel.sock");
    assert.equal(c.pluginSocket, "/var/run/istio-cni/pluginevent.sock");
    assert.equal(c.stateFile, "/var/run/istio-cni/ambient-pods.json");
    assert.equal(c.dnsCapture, true);
    assert.equal(c.ipv6, true);
    assert.equal(c.monitoringPort, 15014);
    assert.equal(c.readinessPort, 8000);
    assert.equal(c.probeSnatIpv4, "169.254.7.127");
    assert.ok(Object.isFrozen(c));
  });

  it("reads Istio's names; the run dir moves the socket and state file", () => {
    const c = loadConfig({
      NODE_NAME: "n",
      POD_NAMESPACE: "istio-cni",
      CNI_AGENT_RUN_DIR: "/tmp/agent",
      ZTUNNEL_UDS_ADDRESS: "/tmp/zt.sock",
      AMBIENT_DNS_CAPTURE: "false",
      AMBIENT_IPV6: "0",
      LOG_LEVEL: "debug,zds=warn",
      LOG_AS_JSON: "true",
    });
    assert.equal(c.systemNamespace, "istio-cni");
    assert.equal(c.pluginSocket, "/tmp/agent/pluginevent.sock");
    assert.equal(c.stateFile, "/tmp/agent/ambient-pods.json");
    assert.equal(c.ztunnelSocket, "/tmp/zt.sock");
    assert.deepEqual([c.dnsCapture, c.ipv6, c.logFormat], [false, false, "json"]);
    assert.equal(c.logLevel.scopes.get("zds"), "warn");
    assert.equal(
      loadConfig({ NODE_NAME: "n", SYSTEM_NAMESPACE: "x", POD_NAMESPACE: "y" }).systemNamespace,
      "x",
    );
  });

  it("reports every bad key at once", () => {
    assert.throws(
      () =>
        loadConfig({
          AMBIENT_IPV6: "maybe",
          MONITORING_PORT: "70000",
          READINESS_PORT: "-1",
          CNI_AGENT_RUN_DIR: "relative",
          HOST_PROBE_SNAT_IP: "fd00::1",
          AMBIENT_MAX_CONCURRENT_ENROLLMENTS: "0",
          LOG_LEVEL: "loud",
        }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, "NODE_AGENT_CONFIG_INVALID");
        for (const key of [
          "NODE_NAME: required",
          "AMBIENT_IPV6",
          "MONITORING_PORT",
          "READINESS_PORT",
          "CNI_AGENT_RUN_DIR",
          "HOST_PROBE_SNAT_IP",
          "AMBIENT_MAX_CONCURRENT_ENROLLMENTS",
          "LOG_LEVEL",
        ]) {
          assert.ok(err.message.includes(key), `mentions ${key}: ${err.message}`);
        }
        return true;
      },
    );
    assert.throws(() => loadConfig({ NODE_NAME: "Bad_Name" }), /not a valid Kubernetes node name/);
  });
});
