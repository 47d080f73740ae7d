/**
 * The agent's behaviour without root: a memory config store, plain files standing in for pod
 * network namespaces (ZDS compares namespaces by device and inode, which files have too), a
 * rules backend that records what it is asked to do, and ztunnel's side of ZDS by hand over the
 * in-memory transport. The integration tests repeat the important paths for real.
 */
import assert from "node:assert/strict";
import {
  closeSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, describe, it } from "node:test";
import { MemoryConfigStore, type Manifest } from "../lib/config/index.ts";
import { LogOutput, MemorySink } from "../lib/log/index.ts";
import {
  MemoryPacketListener,
  decodeRequest,
  encodeAck,
  encodeHello,
  type MemoryPacketConn,
} from "../lib/zds/index.ts";
import { NodeAgent, type RulesBackend } from "./agent.ts";
import { loadConfig } from "./config.ts";
import type { PluginAddEvent } from "./plugin-event.ts";
import type { PodRules, HostProbeSettings } from "./rules/index.ts";
import { parseState } from "./state-file.ts";

const dir = mkdtempSync(join(tmpdir(), "amb-agent-unit-"));
after(() => rmSync(dir, { recursive: true, force: true }));

let seq = 0;
function netnsFile(): string {
  const p = join(dir, `netns-${seq++}`);
  writeFileSync(p, "");
  return p;
}

const ns = (name: string, labels: Record<string, string> = {}): Manifest => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, labels },
});

const pod = (
  namespace: string,
  name: string,
  labels: Record<string, string> = {},
  annotations: Record<string, string> = {},
): Manifest => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace, labels, annotations },
  spec: { nodeName: "node-1", serviceAccountName: "sa", containers: [{ name: "c", image: "i" }] },
});

class FakeRules implements RulesBackend {
  readonly calls: string[] = [];
  readonly applied = new Map<string, PodRules>();
  probeIps: readonly string[] = [];
  readonly failing = new Set<string>();
  applyPodRules(netns: string, rules: PodRules): Promise<void> {
    this.calls.push(`apply ${netns}`);
    if (this.failing.has(netns)) {
      return Promise.reject(new Error(`iptables-restore: cannot open ${netns}`));
    }
    this.applied.set(netns, rules);
    return Promise.resolve();
  }
  removePodRules(netns: string): Promise<void> {
    this.calls.push(`remove ${netns}`);
    this.applied.delete(netns);
    return Promise.resolve();
  }
  applyHostProbeRules(_netns: string, s: HostProbeSettings): Promise<void> {
    this.probeIps = s.podIps;
    return Promise.resolve();
  }
}

/** ztunnel's side: hello, then Ack every request (with an error for `failing` uids). */
class FakeZtunnel {
  readonly conn: MemoryPacketConn;
  readonly seen: string[] = [];
  /** Inodes of the netns fds that came with adds, by uid. */
  readonly netns = new Map<string, number>();
  readonly failing = new Set<string>();
  readonly done: Promise<void>;

  constructor(listener: MemoryPacketListener) {
    this.conn = listener.connect();
    this.done = this.#serve();
  }

  async #serve(): Promise<void> {
    await this.conn.send(encodeHello());
    for (;;) {
      const p = await this.conn.receive({ maxBytes: 1024, maxFds: 1 }).catch(() => null);
      if (p === null) return;
      const r = decodeRequest(p);
      assert.ok(r.ok);
      const req = r.value;
      let error = "";
      if (req.kind === "add") {
        this.netns.set(req.uid, fstatSync(req.netnsFd).ino);
        closeSync(req.netnsFd);
        if (this.failing.has(req.uid)) error = "proxy failed to start";
      }
      this.seen.push(req.kind === "snapshot-sent" ? "snapshot_sent" : `${req.kind} ${req.uid}`);
      await this.conn.send(encodeAck(error)).catch(() => {});
    }
  }

  close(): void {
    this.conn.close();
  }

  stop(): Promise<void> {
    this.conn.close();
    return this.done;
  }
}

async function eventually(check: () => void, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

interface Harness {
  agent: NodeAgent;
  store: MemoryConfigStore;
  rules: FakeRules;
  listener: MemoryPacketListener;
  sink: MemorySink;
}

const running: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of running.splice(0).reverse()) await stop();
});

async function startAgent(
  objects: Manifest[],
  opts: {
    store?: MemoryConfigStore;
    rules?: FakeRules;
    runDir?: string;
    pendingRetryMs?: number;
  } = {},
): Promise<Harness> {
  const sink = new MemorySink();
  const logOutput = new LogOutput({ sink, spec: { defaultLevel: "debug", scopes: new Map() } });
  const store = opts.store ?? new MemoryConfigStore({ log: logOutput.logger("config"), objects });
  const rules = opts.rules ?? new FakeRules();
  const listener = new MemoryPacketListener();
  const runDir = opts.runDir ?? mkdtempSync(join(dir, "run-"));
  const config = loadConfig({
    NODE_NAME: "node-1",
    CNI_AGENT_RUN_DIR: runDir,
    AMBIENT_IPV6: "false",
    AMBIENT_POD_LOOKUP_TIMEOUT_MS: "300",
  });
  const agent = await NodeAgent.start({
    config,
    store,
    logOutput,
    rules,
    monitoring: false,
    pendingRetryMs: opts.pendingRetryMs ?? 60_000,
    zds: {
      listener,
      openNetns: (p) => openSync(p, "r"),
      helloTimeoutMs: 500,
      ackTimeoutMs: 500,
      acceptsPerSecond: 1000,
    },
  });
  running.push(() => agent.close());
  return { agent, store, rules, listener, sink };
}

const add = (
  namespace: string,
  name: string,
  netns: string,
  ip = "198.18.0.5",
): PluginAddEvent => ({
  podNamespace: namespace,
  podName: name,
  podUid: undefined,
  containerId: `c-${name}`,
  netns,
  ips: [ip],
});

function redirection(
  store: MemoryConfigStore,
  namespace: string,
  name: string,
): string | undefined {
  return store.get("Pod", namespace, name)?.metadata.annotations["ambient.istio.io/redirection"];
}

describe("NodeAgent", () => {
  it("plugin ADD in an ambient namespace: rules, ZDS add with the netns, annotation enabled", async () => {
    const h = await startAgent([
      ns("apps", { "istio.io/dataplane-mode": "ambient" }),
      pod("apps", "web"),
    ]);
    const zt = new FakeZtunnel(h.listener);
    running.push(() => zt.stop());
    await eventually(() => assert.ok(h.agent.zds?.ready));
    const netns = netnsFile();
    const answer = await h.agent.handleAdd(add("apps", "web", netns));
    assert.ok(answer.ok, answer.ok ? "" : answer.reason);
    assert.equal(answer.value["enrolled"], true);
    assert.equal(answer.value["redirection"], "enabled");
    assert.equal(answer.value["reason"], "namespace-label");
    assert.deepEqual(h.rules.calls, [`apply ${netns}`]);
    assert.equal(h.rules.applied.get(netns)?.settings.dnsCapture, true);
    const uid = h.store.get("Pod", "apps", "web")!.metadata.uid;
    assert.deepEqual(zt.seen, ["snapshot_sent", `add ${uid}`]);
    assert.equal(zt.netns.get(uid), statSync(netns).ino, "ztunnel got the pod's netns");
    assert.equal(redirection(h.store, "apps", "web"), "enabled");
    await eventually(() => assert.deepEqual(h.rules.probeIps, ["198.18.0.5"]));
    assert.ok(
      h.sink.lines.some(
        (l) =>
          /pod decision/.test(l) && /pod=apps\/web/.test(l) && /reason=namespace-label/.test(l),
      ),
      "the decision is logged with pod and reason",
    );
    // The same ADD again (a runtime retry) changes nothing.
    assert.ok((await h.agent.handleAdd(add("apps", "web", netns))).ok);
    assert.deepEqual(h.rules.calls, [`apply ${netns}`]);
  });

  it("non-ambient pod: nothing; namespace labelled: enrolled; label removed: out; pod label none opts out", async () => {
    const h = await startAgent([
      ns("apps"),
      pod("apps", "web"),
      pod("apps", "db", { "istio.io/dataplane-mode": "none" }),
    ]);
    const zt = new FakeZtunnel(h.listener);
    running.push(() => zt.stop());
    const web = netnsFile();
    const db = netnsFile();
    const a = await h.agent.handleAdd(add("apps", "web", web));
    assert.ok(a.ok);
    assert.deepEqual([a.value["enrolled"], a.value["reason"]], [false, "not-labelled"]);
    assert.ok((await h.agent.handleAdd(add("apps", "db", db, "198.18.0.6"))).ok);
    assert.deepEqual(h.rules.calls, []);

    h.store.set(ns("apps", { "istio.io/dataplane-mode": "ambient" }));
    await eventually(() => assert.equal(redirection(h.store, "apps", "web"), "enabled"));
    await h.agent.idle();
    assert.deepEqual(h.rules.calls, [`apply ${web}`], "db opted out with its own label");
    assert.equal(redirection(h.store, "apps", "db"), undefined);

    h.store.set(ns("apps"));
    await eventually(() => assert.equal(redirection(h.store, "apps", "web"), undefined));
    await h.agent.idle();
    const uid = h.store.get("Pod", "apps", "web")!.metadata.uid;
    assert.deepEqual(h.rules.calls, [`apply ${web}`, `remove ${web}`]);
    assert.ok(zt.seen.includes(`del ${uid}`));
    await eventually(() => assert.deepEqual(h.rules.probeIps, []));
  });

  it("ztunnel down: rules in and annotation pending; ztunnel connects: snapshot, enabled", async () => {
    const h = await startAgent([
      ns("apps", { "istio.io/dataplane-mode": "ambient" }),
      pod("apps", "web"),
    ]);
    const netns = netnsFile();
    const a = await h.agent.handleAdd(add("apps", "web", netns));
    assert.ok(a.ok);
    assert.equal(a.value["redirection"], "pending");
    assert.deepEqual(h.rules.calls, [`apply ${netns}`]);
    assert.equal(redirection(h.store, "apps", "web"), "pending");

    const zt = new FakeZtunnel(h.listener);
    running.push(() => zt.stop());
    await eventually(() => assert.equal(redirection(h.store, "apps", "web"), "enabled"));
    const uid = h.store.get("Pod", "apps", "web")!.metadata.uid;
    assert.deepEqual(zt.seen, [`add ${uid}`, "snapshot_sent"]);
  });

  it("ztunnel refuses the pod: pending; offered again periodically, and to a new connection", async () => {
    const h = await startAgent(
      [
        ns("apps", { "istio.io/dataplane-mode": "ambient" }),
        pod("apps", "web"),
        pod("apps", "api"),
      ],
      { pendingRetryMs: 50 },
    );
    const zt = new FakeZtunnel(h.listener);
    running.push(() => zt.stop());
    await eventually(() => assert.ok(h.agent.zds?.ready));
    const web = h.store.get("Pod", "apps", "web")!.metadata.uid;
    const api = h.store.get("Pod", "apps", "api")!.metadata.uid;
    zt.failing.add(web);
    zt.failing.add(api);
    for (const name of ["web", "api"]) {
      const a = await h.agent.handleAdd(add("apps", name, netnsFile()));
      assert.ok(a.ok);
      assert.equal(a.value["redirection"], "pending");
    }
    // ztunnel recovers for web: the periodic retry gets it in on the same connection.
    zt.failing.delete(web);
    await eventually(() => assert.equal(redirection(h.store, "apps", "web"), "enabled"));
    assert.ok(zt.seen.filter((s) => s === `add ${web}`).length >= 2);
    assert.equal(redirection(h.store, "apps", "api"), "pending");
    // A new ztunnel (its snapshot carries the pending pod) takes api.
    zt.stop().catch(() => {});
    const zt2 = new FakeZtunnel(h.listener);
    running.push(() => zt2.stop());
    await eventually(() => assert.equal(redirection(h.store, "apps", "api"), "enabled"));
  });

  it("rules that cannot be applied fail the ADD naming pod and cause, and leave the pod clean", async () => {
    const h = await startAgent([
      ns("apps", { "istio.io/dataplane-mode": "ambient" }),
      pod("apps", "web"),
    ]);
    const netns = netnsFile();
    h.rules.failing.add(netns);
    const a = await h.agent.handleAdd(add("apps", "web", netns));
    assert.ok(!a.ok);
    assert.match(a.reason, /pod apps\/web/);
    assert.match(a.reason, /iptables-restore: cannot open/);
    assert.deepEqual(h.rules.calls, [`apply ${netns}`, `remove ${netns}`]);
    assert.equal(redirection(h.store, "apps", "web"), undefined);
    assert.ok(h.sink.lines.some((l) => /enrollment action failed/.test(l) && /apps\/web/.test(l)));
  });

  it("unknown pod: the ADD fails after the lookup timeout", async () => {
    const h = await startAgent([ns("apps")]);
    const a = await h.agent.handleAdd(add("apps", "ghost", netnsFile()));
    assert.ok(!a.ok);
    assert.match(a.reason, /pod apps\/ghost is not in the API server watch after 300 ms/);
  });

  it("an ADD that arrives before the watch shows the pod waits for it", async () => {
    const h = await startAgent([ns("apps", { "istio.io/dataplane-mode": "ambient" })]);
    const pending = h.agent.handleAdd(add("apps", "late", netnsFile()));
    setTimeout(() => h.store.set(pod("apps", "late")), 50);
    const a = await pending;
    assert.ok(a.ok);
    assert.equal(a.value["enrolled"], true);
  });

  it("a changed dns-capture annotation re-applies the rules; DEL lets ztunnel go", async () => {
    const h = await startAgent([
      ns("apps", { "istio.io/dataplane-mode": "ambient" }),
      pod("apps", "web"),
    ]);
    const zt = new FakeZtunnel(h.listener);
    running.push(() => zt.stop());
    const netns = netnsFile();
    assert.ok((await h.agent.handleAdd(add("apps", "web", netns))).ok);
    h.store.set(pod("apps", "web", {}, { "ambient.istio.io/dns-capture": "false" }));
    await eventually(() => assert.equal(h.rules.applied.get(netns)?.settings.dnsCapture, false));
    const uid = h.store.get("Pod", "apps", "web")!.metadata.uid;
    const d = await h.agent.handleDel({
      podNamespace: "apps",
      podName: "web",
      podUid: undefined,
      containerId: "c-web",
    });
    assert.ok(d.ok);
    assert.equal(d.value["removed"], true);
    assert.ok(zt.seen.includes(`del ${uid}`));
    assert.equal(h.agent.pods().find((p) => p.uid === uid)?.netns, undefined);
  });

  it("restart: state reloaded, enrolled pods re-registered for the snapshot, rules re-applied by diff", async () => {
    const runDir = mkdtempSync(join(dir, "run-"));
    const objects = [
      ns("apps", { "istio.io/dataplane-mode": "ambient" }),
      pod("apps", "web"),
      pod("apps", "api"),
    ];
    const first = await startAgent(objects, { runDir });
    const zt = new FakeZtunnel(first.listener);
    const web = netnsFile();
    const api = netnsFile();
    assert.ok((await first.agent.handleAdd(add("apps", "web", web))).ok);
    assert.ok((await first.agent.handleAdd(add("apps", "api", api, "198.18.0.6"))).ok);
    await first.agent.close();
    zt.close();
    const state = parseState(readFileSync(join(runDir, "ambient-pods.json"), "utf8"));
    assert.deepEqual(
      state.pods.map((p) => [p.netns, p.captured]).sort(),
      [
        [web, true],
        [api, true],
      ].sort(),
    );
    // While the agent was down: api's netns vanished (its entry becomes a keep).
    rmSync(api);

    const rules = new FakeRules();
    const second = await startAgent([], { store: first.store, rules, runDir });
    const zt2 = new FakeZtunnel(second.listener);
    running.push(() => zt2.stop());
    await eventually(() => assert.ok(second.agent.zds?.ready));
    await second.agent.idle();
    const uid = (n: string) => first.store.get("Pod", "apps", n)!.metadata.uid;
    assert.deepEqual(
      zt2.seen.slice(0, 3).sort(),
      [`add ${uid("web")}`, `keep ${uid("api")}`, "snapshot_sent"].sort(),
    );
    assert.deepEqual(
      rules.calls,
      [`apply ${web}`],
      "rules re-applied for the pod whose netns is known",
    );
    assert.equal(redirection(first.store, "apps", "web"), "enabled");
    assert.equal(redirection(first.store, "apps", "api"), "enabled");
  });

  it("restart re-syncs with the API: enrolls what was labelled and unenrolls what was unlabelled meanwhile", async () => {
    const runDir = mkdtempSync(join(dir, "run-"));
    const objects = [
      ns("apps", { "istio.io/dataplane-mode": "ambient" }),
      ns("other"),
      pod("apps", "leaving"),
      pod("other", "joining"),
    ];
    const first = await startAgent(objects, { runDir });
    const zt = new FakeZtunnel(first.listener);
    const leaving = netnsFile();
    const joining = netnsFile();
    assert.ok((await first.agent.handleAdd(add("apps", "leaving", leaving))).ok);
    const j = await first.agent.handleAdd(add("other", "joining", joining, "198.18.0.6"));
    assert.ok(j.ok);
    assert.equal(j.value["enrolled"], false);
    await first.agent.close();
    await zt.stop();

    // While the agent is down: one pod opts out, the other's namespace joins the mesh.
    first.store.set(pod("apps", "leaving", { "istio.io/dataplane-mode": "none" }));
    first.store.set(ns("other", { "istio.io/dataplane-mode": "ambient" }));

    const rules = new FakeRules();
    const second = await startAgent([], { store: first.store, rules, runDir });
    const zt2 = new FakeZtunnel(second.listener);
    running.push(() => zt2.stop());
    await eventually(() => {
      assert.equal(redirection(first.store, "apps", "leaving"), undefined);
      assert.equal(redirection(first.store, "other", "joining"), "enabled");
    });
    await second.agent.idle();
    assert.deepEqual(rules.calls.sort(), [`apply ${joining}`, `remove ${leaving}`].sort());
    const uid = (n: string, name: string) => first.store.get("Pod", n, name)!.metadata.uid;
    assert.ok(zt2.seen.includes(`add ${uid("other", "joining")}`));
    assert.ok(!zt2.seen.some((s) => s.endsWith(uid("apps", "leaving")) && s.startsWith("add")));
    assert.deepEqual(rules.probeIps, ["198.18.0.6"]);
  });
});
