import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ResourceInput } from "./resource.ts";
import { TypeSession } from "./session.ts";
import type { InView, PlannedResponse, SessionRequest } from "./session.ts";
import { ResourceStore } from "./store.ts";

const URL = "type.googleapis.com/istio.workload.Address";
type Meta = { node?: string };

function store(...inputs: ResourceInput<Meta>[]): ResourceStore<Meta> {
  const s = new ResourceStore<Meta>(URL);
  s.upsert(inputs);
  return s;
}

const r = (
  name: string,
  version: string,
  extra: Partial<ResourceInput<Meta>> = {},
): ResourceInput<Meta> => ({
  name,
  version,
  resource: new TextEncoder().encode(`${name}@${version}`),
  ...extra,
});

function request(p: Partial<SessionRequest> = {}): SessionRequest {
  return {
    responseNonce: "",
    resourceNamesSubscribe: [],
    resourceNamesUnsubscribe: [],
    initialResourceVersions: {},
    ...p,
  };
}

const byDefault: InView<Meta> = (_r, requested, wildcard) => wildcard || requested;

/** name@version of what a plan sends, and what it removes. */
function summary(plan: PlannedResponse<Meta> | undefined) {
  if (plan === undefined) return undefined;
  return {
    resources: plan.resources.map((x) => `${x.name}@${x.version}`).sort(),
    removed: [...plan.removed].sort(),
  };
}

let nonces = 0;
const nonce = () => `n${++nonces}`;

/** Takes the next response and ACKs it; returns its summary. */
function exchange(s: TypeSession<Meta>, now = 0) {
  const n = nonce();
  const plan = s.takeResponse(n, now);
  if (plan !== undefined) assert.equal(s.onRequest(request({ responseNonce: n }), now).kind, "ack");
  return summary(plan);
}

describe("TypeSession: wildcard", () => {
  it("first sync sends everything; an empty type still gets one (empty) response", () => {
    const s = new TypeSession(URL, store(r("a", "1"), r("b", "1")), byDefault, request());
    assert.deepEqual(exchange(s), { resources: ["a@1", "b@1"], removed: [] });
    assert.equal(s.takeResponse(nonce(), 0), undefined);

    const empty = new TypeSession(URL, store(), byDefault, request());
    assert.deepEqual(exchange(empty), { resources: [], removed: [] });
    assert.equal(empty.takeResponse(nonce(), 0), undefined);
  });

  it("reconnect: sends only changed versions and removals of held names that no longer exist", () => {
    const st = store(r("same", "1"), r("changed", "2"), r("new", "1"));
    const s = new TypeSession(
      URL,
      st,
      byDefault,
      request({ initialResourceVersions: { same: "1", changed: "1", gone: "1" } }),
    );
    assert.deepEqual(exchange(s), { resources: ["changed@2", "new@1"], removed: ["gone"] });
  });

  it("ztunnel's empty held versions count as different", () => {
    const s = new TypeSession(
      URL,
      store(r("a", "1")),
      byDefault,
      request({ initialResourceVersions: { a: "" } }),
    );
    assert.deepEqual(exchange(s), { resources: ["a@1"], removed: [] });
  });

  it("incremental: a change sends only that resource; removal sends its name", () => {
    const st = store(r("a", "1"), r("b", "1"));
    const s = new TypeSession(URL, st, byDefault, request());
    exchange(s);
    st.upsert([r("b", "2")]);
    assert.equal(s.onChanged(["b"], 5), true);
    const plan = s.takeResponse(nonce(), 25)!;
    assert.deepEqual(summary(plan), { resources: ["b@2"], removed: [] });
    assert.equal(plan.oldestChange, 5);
    s.onRequest(request({ responseNonce: `n${nonces}` }), 30);
    st.remove(["a"]);
    s.onChanged(["a"], 40);
    assert.deepEqual(exchange(s), { resources: [], removed: ["a"] });
  });
});

describe("TypeSession: flow control", () => {
  it("one response in flight; changes meanwhile coalesce to the latest version per name", () => {
    const st = store();
    const s = new TypeSession(URL, st, byDefault, request());
    const first = nonce();
    assert.ok(s.takeResponse(first, 0));
    for (let i = 1; i <= 10_000; i++) {
      const name = `r${i % 100}`;
      st.upsert([r(name, String(i))]);
      s.onChanged([name], i);
      assert.equal(s.takeResponse(nonce(), i), undefined, "nothing while un-ACKed");
    }
    assert.ok(s.pending <= 100, `pending ${s.pending} is bounded by the names, not the changes`);
    assert.equal(s.debug(false).inFlight?.nonce, first);
    // A stale ACK does not release it.
    assert.equal(s.onRequest(request({ responseNonce: "old" }), 0).kind, "stale-ack");
    assert.equal(s.takeResponse(nonce(), 0), undefined);
    s.onRequest(request({ responseNonce: first }), 0);
    const plan = s.takeResponse(nonce(), 20_000)!;
    assert.equal(plan.resources.length, 100);
    assert.ok(
      plan.resources.every((x) => Number(x.version) > 9_900),
      "latest versions only",
    );
    assert.equal(plan.oldestChange, 1);
  });
});

describe("TypeSession: NACK", () => {
  it("records the rejected names, keeps the rest, resends a rejected one only when it changes", () => {
    const st = store(r("good", "1"), r("bad", "1"));
    const s = new TypeSession(URL, st, byDefault, request());
    const n1 = nonce();
    s.takeResponse(n1, 0);
    const outcome = s.onRequest(
      request({ responseNonce: n1, errorDetail: { message: "bad: invalid address length 3" } }),
      7,
    );
    assert.deepEqual(outcome, {
      kind: "nack",
      nonce: n1,
      message: "bad: invalid address length 3",
      rejected: [{ name: "bad", reason: "invalid address length 3" }],
      stale: false,
    });
    assert.deepEqual(s.debug(true).rejected, {
      bad: { version: "1", reason: "invalid address length 3", at: 7 },
    });
    assert.equal(s.debug(true).lastNack?.message, "bad: invalid address length 3");

    // Another resource changes: only it goes out, the rejected one is not resent.
    st.upsert([r("good", "2")]);
    s.onChanged(["good"], 10);
    assert.deepEqual(exchange(s), { resources: ["good@2"], removed: [] });
    // The rejected one is fixed: sent, and the ACK clears the rejection.
    st.upsert([r("bad", "2")]);
    s.onChanged(["bad"], 20);
    assert.deepEqual(exchange(s), { resources: ["bad@2"], removed: [] });
    assert.deepEqual(s.debug(true).rejected, {});
    assert.deepEqual(s.debug(true).sent, { good: "2", bad: "2" });
  });
});

describe("TypeSession: explicit (on-demand) subscriptions", () => {
  const onDemandStart = request({ resourceNamesSubscribe: ["*"], resourceNamesUnsubscribe: ["*"] });

  it("starts with nothing, answers a lookup by alias with the resource, and a miss as removed", () => {
    const st = store(r("pod-a", "1", { aliases: ["/198.18.1.5"] }), r("pod-b", "1"));
    const s = new TypeSession(URL, st, byDefault, onDemandStart);
    assert.deepEqual(exchange(s), { resources: [], removed: [] });
    s.onRequest(request({ resourceNamesSubscribe: ["/198.18.1.5"] }), 0);
    assert.deepEqual(exchange(s), { resources: ["pod-a@1"], removed: [] });
    s.onRequest(request({ resourceNamesSubscribe: ["/198.18.9.9"] }), 0);
    assert.deepEqual(exchange(s), { resources: [], removed: ["/198.18.9.9"] });
    // Changes to resources nobody asked for do not concern this stream.
    st.upsert([r("pod-b", "2")]);
    assert.equal(s.onChanged(["pod-b"], 1), false);
    // The missing address appears later: the standing subscription brings it.
    st.upsert([r("pod-c", "1", { aliases: ["/198.18.9.9"] })]);
    assert.equal(s.onChanged(["pod-c"], 2), true);
    assert.deepEqual(exchange(s), { resources: ["pod-c@1"], removed: [] });
  });

  it("a lookup is answered even when the client already holds that version", () => {
    const st = store(r("svc", "1"));
    const s = new TypeSession(
      URL,
      st,
      byDefault,
      request({ ...onDemandStart, initialResourceVersions: { svc: "1" } }),
    );
    assert.deepEqual(exchange(s), { resources: [], removed: [] });
    s.onRequest(request({ resourceNamesSubscribe: ["svc"] }), 0);
    // Already subscribed (through the held versions): asked again, answered again.
    assert.deepEqual(exchange(s), { resources: ["svc@1"], removed: [] });
    s.onRequest(request({ resourceNamesUnsubscribe: ["svc"] }), 0);
    assert.deepEqual(exchange(s), { resources: [], removed: ["svc"] });
    s.onRequest(request({ resourceNamesSubscribe: ["svc"] }), 0);
    assert.deepEqual(exchange(s), { resources: ["svc@1"], removed: [] });
  });

  it("a VIP lookup brings the service and the workloads related to it, and keeps them current", () => {
    const st = store(
      r("ns/svc", "1", { aliases: ["/198.18.5.5"] }),
      r("pod-1", "1", { related: ["ns/svc"] }),
      r("pod-2", "1", { related: ["ns/other"] }),
    );
    const s = new TypeSession(URL, st, byDefault, onDemandStart);
    exchange(s);
    s.onRequest(request({ resourceNamesSubscribe: ["/198.18.5.5"] }), 0);
    assert.deepEqual(exchange(s), { resources: ["ns/svc@1", "pod-1@1"], removed: [] });
    // A new pod of the service arrives later.
    st.upsert([r("pod-3", "1", { related: ["ns/svc"] })]);
    assert.equal(s.onChanged(["pod-3"], 1), true);
    assert.deepEqual(exchange(s), { resources: ["pod-3@1"], removed: [] });
  });

  it("a select hook adds resources nobody asked for (a ztunnel's node-local workloads)", () => {
    const st = store(
      r("local", "1", { meta: { node: "n1" } }),
      r("remote", "1", { meta: { node: "n2" } }),
    );
    const view: InView<Meta> = (res, requested, wildcard) =>
      wildcard || requested || res.meta?.node === "n1";
    const s = new TypeSession(URL, st, view, onDemandStart);
    assert.deepEqual(exchange(s), { resources: ["local@1"], removed: [] });
    // It moves away from the node: removed from the view.
    st.upsert([r("local", "2", { meta: { node: "n2" } })]);
    s.onChanged(["local"], 1);
    assert.deepEqual(exchange(s), { resources: [], removed: ["local"] });
  });

  it("on reconnect keeps the names it holds as subscriptions", () => {
    const st = store(r("/x", "1"), r("pod", "2", { aliases: ["/198.18.1.5"] }), r("other", "1"));
    const s = new TypeSession(
      URL,
      st,
      byDefault,
      request({ ...onDemandStart, initialResourceVersions: { pod: "1", gone: "1" } }),
    );
    assert.deepEqual(exchange(s), { resources: ["pod@2"], removed: ["gone"] });
  });
});
