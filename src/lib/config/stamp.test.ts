import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Stamper } from "./stamp.ts";
import { uuidV5 } from "./uid.ts";
import { validateObject, type Draft } from "./validate.ts";

function draft(spec: object, labels: Record<string, string> = {}): Draft {
  const r = validateObject(
    {
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: "a", labels },
      spec,
    },
    { unknownFields: "reject" },
  );
  assert.ok(r.draft, JSON.stringify(r.issues));
  return r.draft;
}

describe("uuidV5", () => {
  it("is stable, name-based and version 5", () => {
    assert.equal(uuidV5("x"), uuidV5("x"));
    assert.notEqual(uuidV5("x"), uuidV5("y"));
    assert.match(
      uuidV5("x"),
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    // RFC 9562 test vector: DNS namespace, "www.example.com".
    const dns = Buffer.from("6ba7b8109dad11d180b400c04fd430c8", "hex");
    assert.equal(uuidV5("www.example.com", dns), "2ed6657d-e927-568b-95e1-2665a8aea6a2");
  });
});

describe("Stamper", () => {
  it("stamps generated fields and keeps them while nothing changes", () => {
    const s = new Stamper({ now: () => new Date("2025-02-03T04:05:06Z") });
    const a = s.stamp(undefined, draft({ action: "DENY" }));
    assert.equal(a.metadata.generation, 1);
    assert.equal(a.metadata.resourceVersion, "1");
    assert.equal(a.metadata.creationTimestamp, "2025-02-03T04:05:06.000Z");
    assert.equal(a.metadata.uid, uuidV5("AuthorizationPolicy/default/a#0"));
    assert.ok(Object.isFrozen(a.spec));
    assert.equal(s.stamp(a, draft({ action: "DENY" })), a);
  });

  it("bumps generation on spec changes only, resourceVersion on any change", () => {
    const s = new Stamper();
    const a = s.stamp(undefined, draft({ action: "DENY" }));
    const b = s.stamp(a, draft({ action: "DENY" }, { team: "x" }));
    assert.equal(b.metadata.generation, 1);
    assert.equal(b.metadata.resourceVersion, "2");
    assert.equal(b.metadata.uid, a.metadata.uid);
    const c = s.stamp(b, draft({ action: "ALLOW" }, { team: "x" }));
    assert.equal(c.metadata.generation, 2);
    assert.equal(c.metadata.resourceVersion, "3");
  });

  it("gives a recreated object a new uid", () => {
    const s = new Stamper();
    const a = s.stamp(undefined, draft({}));
    s.deleted("AuthorizationPolicy/default/a");
    const b = s.stamp(undefined, draft({}));
    assert.notEqual(a.metadata.uid, b.metadata.uid);
    assert.equal(b.metadata.generation, 1);
  });

  it("applies status and annotation overlays", () => {
    const s = new Stamper();
    const a = s.stamp(undefined, draft({}));
    const b = s.stamp(a, draft({}), { status: { conditions: [] }, annotations: { "x/y": "z" } });
    assert.deepEqual(b.status, { conditions: [] });
    assert.deepEqual(b.metadata.annotations, { "x/y": "z" });
    assert.equal(b.metadata.generation, 1);
    const c = s.stamp(b, draft({}), { annotations: { "x/y": null } });
    assert.deepEqual(c.metadata.annotations, {});
  });
});
