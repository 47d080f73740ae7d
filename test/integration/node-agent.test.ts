/**
 * The node agent end to end, as root: the API-server stand-in, real pod network namespaces, the
 * plugin-event socket posted to as the runtime does, and ztunnel's real in-pod side over the ZDS
 * socket (its test proxies listen inside each pod, so a connection from the pod that comes back
 * "proxy <uid> outbound" proves rules, netns hand-over and proxy together). The steps build on
 * each other.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import {
  TestNetns,
  Ztunnel,
  addEvent,
  apiAndDirs,
  eventually,
  metric,
  nsObject,
  podObject,
  postEvent,
  redirectionOf,
  sh,
  startAgent,
  type AgentEnv,
  type RunningAgent,
} from "./node-agent-fixtures.ts";

const OUTSIDE = "198.18.220.250"; // in the pods' /24, owned by nobody: only ztunnel answers
const uidOf = (env: AgentEnv, ns: string, name: string): string =>
  (env.api.get("v1", "Pod", ns, name) as { metadata: { uid: string } }).metadata.uid;

describe("node agent", { concurrency: false }, () => {
  let env: AgentEnv;
  let node: TestNetns;
  const pods: Record<string, TestNetns> = {};
  let zt: Ztunnel;
  let agent: RunningAgent;

  before(async () => {
    assert.equal(process.getuid?.(), 0, "these tests need root (network namespaces, iptables)");
    env = await apiAndDirs();
    node = await TestNetns.create("node", "198.18.220.254");
    for (const [i, name] of ["web", "app", "optout", "late"].entries()) {
      pods[name] = await TestNetns.create(`p${i}`, `198.18.220.${i + 1}`);
    }
    env.api.create(nsObject("mesh", { "istio.io/dataplane-mode": "ambient" }));
    env.api.create(nsObject("plain"));
    zt = new Ztunnel(env.zdsPath);
    agent = await startAgent(env, node);
    zt.connect();
    await eventually(() => assert.ok(agent.agent.zds?.ready, "ztunnel connected"));
  });

  after(async () => {
    await agent?.close();
    await zt?.shutdown();
    await env?.api.close();
    for (const p of [...Object.values(pods), node]) await p?.destroy().catch(() => {});
    if (env) rmSync(env.dir, { recursive: true, force: true });
  });

  it("plugin ADD in an ambient namespace: rules in the pod, netns to ztunnel, annotation enabled", async () => {
    env.api.create(podObject("mesh", "web"));
    const uid = uidOf(env, "mesh", "web");
    const res = await postEvent(
      env.pluginSocket,
      "/cmdadd",
      addEvent("mesh", "web", pods["web"]!, uid),
    );
    assert.equal(res.status, 200, res.body);
    const body = JSON.parse(res.body) as Record<string, unknown>;
    assert.deepEqual([body["enrolled"], body["redirection"], body["uid"]], [true, "enabled", uid]);

    const rules = await pods["web"]!.istioRules();
    assert.ok(rules.includes("-A OUTPUT -j ISTIO_OUTPUT"), rules.join("\n"));
    assert.ok(rules.some((r) => /ISTIO_OUTPUT .*--to-ports 15001/.test(r)));
    assert.ok(rules.some((r) => /ISTIO_PRERT .*--to-ports 15006/.test(r)));
    assert.ok(
      rules.some((r) => /--dport 53 .*--to-ports 15053/.test(r)),
      "DNS captured",
    );
    assert.ok(
      (await pods["web"]!.istioRules(true)).some((r) => /--to-ports 15001/.test(r)),
      "IPv6 rules too",
    );
    assert.ok(zt.proxies.running.has(uid), "ztunnel started the pod's proxy");
    assert.equal(await pods["web"]!.connect(OUTSIDE, 8080), `proxy ${uid} outbound`);
    await eventually(() => assert.equal(redirectionOf(env.api, "mesh", "web"), "enabled"));

    const probe = await sh("ip", [
      "netns",
      "exec",
      node.name,
      "nft",
      "list",
      "table",
      "inet",
      "istio-ambient-nat",
    ]);
    assert.match(probe, new RegExp(`elements = \\{ ${pods["web"]!.ip.replaceAll(".", "\\.")} \\}`));

    const port = agent.agent.port("metrics");
    assert.equal(await metric(port, "ambient_node_agent_enrolled_pods"), 1);
    assert.equal(await metric(port, "ztunnel_connected"), 1);
    const ready = await fetch(`http://127.0.0.1:${agent.agent.port("readiness")}/readyz`);
    assert.equal(ready.status, 200);
    assert.ok(
      agent.sink.lines.some(
        (l) =>
          /pod decision/.test(l) && /pod=mesh\/web/.test(l) && /reason=namespace-label/.test(l),
      ),
      "the decision is logged with the pod and the reason",
    );
  });

  it("pod in a non-ambient namespace: nothing; namespace labelled ambient: enrolled in place; pod label none opts out", async () => {
    env.api.create(podObject("plain", "app"));
    env.api.create(podObject("plain", "optout", { "istio.io/dataplane-mode": "none" }));
    for (const name of ["app", "optout"]) {
      const res = await postEvent(
        env.pluginSocket,
        "/cmdadd",
        addEvent("plain", name, pods[name]!),
      );
      assert.equal(res.status, 200, res.body);
      assert.equal((JSON.parse(res.body) as { enrolled: boolean }).enrolled, false);
      assert.deepEqual(await pods[name]!.istioRules(), []);
    }
    const app = uidOf(env, "plain", "app");
    assert.ok(!zt.proxies.running.has(app));
    assert.equal(redirectionOf(env.api, "plain", "app"), undefined);
    const startedBefore = zt.proxies.started;

    env.api.update(nsObject("plain", { "istio.io/dataplane-mode": "ambient" }));
    await eventually(() => assert.equal(redirectionOf(env.api, "plain", "app"), "enabled"));
    assert.equal(await pods["app"]!.connect(OUTSIDE, 8080), `proxy ${app} outbound`);
    assert.equal(zt.proxies.started, startedBefore + 1, "one proxy more: the running pod");
    await agent.agent.idle();
    assert.deepEqual(await pods["optout"]!.istioRules(), [], "the pod's label wins");
    assert.equal(redirectionOf(env.api, "plain", "optout"), undefined);
  });

  it("namespace label removed: ZDS del, rules gone, annotation removed", async () => {
    const app = uidOf(env, "plain", "app");
    env.api.update(nsObject("plain"));
    await eventually(() => assert.equal(redirectionOf(env.api, "plain", "app"), undefined));
    await agent.agent.idle();
    assert.ok(!zt.proxies.running.has(app), "ztunnel stopped the proxy");
    assert.deepEqual(await pods["app"]!.istioRules(), []);
    assert.deepEqual(await pods["app"]!.istioRules(true), []);
    assert.equal(
      (await pods["app"]!.exec("ip", ["rule", "show"])).includes("lookup 100"),
      false,
      "policy routing gone too",
    );
  });

  it("ztunnel down during enrollment: rules applied, pending, traffic refused; ztunnel back: enabled", async () => {
    await zt.disconnect();
    await eventually(() => assert.equal(agent.agent.zds?.connectionCount, 0));
    env.api.create(podObject("mesh", "late"));
    const res = await postEvent(
      env.pluginSocket,
      "/cmdadd",
      addEvent("mesh", "late", pods["late"]!),
    );
    assert.equal(res.status, 200, res.body);
    assert.equal((JSON.parse(res.body) as { redirection: string }).redirection, "pending");
    assert.ok((await pods["late"]!.istioRules()).length > 0, "captured");
    await eventually(() => assert.equal(redirectionOf(env.api, "mesh", "late"), "pending"));
    assert.match(await pods["late"]!.connect(OUTSIDE, 8080), /failed: .*refused/i, "fail closed");
    assert.equal(await metric(agent.agent.port("metrics"), "ambient_node_agent_pending_pods"), 1);

    zt.connect();
    await eventually(() => assert.equal(redirectionOf(env.api, "mesh", "late"), "enabled"));
    const late = uidOf(env, "mesh", "late");
    assert.equal(await pods["late"]!.connect(OUTSIDE, 8080), `proxy ${late} outbound`);
  });

  it("agent restart with pods enrolled: state reloaded, snapshot re-sent, no duplicate rules", async () => {
    const before = {
      web: await pods["web"]!.istioRules(),
      late: await pods["late"]!.istioRules(),
      web6: await pods["web"]!.istioRules(true),
    };
    const started = zt.proxies.started;
    await agent.close();
    agent = await startAgent(env, node);
    await eventually(() => assert.ok(agent.agent.zds?.ready, "ztunnel reconnected"));
    await agent.agent.idle();
    assert.ok(
      agent.sink.lines.some((l) => /restored enrolled pods/.test(l) && /add=2/.test(l)),
      "both enrolled pods were re-registered with their netns",
    );
    assert.deepEqual(await pods["web"]!.istioRules(), before.web);
    assert.deepEqual(await pods["late"]!.istioRules(), before.late);
    assert.deepEqual(await pods["web"]!.istioRules(true), before.web6);
    assert.equal(
      zt.proxies.started,
      started,
      "ztunnel kept its proxies (snapshot adds, same netns)",
    );
    assert.equal(redirectionOf(env.api, "mesh", "web"), "enabled");
    const web = uidOf(env, "mesh", "web");
    assert.equal(await pods["web"]!.connect(OUTSIDE, 8080), `proxy ${web} outbound`);
    assert.equal(await metric(agent.agent.port("metrics"), "ambient_node_agent_enrolled_pods"), 2);
  });

  it("rules that cannot be applied (netns gone): the ADD answers an error naming pod and cause", async () => {
    env.api.create(podObject("mesh", "broken"));
    const gone = `/run/netns/amb-agt-${process.pid}-missing`;
    const res = await postEvent(env.pluginSocket, "/cmdadd", {
      ...addEvent("mesh", "broken", pods["web"]!),
      CmdAddEvent: { ContainerID: "x", Netns: gone },
    });
    assert.equal(res.status, 500);
    assert.match(res.body, /pod mesh\/broken/);
    assert.match(res.body, /does not exist/);
    assert.equal(redirectionOf(env.api, "mesh", "broken"), undefined);
    assert.equal(
      (await postEvent(env.pluginSocket, "/cmdadd", { CmdAddEvent: {} })).status,
      400,
      "a body that is not an event",
    );
  });

  it("plugin DEL and pod deletion: ztunnel lets go, the probe set follows", async () => {
    const late = uidOf(env, "mesh", "late");
    const del = await postEvent(env.pluginSocket, "/cmddel", {
      CmdDelEvent: { ContainerID: "sandbox-late" },
      PodName: "late",
      PodNamespace: "mesh",
    });
    assert.equal(del.status, 200, del.body);
    assert.ok(!zt.proxies.running.has(late));

    const web = uidOf(env, "mesh", "web");
    env.api.remove("v1", "Pod", "mesh", "web");
    await eventually(() => assert.ok(!zt.proxies.running.has(web)));
    await eventually(async () => {
      const probe = await sh("ip", [
        "netns",
        "exec",
        node.name,
        "nft",
        "list",
        "table",
        "inet",
        "istio-ambient-nat",
      ]);
      assert.doesNotMatch(probe, /elements/);
    });
    assert.ok(!agent.agent.pods().some((p) => p.uid === web), "the deleted pod is forgotten");
  });
});
