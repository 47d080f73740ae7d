import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { identityKey, parseIdentity, type Identity } from "../lib/identity/index.ts";
import { Readiness, readinessResponse } from "./readiness.ts";

function id(sa: string): Identity {
  const r = parseIdentity(`spiffe://cluster.local/ns/ns/sa/${sa}`);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

function setup() {
  const local = new Map<string, Identity>();
  const held = new Set<string>();
  const readiness = new Readiness({
    certificateAvailable: (i) => held.has(identityKey(i)),
    localIdentities: () => [...local.values()],
  });
  const addLocal = (i: Identity) => local.set(identityKey(i), i);
  return { readiness, local, held, addLocal };
}

describe("Readiness", () => {
  it("waits for xDS first", () => {
    const { readiness } = setup();
    const r = readiness.check();
    assert.deepEqual(r.pending, ["xds"]);
    assert.equal(r.ready, false);
  });

  it("then for certificates of the local identities known at sync time", () => {
    const { readiness, held, addLocal } = setup();
    addLocal(id("a"));
    addLocal(id("b"));
    readiness.markXdsSynced();
    let r = readiness.check();
    assert.deepEqual(r.pending, ["certificates"]);
    assert.match(r.details[0]!, /sa\/a, spiffe:\/\/cluster.local\/ns\/ns\/sa\/b/);

    // An identity appearing after the sync does not hold readiness back.
    addLocal(id("late"));
    held.add(identityKey(id("a")));
    r = readiness.check();
    assert.deepEqual(r.pending, ["certificates"]);
    assert.doesNotMatch(r.details[0]!, /late|sa\/a,/);

    held.add(identityKey(id("b")));
    assert.equal(readiness.check().ready, true);

    // Once met, a later CA problem does not take the node out of rotation.
    held.clear();
    assert.equal(readiness.check().ready, true);
  });

  it("an identity that left the node no longer counts", () => {
    const { readiness, local, addLocal } = setup();
    addLocal(id("gone"));
    readiness.markXdsSynced();
    assert.equal(readiness.check().ready, false);
    local.clear();
    assert.equal(readiness.check().ready, true);
  });

  it("in-pod: connected, snapshot applied, nothing pending — live", () => {
    const { readiness } = setup();
    readiness.markXdsSynced();
    assert.deepEqual(
      readiness.check({ connected: false, snapshotReceived: false, pendingUids: [] }).pending,
      ["inpod"],
    );
    assert.match(
      readiness.check({ connected: true, snapshotReceived: false, pendingUids: [] }).details[0]!,
      /snapshot/,
    );
    const pending = readiness.check({
      connected: true,
      snapshotReceived: true,
      pendingUids: ["u2", "u1"],
    });
    assert.match(pending.details[0]!, /u1, u2/);
    assert.equal(
      readiness.check({ connected: true, snapshotReceived: true, pendingUids: [] }).ready,
      true,
    );
    assert.equal(
      readiness.check({ connected: false, snapshotReceived: true, pendingUids: [] }).ready,
      false,
      "losing the node agent makes ztunnel unready again",
    );
  });

  it("dedicated mode waits for the proxy", () => {
    const { readiness } = setup();
    readiness.requireProxy();
    readiness.markXdsSynced();
    assert.deepEqual(readiness.check().pending, ["proxy"]);
    readiness.markProxyStarted();
    assert.equal(readiness.check().ready, true);
  });

  it("never ready while draining; lists every unmet condition, sorted", () => {
    const { readiness } = setup();
    readiness.requireProxy();
    readiness.markDraining();
    const r = readiness.check({ connected: false, snapshotReceived: false, pendingUids: [] });
    assert.deepEqual(r.pending, ["draining", "inpod", "proxy", "xds"]);
  });

  it("answers 200 ready or 503 with what is missing", () => {
    const { readiness } = setup();
    assert.deepEqual(readinessResponse(readiness.check()), {
      status: 503,
      body: "not ready, pending: xds\n- xds: waiting for the first response of each type from the control plane\n",
    });
    readiness.markXdsSynced();
    assert.deepEqual(readinessResponse(readiness.check()), { status: 200, body: "ready\n" });
  });
});
