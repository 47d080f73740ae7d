/**
 * 50 pods created at once on one node, as root: every plugin ADD is posted concurrently, as a
 * runtime starting a Deployment's replicas would. All must end enrolled (rules in each netns,
 * ztunnel holding each netns, annotation enabled) while no more than the configured number of
 * enrollments run at once; then the namespace label goes and all of them come out again.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { linuxRules, type RulesBackend } from "../../src/node-agent/index.ts";
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
  startAgent,
  type AgentEnv,
  type RunningAgent,
} from "./node-agent-fixtures.ts";

const PODS = 50;
const LIMIT = 4;

/** The real rules, counting how many applies and removals run at the same time. */
class CountingRules implements RulesBackend {
  running = 0;
  peak = 0;
  applies = 0;
  async #counted<T>(work: () => Promise<T>): Promise<T> {
    this.running++;
    this.peak = Math.max(this.peak, this.running);
    try {
      return await work();
    } finally {
      this.running--;
    }
  }
  applyPodRules: RulesBackend["applyPodRules"] = (netns, rules) => {
    this.applies++;
    return this.#counted(() => linuxRules.applyPodRules(netns, rules));
  };
  removePodRules: RulesBackend["removePodRules"] = (netns) =>
    this.#counted(() => linuxRules.removePodRules(netns));
  applyHostProbeRules: RulesBackend["applyHostProbeRules"] = (netns, s) =>
    linuxRules.applyHostProbeRules(netns, s);
}

describe("node agent: 50 pods at once", { concurrency: false }, () => {
  let env: AgentEnv;
  let node: TestNetns;
  const pods: TestNetns[] = [];
  let zt: Ztunnel;
  let agent: RunningAgent;
  const rules = new CountingRules();

  before(async () => {
    assert.equal(process.getuid?.(), 0, "these tests need root (network namespaces, iptables)");
    env = await apiAndDirs();
    node = await TestNetns.create("node", "198.18.221.254");
    for (let i = 0; i < PODS; i++)
      pods.push(await TestNetns.create(`s${i}`, `198.18.221.${i + 1}`));
    env.api.create(nsObject("scale", { "istio.io/dataplane-mode": "ambient" }));
    zt = new Ztunnel(env.zdsPath);
    agent = await startAgent(
      env,
      node,
      { AMBIENT_MAX_CONCURRENT_ENROLLMENTS: String(LIMIT), AMBIENT_POD_LOOKUP_TIMEOUT_MS: "20000" },
      rules,
    );
    zt.connect();
    await eventually(() => assert.ok(agent.agent.zds?.ready));
  });

  after(async () => {
    await agent?.close();
    await zt?.shutdown();
    await env?.api.close();
    for (const p of [...pods, node]) await p?.destroy().catch(() => {});
    if (env) rmSync(env.dir, { recursive: true, force: true });
  });

  it("all enrolled, annotations right, at most the configured enrollments at once", async () => {
    const answers = await Promise.all(
      pods.map(async (p, i) => {
        env.api.create(podObject("scale", `pod-${i}`));
        return postEvent(env.pluginSocket, "/cmdadd", addEvent("scale", `pod-${i}`, p));
      }),
    );
    for (const [i, a] of answers.entries()) {
      assert.equal(a.status, 200, `pod-${i}: ${a.body}`);
      assert.equal((JSON.parse(a.body) as { redirection: string }).redirection, "enabled");
    }
    assert.equal(rules.applies, PODS);
    assert.ok(rules.peak <= LIMIT, `at most ${LIMIT} at once, saw ${rules.peak}`);
    assert.ok(rules.peak > 1, "pods are enrolled in parallel");
    assert.ok(agent.agent.maxConcurrentReconciles <= LIMIT);
    assert.equal(zt.proxies.running.size, PODS);
    await eventually(() => {
      for (let i = 0; i < PODS; i++)
        assert.equal(redirectionOf(env.api, "scale", `pod-${i}`), "enabled");
    });
    for (const p of [pods[0]!, pods[PODS - 1]!]) {
      assert.ok((await p.istioRules()).some((r) => /--to-ports 15001/.test(r)));
    }
    assert.equal(
      await metric(agent.agent.port("metrics"), "ambient_node_agent_enrolled_pods"),
      PODS,
    );
  });

  it("namespace unlabelled: all 50 come out, within the same bound", async () => {
    rules.peak = 0;
    env.api.update(nsObject("scale"));
    await eventually(() => {
      for (let i = 0; i < PODS; i++)
        assert.equal(redirectionOf(env.api, "scale", `pod-${i}`), undefined);
    }, 30_000);
    await agent.agent.idle();
    assert.equal(zt.proxies.running.size, 0);
    assert.ok(rules.peak <= LIMIT, `at most ${LIMIT} at once, saw ${rules.peak}`);
    for (const p of [pods[0]!, pods[PODS - 1]!]) assert.deepEqual(await p.istioRules(), []);
    assert.equal(await metric(agent.agent.port("metrics"), "ambient_node_agent_enrolled_pods"), 0);
  });
});
