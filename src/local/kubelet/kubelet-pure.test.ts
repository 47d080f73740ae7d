import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { containerArgv, containerEnv, expandVars } from "./env.ts";
import { parseProbe } from "./probes.ts";
import { phaseOf, podStatus, type PodView } from "./pod-status.ts";
import { resolvConf } from "./pod-worker.ts";

const pod = {
  metadata: {
    name: "reviews-v2-abc-xyz12",
    namespace: "bookinfo",
    uid: "u-1",
    labels: { app: "reviews" },
  },
  spec: { serviceAccountName: "bookinfo-reviews", nodeName: "node2" },
};
const ctx = {
  pod,
  podIP: "198.19.1.5",
  hostIP: "198.18.0.3",
  nodeName: "node2",
  nodeBinDir: "/repo/node_modules/.bin",
  basePath: "/usr/bin:/bin",
  home: "/root",
};

describe("kubelet: environment, probes, status", () => {
  it("builds env from values and the downward API, with HOSTNAME and Node 24 first on PATH", () => {
    const fr = (fieldPath: string) => ({ valueFrom: { fieldRef: { fieldPath } } });
    const c = {
      name: "reviews",
      command: ["node", "$(APP).ts"],
      args: ["--pod=$(POD_NAME)", "$$(KEEP)"],
      env: [
        { name: "APP", value: "examples/bookinfo/reviews" },
        { name: "POD_NAME", ...fr("metadata.name") },
        { name: "POD_NAMESPACE", ...fr("metadata.namespace") },
        { name: "POD_IP", ...fr("status.podIP") },
        { name: "NODE", ...fr("spec.nodeName") },
        { name: "SA", ...fr("spec.serviceAccountName") },
        { name: "LABEL", ...fr("metadata.labels['app']") },
        { name: "URL", value: "http://$(POD_IP):9080/$(NOPE)" },
      ],
    };
    const env = containerEnv(c, ctx);
    assert.ok(env.ok);
    assert.equal(env.value["HOSTNAME"], "reviews-v2-abc-xyz12");
    assert.equal(env.value["PATH"], "/repo/node_modules/.bin:/usr/bin:/bin");
    assert.equal(env.value["POD_NAME"], "reviews-v2-abc-xyz12");
    assert.equal(env.value["POD_NAMESPACE"], "bookinfo");
    assert.equal(env.value["POD_IP"], "198.19.1.5");
    assert.equal(env.value["NODE"], "node2");
    assert.equal(env.value["SA"], "bookinfo-reviews");
    assert.equal(env.value["LABEL"], "reviews");
    assert.equal(env.value["URL"], "http://198.19.1.5:9080/$(NOPE)");
    assert.deepEqual(containerArgv(c, env.value), {
      ok: true,
      value: ["node", "examples/bookinfo/reviews.ts", "--pod=reviews-v2-abc-xyz12", "$(KEEP)"],
    });
    const bad = containerEnv(
      { env: [{ name: "S", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }] },
      ctx,
    );
    assert.deepEqual(bad, {
      ok: false,
      reason: [
        "env S: secretKeyRef is not supported by the local runtime (only value and fieldRef)",
      ],
    });
    assert.equal(containerArgv({ name: "x" }, {}).ok, false);
    assert.equal(expandVars("$(A)-$(B)", new Map([["A", "1"]])), "1-$(B)");
  });

  it("parses probes with defaults and named ports", () => {
    const c = { name: "web", ports: [{ name: "http", containerPort: 8080 }] };
    const p = parseProbe({ httpGet: { path: "/health", port: "http" }, periodSeconds: 2 }, c);
    assert.ok(p?.ok);
    assert.deepEqual(p.value, {
      action: { kind: "http", port: 8080, path: "/health", scheme: "HTTP", headers: [] },
      initialDelaySeconds: 0,
      periodSeconds: 2,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 3,
    });
    const tcp = parseProbe({ tcpSocket: { port: 9000 } }, c);
    assert.ok(tcp?.ok && tcp.value.action.kind === "tcp");
    const ex = parseProbe({ exec: { command: ["true"] } }, c);
    assert.ok(ex?.ok && ex.value.action.kind === "exec");
    assert.equal(parseProbe(undefined, c), undefined);
    const bad = parseProbe({ httpGet: { port: "nope" } }, c);
    assert.ok(bad && !bad.ok && /named container port/.test(bad.reason));
  });

  it("reports phase, conditions and container statuses, keeping transition times", () => {
    const base: PodView = {
      podIP: "198.19.1.5",
      hostIP: "198.18.0.3",
      startTime: "2026-01-01T00:00:00Z",
      restartPolicy: "Always",
      sandboxReady: true,
      containers: [
        {
          name: "app",
          state: "running",
          startedAt: "2026-01-01T00:00:01Z",
          ready: false,
          restartCount: 0,
          pid: 42,
        },
      ],
      willRestart: () => true,
    };
    const s1 = podStatus(base, undefined, "2026-01-01T00:00:02Z");
    assert.equal(s1["phase"], "Running");
    const ready1 = (
      s1["conditions"] as { type: string; status: string; lastTransitionTime: string }[]
    ).find((c) => c.type === "Ready")!;
    assert.equal(ready1.status, "False");
    const s2 = podStatus(
      { ...base, containers: [{ ...base.containers[0]!, ready: true }] },
      s1,
      "2026-01-01T00:00:05Z",
    );
    const conds2 = s2["conditions"] as {
      type: string;
      status: string;
      lastTransitionTime: string;
    }[];
    assert.equal(conds2.find((c) => c.type === "Ready")!.status, "True");
    assert.equal(
      conds2.find((c) => c.type === "Ready")!.lastTransitionTime,
      "2026-01-01T00:00:05Z",
    );
    assert.equal(
      conds2.find((c) => c.type === "PodScheduled")!.lastTransitionTime,
      "2026-01-01T00:00:02Z",
      "unchanged condition keeps its time",
    );
    const cs = (s2["containerStatuses"] as Record<string, unknown>[])[0]!;
    assert.deepEqual(cs["state"], { running: { startedAt: "2026-01-01T00:00:01Z" } });
    assert.equal(cs["containerID"], "process://42");
    assert.deepEqual(s2["podIPs"], [{ ip: "198.19.1.5" }]);
    const done = { exitCode: 0, reason: "Completed", startedAt: "a", finishedAt: "b" };
    assert.equal(
      phaseOf({
        ...base,
        restartPolicy: "Never",
        willRestart: () => false,
        containers: [
          { name: "app", state: "terminated", ready: false, restartCount: 0, terminated: done },
        ],
      }),
      "Succeeded",
    );
    assert.equal(phaseOf({ ...base, sandboxReady: false }), "Pending");
  });

  it("writes resolv.conf with the namespace's search path and ndots:5", () => {
    assert.equal(
      resolvConf("bookinfo", "198.18.0.1", "cluster.local"),
      "search bookinfo.svc.cluster.local svc.cluster.local cluster.local\nnameserver 198.18.0.1\noptions ndots:5\n",
    );
  });
});
