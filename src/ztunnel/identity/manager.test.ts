import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { AddressSchema, TunnelProtocol } from "../../lib/gen/istio/workload/workload_pb.ts";
import {
  formatIdentity,
  parseIdentity,
  type Identity,
  type WorkloadCertificate,
} from "../../lib/identity/index.ts";
import { ManualTimers, settle } from "../../testing/manual-timers.ts";
import { createTestPki, type TestPki } from "../../testing/pki.ts";
import { ProxyState } from "../state/index.ts";
import { CertificateManager } from "./manager.ts";

const HOUR = 3_600_000;

function id(sa: string): Identity {
  const r = parseIdentity(`spiffe://cluster.local/ns/ns/sa/${sa}`);
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

interface Call {
  readonly identity: Identity;
  readonly resolve: (c: WorkloadCertificate) => void;
  readonly reject: (e: Error) => void;
}

/** A CA whose answers the test gives by hand. */
class FakeCa {
  readonly calls: Call[] = [];
  readonly pki: TestPki;
  readonly timers: ManualTimers;
  #answered = 0;
  constructor(pki: TestPki, timers: ManualTimers) {
    this.pki = pki;
    this.timers = timers;
  }

  readonly fetch = (identity: Identity): Promise<WorkloadCertificate> =>
    new Promise((resolve, reject) => this.calls.push({ identity, resolve, reject }));

  get pending(): Call[] {
    return this.calls.slice(this.#answered);
  }

  /** Answers call `i` with a certificate valid from now for `ttlMs`. */
  async issue(i: number, ttlMs = HOUR): Promise<WorkloadCertificate> {
    const call = this.calls[i]!;
    const now = this.timers.now();
    const cert = await this.pki.issue(call.identity, {
      notBefore: new Date(now),
      notAfter: new Date(now + ttlMs),
    });
    call.resolve(cert);
    this.#answered = Math.max(this.#answered, i + 1);
    await settle();
    return cert;
  }

  async fail(i: number, message = "connection refused"): Promise<void> {
    this.calls[i]!.reject(new Error(message));
    this.#answered = Math.max(this.#answered, i + 1);
    await settle();
  }

  names(from = 0): string[] {
    return this.calls.slice(from).map((c) => c.identity.serviceAccount);
  }
}

function workload(name: string, sa: string, node: string, protocol: "HBONE" | "TCP" = "HBONE") {
  return create(AddressSchema, {
    type: {
      case: "workload",
      value: {
        uid: `Kubernetes//Pod/ns/${name}`,
        name,
        namespace: "ns",
        serviceAccount: sa,
        node,
        tunnelProtocol: protocol === "HBONE" ? TunnelProtocol.HBONE : TunnelProtocol.NONE,
        addresses: [new Uint8Array([198, 18, 0, Number(name.replace(/\D/g, "") || "1")])],
      },
    },
  });
}

let pki: TestPki;
before(async () => {
  pki = await createTestPki();
});

describe("CertificateManager", () => {
  let timers: ManualTimers;
  let ca: FakeCa;
  let state: ProxyState;
  let manager: CertificateManager;
  const stops: (() => void)[] = [];

  beforeEach(async () => {
    timers = new ManualTimers();
    // Certificates are judged against the manual clock: start it at the real time.
    // Whole seconds, as X.509 keeps them, so half-life delays come out round.
    await timers.advance(Math.floor(Date.now() / 1000) * 1000);
    ca = new FakeCa(pki, timers);
    state = new ProxyState({ localNode: "node-a" });
    manager = new CertificateManager({ fetch: ca.fetch, timers, random: () => 0.5 });
    stops.push(manager.track(state), () => manager.stop());
  });

  after(() => {
    for (const s of stops) s();
  });

  const apply = (...ws: ReturnType<typeof workload>[]) => {
    for (const w of ws) assert.ok(state.applyAddress(w).ok);
    state.commit();
  };
  const remove = (...names: string[]) => {
    for (const n of names) state.removeAddress(`Kubernetes//Pod/ns/${n}`);
    state.commit();
  };
  /** A second manager on its own state and CA (the shared one would fetch too). */
  const fresh = (options: { maxConcurrentFetches?: number; idleDropMs?: number } = {}) => {
    manager.stop();
    state = new ProxyState({ localNode: "node-a" });
    ca = new FakeCa(pki, timers);
    const m = new CertificateManager({ fetch: ca.fetch, timers, ...options });
    stops.push(m.track(state), () => m.stop());
    return m;
  };

  it("prefetches for node-local HBONE workloads only", async () => {
    apply(
      workload("a1", "alpha", "node-a"),
      workload("a2", "beta", "node-a", "TCP"),
      workload("a3", "gamma", "node-b"),
    );
    await settle();
    assert.deepEqual(ca.names(), ["alpha"], "TCP and other-node workloads get no certificate");
    assert.deepEqual(manager.identities(), ["spiffe://cluster.local/ns/ns/sa/alpha"]);
    assert.equal(manager.isAvailable(id("alpha")), false);
    const issued = await ca.issue(0);
    assert.equal(manager.isAvailable(id("alpha")), true);
    assert.equal(await manager.certificate(id("alpha")), issued, "served from the holder");
    assert.equal(ca.calls.length, 1, "no second fetch");
  });

  it("prefetches what the state already holds when tracking starts", async () => {
    const s = new ProxyState({ localNode: "node-a" });
    assert.ok(s.applyAddress(workload("a1", "early", "node-a")).ok);
    s.commit();
    const m = new CertificateManager({ fetch: ca.fetch, timers });
    stops.push(m.track(s), () => m.stop());
    await settle();
    assert.deepEqual(ca.names(), ["early"]);
  });

  it("runs at most 8 fetches at once; a waiting connection goes first", async () => {
    const ws = Array.from({ length: 20 }, (_, i) => workload(`a${i + 1}`, `sa${i + 1}`, "node-a"));
    apply(...ws);
    await settle();
    assert.equal(manager.fetchesInFlight, 8);
    assert.equal(manager.fetchesQueued, 12);
    assert.equal(ca.calls.length, 8);

    // A connection needs sa20 (queued as a prefetch): it jumps the queue.
    const wanted = manager.certificate(id("sa20"));
    await ca.issue(0);
    assert.equal(ca.calls.length, 9);
    assert.equal(ca.calls[8]!.identity.serviceAccount, "sa20", "the waited-for fetch runs next");
    assert.equal(manager.fetchesInFlight, 8);
    const got = await Promise.all([wanted, ca.issue(8)]);
    assert.equal(got[0], got[1]);

    // Then the prefetches, in order, never more than 8 at once.
    for (let i = 1; i < 8; i++) await ca.issue(i);
    for (let i = 9; ca.pending.length > 0; i++) {
      assert.ok(manager.fetchesInFlight <= 8);
      await ca.issue(i);
    }
    assert.deepEqual(ca.names(9), [
      "sa9",
      "sa10",
      "sa11",
      "sa12",
      "sa13",
      "sa14",
      "sa15",
      "sa16",
      "sa17",
      "sa18",
      "sa19",
    ]);
    assert.equal(manager.fetchesInFlight, 0);
    assert.equal(manager.fetchesQueued, 0);
  });

  it("drops the holder when the last local workload with the identity leaves", async () => {
    apply(workload("a1", "shared", "node-a"), workload("a2", "shared", "node-a"));
    await settle();
    await ca.issue(0);
    assert.equal(ca.calls.length, 1, "one holder per identity");
    assert.equal(timers.armed().length, 1, "the refresh timer");

    remove("a1");
    assert.deepEqual(manager.identities(), ["spiffe://cluster.local/ns/ns/sa/shared"]);
    remove("a2");
    assert.deepEqual(manager.identities(), []);
    assert.deepEqual(timers.armed(), [], "no refresh timer left behind");
    await timers.advance(HOUR);
    assert.equal(ca.calls.length, 1, "no refresh after the drop");
  });

  it("a drop fails callers still waiting and cancels the queued fetch", async () => {
    const m = fresh({ maxConcurrentFetches: 1 });
    apply(workload("a1", "first", "node-a"), workload("a2", "second", "node-a"));
    await settle();
    assert.equal(m.fetchesQueued, 1);
    const waiting = m.certificate(id("second"));
    remove("a2");
    await assert.rejects(
      waiting,
      /no certificate for spiffe:\/\/cluster.local\/ns\/ns\/sa\/second/,
    );
    assert.equal(m.fetchesQueued, 0);
    await ca.issue(0);
    assert.deepEqual(ca.names(), ["first"], "the dropped identity was never fetched");
  });

  it("refreshes at half-life and serves the new certificate", async () => {
    apply(workload("a1", "alpha", "node-a"));
    await settle();
    const first = await ca.issue(0, 2 * HOUR);
    assert.deepEqual(timers.armed(), [HOUR]);
    await timers.advance(HOUR - 1);
    assert.equal(ca.calls.length, 1);
    await timers.advance(1);
    assert.equal(ca.calls.length, 2, "refresh at half-life");
    assert.equal(await manager.certificate(id("alpha")), first, "old one served meanwhile");
    const second = await ca.issue(1, 2 * HOUR);
    assert.equal(await manager.certificate(id("alpha")), second);
  });

  it("a failing CA keeps the valid certificate in use and retries with backoff", async () => {
    apply(workload("a1", "alpha", "node-a"));
    await settle();
    const first = await ca.issue(0, 2 * HOUR);
    await timers.advance(HOUR);
    await ca.fail(1, "CA unreachable");
    assert.equal(await manager.certificate(id("alpha")), first);
    assert.equal(manager.dump()[0]!.state, "Available");
    assert.deepEqual(timers.armed(), [500], "first retry after 500 ms (jitter fixed at 0)");
    await timers.advance(500);
    assert.equal(ca.calls.length, 3);
    await ca.fail(2);
    assert.deepEqual(timers.armed(), [1000], "then 1 s");
    await timers.advance(1000);
    const renewed = await ca.issue(3, 2 * HOUR);
    assert.equal(await manager.certificate(id("alpha")), renewed);
  });

  it("on demand: the caller waits for the first fetch, or gets its error", async () => {
    const waiting = assert.rejects(manager.certificate(id("remote")), (err: Error) => {
      assert.match(err.message, /no certificate for spiffe:\/\/cluster.local\/ns\/ns\/sa\/remote/);
      assert.match(err.message, /permission denied/);
      return true;
    });
    await settle();
    assert.deepEqual(ca.names(), ["remote"]);
    await ca.fail(0, "permission denied");
    await waiting;
    assert.match(manager.dump()[0]!.state, /^Unavailable: .*permission denied/);
    // While backing off, callers are told at once instead of piling up.
    await assert.rejects(manager.certificate(id("remote")), /permission denied/);
    await timers.advance(500);
    const cert = await ca.issue(1);
    assert.equal(await manager.certificate(id("remote")), cert);
  });

  it("drops unused on-demand holders for identities that are not local", async () => {
    const m = fresh({ idleDropMs: 60_000 });
    const c = m.certificate(id("visitor"));
    await settle();
    await ca.issue(0);
    await c;
    await timers.advance(59_000);
    apply(workload("a1", "alpha", "node-a"));
    assert.ok(m.identities().includes("spiffe://cluster.local/ns/ns/sa/visitor"));
    await timers.advance(1000);
    apply(workload("a2", "beta", "node-a"));
    assert.deepEqual(m.identities(), [
      "spiffe://cluster.local/ns/ns/sa/alpha",
      "spiffe://cluster.local/ns/ns/sa/beta",
    ]);
  });

  it("pinned identities stay after their workloads leave", () => {
    manager.pin(id("own"));
    apply(workload("a1", "own", "node-a"));
    remove("a1");
    assert.deepEqual(manager.identities(), ["spiffe://cluster.local/ns/ns/sa/own"]);
  });

  it("dumps certificates for config_dump", async () => {
    apply(workload("a1", "bravo", "node-a"), workload("a2", "alpha", "node-a"));
    await settle();
    const cert = await ca.issue(0);
    const dump = manager.dump();
    assert.deepEqual(
      dump.map((d) => [d.identity, d.state]),
      [
        ["spiffe://cluster.local/ns/ns/sa/alpha", "Initializing"],
        ["spiffe://cluster.local/ns/ns/sa/bravo", "Available"],
      ],
    );
    const bravo = dump[1]!;
    assert.equal(bravo.certChain.length, cert.chainPem.length);
    assert.equal(Buffer.from(bravo.certChain[0]!.pem, "base64").toString(), cert.chainPem[0]);
    assert.match(bravo.certChain[0]!.serialNumber, /^[0-9]+$/);
    assert.equal(bravo.certChain[0]!.validFrom, cert.notBefore.toISOString().replace(".000", ""));
    assert.equal(
      bravo.certChain[0]!.expirationTime,
      cert.notAfter.toISOString().replace(".000", ""),
    );
    assert.deepEqual(
      bravo.rootCerts.map((r) => Buffer.from(r.pem, "base64").toString()),
      cert.rootsPem,
    );
    assert.deepEqual(manager.roots(), cert.rootsPem);
  });

  it("stop fails waiters and leaves no timers", async () => {
    apply(workload("a1", "alpha", "node-a"));
    const w = manager.certificate(id("alpha"));
    manager.stop();
    await assert.rejects(w);
    await assert.rejects(manager.certificate(id("alpha")), /stopped/);
    assert.deepEqual(timers.armed(), []);
    assert.equal(formatIdentity(id("x")), "spiffe://cluster.local/ns/ns/sa/x");
  });
});
