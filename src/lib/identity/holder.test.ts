import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { createTestPki, type TestPki } from "../../testing/pki.ts";
import type { WorkloadCertificate } from "./bundle.ts";
import { CertificateHolder } from "./holder.ts";
import type { Timers } from "../timers.ts";
import { formatIdentity, parseIdentity, type Identity } from "./spiffe.ts";

const HOUR = 3_600_000;

/** Timers driven by hand: `advance` runs due callbacks in order and lets promises settle. */
class ManualTimers implements Timers {
  #now: number;
  #next = 1;
  readonly #pending = new Map<number, { due: number; fn: () => void }>();

  constructor(start: number) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#pending.set(id, { due: this.#now + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number);
  }
  get pendingCount(): number {
    return this.#pending.size;
  }
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await settle(); // let work started before this call schedule its timers first
    for (;;) {
      let first: [number, { due: number; fn: () => void }] | undefined;
      for (const e of this.#pending)
        if (e[1].due <= end && (first === undefined || e[1].due < first[1].due)) first = e;
      if (first === undefined) break;
      this.#pending.delete(first[0]);
      this.#now = first[1].due;
      first[1].fn();
      await settle();
    }
    this.#now = end;
    await settle();
  }
}

/** Lets already-resolved promise chains run to completion. */
function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

// Whole seconds, as X.509 encodes times.
const T0 = Math.floor(Date.now() / 1000) * 1000;
const id: Identity = (() => {
  const r = parseIdentity("spiffe://cluster.local/ns/default/sa/app");
  assert.ok(r.ok);
  return r.value;
})();

let pki: TestPki;
before(async () => {
  pki = await createTestPki();
});

/** A certificate valid from `start` for `lifetimeMs` (times on the manual clock). */
function cert(
  start: number,
  lifetimeMs: number,
  identity: Identity | string = id,
): Promise<WorkloadCertificate> {
  return pki.issue(identity, {
    notBefore: new Date(start),
    notAfter: new Date(start + lifetimeMs),
  });
}

/** A fetch that answers from a script: certificates or errors, one per call. */
function scripted(answers: (WorkloadCertificate | Error)[]) {
  const calls: number[] = [];
  let i = 0;
  const fetch = (requested: Identity, timers: Timers) => {
    assert.equal(formatIdentity(requested), formatIdentity(id));
    calls.push(timers.now());
    const a = answers[Math.min(i++, answers.length - 1)]!;
    return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
  };
  return { calls, fetch };
}

function holderWith(answers: (WorkloadCertificate | Error)[], random = () => 0.5) {
  const timers = new ManualTimers(T0);
  const s = scripted(answers);
  const holder = new CertificateHolder({
    identity: id,
    fetch: (r) => s.fetch(r, timers),
    timers,
    random,
  });
  const rotations: [WorkloadCertificate, WorkloadCertificate | undefined][] = [];
  const failures: number[] = [];
  holder.on("rotated", (c, p) => rotations.push([c, p]));
  holder.on("fetchFailed", (_e, delay) => failures.push(delay));
  return { holder, timers, calls: s.calls, rotations, failures };
}

describe("CertificateHolder", () => {
  it("fetches at start and refreshes at half-life, emitting rotations", async () => {
    const c1 = await cert(T0, 24 * HOUR);
    const c2 = await cert(T0 + 12 * HOUR, 24 * HOUR);
    const { holder, timers, calls, rotations } = holderWith([c1, c2]);
    assert.equal(holder.state.status, "initializing");
    assert.throws(() => holder.certificate(), {
      code: "IDENTITY_CERT_UNAVAILABLE",
      message: /first fetch/,
    });
    holder.start();
    await timers.advance(0);
    assert.deepEqual(calls, [T0]);
    assert.equal(holder.certificate(), c1);
    assert.deepEqual(rotations, [[c1, undefined]]);
    assert.equal(holder.nextFetchAt, c1.notBefore.getTime() + 12 * HOUR);

    await timers.advance(12 * HOUR - 1);
    assert.equal(calls.length, 1, "not before half-life");
    await timers.advance(1);
    assert.deepEqual(calls, [T0, c1.notBefore.getTime() + 12 * HOUR]);
    assert.equal(holder.certificate(), c2);
    assert.deepEqual(rotations[1], [c2, c1]);
    holder.stop();
  });

  it("retries with exponential backoff capped at 150 s, keeping the valid certificate", async () => {
    const c1 = await cert(T0, 24 * HOUR);
    const c2 = await cert(T0 + 12 * HOUR, 24 * HOUR);
    const down = new Error("connect ECONNREFUSED 198.18.0.10:15012");
    const answers: (WorkloadCertificate | Error)[] = [c1, ...Array<Error>(12).fill(down), c2];
    const { holder, timers, calls, failures } = holderWith(answers);
    holder.start();
    await timers.advance(12 * HOUR);
    for (let i = 0; i < 12; i++) await timers.advance(failures[failures.length - 1] ?? 0);
    assert.deepEqual(
      failures,
      [500, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 150000, 150000, 150000],
    );
    assert.equal(calls.length, 14);
    // The 14th attempt succeeds.
    assert.equal(holder.state.status, "available");
    assert.equal(holder.certificate(), c2);
    holder.stop();

    // Mid-outage the old certificate is served and the error is visible.
    const again = holderWith([c1, down, down, c2]);
    again.holder.start();
    await again.timers.advance(12 * HOUR + 500);
    const mid = again.holder.state;
    assert.equal(mid.status, "available");
    assert.equal(mid.status === "available" ? mid.certificate : undefined, c1);
    assert.equal(mid.status === "available" ? mid.lastError : undefined, down);
    assert.equal(again.holder.certificate(), c1);
    // Success resets the backoff.
    await again.timers.advance(1000);
    assert.equal(again.holder.certificate(), c2);
    assert.equal(
      again.holder.state.status === "available" && again.holder.state.lastError,
      undefined,
    );
    again.holder.stop();
  });

  it("applies jitter within ±20 %", async () => {
    const c1 = await cert(T0, 24 * HOUR);
    const down = new Error("unavailable");
    for (const [random, expected] of [
      [() => 0, [400, 800, 1600]],
      [() => 0.999999, [600, 1200, 2400]],
    ] as const) {
      const { holder, timers, failures } = holderWith([c1, down], random);
      holder.start();
      await timers.advance(12 * HOUR);
      await timers.advance(failures[0]!);
      await timers.advance(failures[1]!);
      assert.deepEqual(failures, expected);
      holder.stop();
    }
  });

  it("reports a failed first fetch, retries, and resolves ready() when it succeeds", async () => {
    const c1 = await cert(T0, 24 * HOUR);
    const { holder, timers, calls } = holderWith([
      new Error("PERMISSION_DENIED: not entitled"),
      c1,
    ]);
    const ready = holder.ready();
    holder.start();
    await timers.advance(0);
    const s = holder.state;
    assert.equal(s.status, "unavailable");
    assert.match(s.status === "unavailable" ? s.error.message : "", /PERMISSION_DENIED/);
    assert.throws(() => holder.certificate(), {
      code: "IDENTITY_CERT_UNAVAILABLE",
      message:
        /no certificate for spiffe:\/\/cluster\.local\/ns\/default\/sa\/app: PERMISSION_DENIED/,
    });
    await timers.advance(500);
    assert.equal(calls.length, 2);
    assert.equal(await ready, c1);
    holder.stop();
  });

  it("says when the held certificate has expired", async () => {
    const c1 = await cert(T0, 1 * HOUR);
    const { holder, timers } = holderWith([c1, new Error("CA unreachable")]);
    holder.start();
    await timers.advance(HOUR + 5 * 60_000);
    const s = holder.state;
    assert.equal(s.status, "unavailable");
    assert.equal(s.status === "unavailable" ? s.certificate : undefined, c1);
    assert.throws(() => holder.certificate(), {
      code: "IDENTITY_CERT_EXPIRED",
      message:
        /^the certificate for spiffe:\/\/cluster\.local\/ns\/default\/sa\/app is expired 5m ago \(at .*\); the last refresh failed: CA unreachable$/,
    });
    holder.stop();
  });

  it("says when the certificate is not yet valid", async () => {
    const future = await cert(T0 + 10 * 60_000, 24 * HOUR);
    const { holder, timers } = holderWith([future]);
    holder.start();
    await timers.advance(0);
    assert.throws(() => holder.certificate(), {
      code: "IDENTITY_CERT_NOT_YET_VALID",
      message: /is not valid yet: becomes valid in 10m .*check the clocks/,
    });
    await timers.advance(10 * 60_000);
    assert.equal(holder.certificate(), future);
    holder.stop();
  });

  it("rejects a certificate for another identity or one already expired", async () => {
    const other = await cert(T0, 24 * HOUR, "spiffe://cluster.local/ns/default/sa/other");
    const expired = await cert(T0 - 2 * HOUR, HOUR);
    const { holder, timers } = holderWith([other, expired]);
    holder.start();
    await timers.advance(0);
    const s1 = holder.state;
    assert.match(
      s1.status === "unavailable" ? s1.error.message : "",
      /returned a certificate for .*sa\/other, but .*sa\/app was requested/,
    );
    await timers.advance(500);
    const s2 = holder.state;
    assert.match(
      s2.status === "unavailable" ? s2.error.message : "",
      /returned a certificate that is expired 1h ago/,
    );
    holder.stop();
  });

  it("stop() leaves no timers and ignores a fetch in flight", async () => {
    const c1 = await cert(T0, 24 * HOUR);
    const timers = new ManualTimers(T0);
    let release: (c: WorkloadCertificate) => void = () => {};
    let fetches = 0;
    const holder = new CertificateHolder({
      identity: id,
      timers,
      fetch: () => {
        fetches++;
        return fetches === 1 ? Promise.resolve(c1) : new Promise((r) => (release = r));
      },
    });
    holder.start();
    await timers.advance(0);
    assert.equal(timers.pendingCount, 1, "refresh scheduled");
    await timers.advance(12 * HOUR);
    assert.equal(fetches, 2);
    const stoppedReady = holder.refresh(); // joins the in-flight fetch
    holder.stop();
    assert.equal(timers.pendingCount, 0);
    release(c1);
    await stoppedReady;
    await timers.advance(48 * HOUR);
    assert.equal(timers.pendingCount, 0);
    assert.equal(fetches, 2);
    assert.deepEqual(holder.state, { status: "stopped" });
    await assert.rejects(holder.ready(), { code: "IDENTITY_HOLDER_STOPPED" });
    assert.throws(() => holder.certificate(), { code: "IDENTITY_HOLDER_STOPPED" });
  });

  it("refresh() fetches at once and reschedules", async () => {
    const c1 = await cert(T0, 24 * HOUR);
    const c2 = await cert(T0 + HOUR, 24 * HOUR);
    const { holder, timers, calls } = holderWith([c1, c2]);
    holder.start();
    await timers.advance(HOUR);
    await holder.refresh();
    assert.deepEqual(calls, [T0, T0 + HOUR]);
    assert.equal(holder.certificate(), c2);
    assert.equal(holder.nextFetchAt, T0 + HOUR + 12 * HOUR);
    assert.equal(timers.pendingCount, 1);
    holder.stop();
  });
});
