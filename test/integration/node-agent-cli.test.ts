/**
 * `ambient node-agent` as an operator runs it: a separate process configured by flags and a
 * kubeconfig file, answering plugin events and readiness, stopping cleanly on SIGTERM; and a bad
 * configuration refused with every problem named.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FakeKubeApi } from "../../src/testing/fake-kube-api.ts";
import { eventually, nsObject, podObject, postEvent } from "./node-agent-fixtures.ts";

const bin = join(import.meta.dirname, "..", "..", "bin", "ambient");

describe("ambient node-agent", () => {
  let api: FakeKubeApi;
  let dir: string;
  let child: ChildProcess | undefined;

  before(async () => {
    api = new FakeKubeApi();
    await api.listen();
    dir = mkdtempSync(join(tmpdir(), "amb-agt-cli-"));
    writeFileSync(
      join(dir, "kubeconfig"),
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [
          { name: "fake", cluster: { server: api.url, "insecure-skip-tls-verify": true } },
        ],
        users: [{ name: "agent", user: { token: "t" } }],
        contexts: [{ name: "fake", context: { cluster: "fake", user: "agent" } }],
        "current-context": "fake",
      }),
    );
  });

  after(async () => {
    if (child !== undefined && child.exitCode === null) child.kill("SIGKILL");
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs from flags, answers plugin events and readiness, stops on SIGTERM", async () => {
    api.create(nsObject("plain"));
    api.create(podObject("plain", "app"));
    const pluginSocket = join(dir, "run", "pluginevent.sock");
    child = spawn(
      bin,
      [
        "node-agent",
        "--node-name=node-1",
        `--kubeconfig=${join(dir, "kubeconfig")}`,
        `--run-dir=${join(dir, "run")}`,
        `--ztunnel-socket=${join(dir, "zt", "ztunnel.sock")}`,
        "--host-probe-rules=false",
        "--monitoring-host=127.0.0.1",
        "--monitoring-port=0",
        "--readiness-port=0",
      ],
      { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, NODE_NAME: "" } },
    );
    let stderr = "";
    child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
    await eventually(() => assert.match(stderr, /node agent ready/), 15_000);
    const readinessPort = Number(/readinessPort=(\d+)/.exec(stderr)?.[1]);
    const ready = await fetch(`http://127.0.0.1:${readinessPort}/readyz`);
    assert.equal(ready.status, 200);

    const res = await postEvent(pluginSocket, "/cmdadd", {
      CmdAddEvent: { ContainerID: "c1", Netns: "/run/netns/unused" },
      PodName: "app",
      PodNamespace: "plain",
    });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(JSON.parse(res.body), {
      pod: "plain/app",
      uid: (api.get("v1", "Pod", "plain", "app") as { metadata: { uid: string } }).metadata.uid,
      enrolled: false,
      redirection: null,
      reason: "not-labelled",
      message: "neither the pod nor its namespace is labelled istio.io/dataplane-mode=ambient",
    });

    const exited = new Promise<number | null>((resolve) => child!.once("exit", resolve));
    child.kill("SIGTERM");
    assert.equal(await exited, 0);
    assert.match(stderr, /node agent stopped/);
  });

  it("refuses a bad configuration, naming every problem", async () => {
    const p = spawn(bin, ["node-agent", "--ipv6=maybe", "--monitoring-port=x"], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, NODE_NAME: "" },
    });
    let stderr = "";
    p.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((resolve) => p.once("exit", resolve));
    assert.equal(code, 2);
    assert.match(stderr, /NODE_NAME: required/);
    assert.match(stderr, /AMBIENT_IPV6="maybe"/);
    assert.match(stderr, /MONITORING_PORT="x"/);
  });
});
