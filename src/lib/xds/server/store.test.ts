import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { ResourceSchema } from "../../gen/envoy/service/discovery/v3/discovery_pb.ts";
import { AddressSchema, ServiceSchema } from "../../gen/istio/workload/workload_pb.ts";
import { AmbientError } from "../../errors.ts";
import { encodeMessage } from "../../proto/index.ts";
import { storeResource } from "./resource.ts";
import { ResourceStore } from "./store.ts";

const URL = "type.googleapis.com/istio.workload.Address";
const bytes = (s: string) => new TextEncoder().encode(s);

describe("storeResource", () => {
  it("encodes an envoy Resource once, with name, version, aliases and an Any of the type", () => {
    const address = create(AddressSchema, {
      type: { case: "service", value: { name: "echo", namespace: "ns1" } },
    });
    for (const payload of [
      address,
      anyPack(AddressSchema, address),
      encodeMessage(AddressSchema, address),
    ]) {
      const r = storeResource(
        URL,
        { name: "ns1/echo", version: "7", resource: payload, aliases: ["/198.18.5.5"] },
        AddressSchema,
      );
      const decoded = fromBinary(ResourceSchema, r.encoded);
      assert.equal(decoded.name, "ns1/echo");
      assert.equal(decoded.version, "7");
      assert.deepEqual(decoded.aliases, ["/198.18.5.5"]);
      assert.equal(decoded.resource?.typeUrl, URL);
      assert.deepEqual(decoded.resource?.value, encodeMessage(AddressSchema, address));
    }
  });

  it("defaults the version to a content hash that sees aliases too", () => {
    const a = storeResource(URL, { name: "x", resource: bytes("one") });
    const b = storeResource(URL, { name: "x", resource: bytes("one") });
    const c = storeResource(URL, { name: "x", resource: bytes("one"), aliases: ["/198.18.0.1"] });
    const d = storeResource(URL, { name: "x", resource: bytes("two") });
    assert.equal(a.version, b.version);
    assert.notEqual(a.version, c.version);
    assert.notEqual(a.version, d.version);
    assert.match(a.version, /^[A-Za-z0-9_-]{16}$/);
  });

  it("refuses payloads of another type, and empty names", () => {
    const svc = create(ServiceSchema, { name: "s" });
    assert.throws(
      () => storeResource(URL, { name: "x", resource: anyPack(ServiceSchema, svc) }),
      (e: unknown) => e instanceof AmbientError && e.code === "ERR_XDS_RESOURCE_TYPE",
    );
    assert.throws(
      () => storeResource(URL, { name: "x", resource: svc }, AddressSchema),
      /istio.workload.Service message, but .* with schema istio.workload.Address/,
    );
    assert.throws(() => storeResource(URL, { name: "", resource: bytes("x") }), /empty name/);
  });
});

describe("ResourceStore", () => {
  it("reports only version changes and keeps alias and related indexes current", () => {
    const s = new ResourceStore(URL);
    assert.deepEqual(
      s.upsert([
        { name: "svc", version: "1", resource: bytes("s"), aliases: ["/198.18.5.5"] },
        {
          name: "pod",
          version: "1",
          resource: bytes("p"),
          aliases: ["/198.18.1.1"],
          related: ["svc"],
        },
      ]),
      ["svc", "pod"],
    );
    assert.deepEqual(s.upsert([{ name: "svc", version: "1", resource: bytes("s") }]), []);
    assert.deepEqual([...s.withAlias("/198.18.5.5")], ["svc"]);
    assert.deepEqual([...s.dependents("svc")], ["pod"]);

    s.upsert([{ name: "pod", version: "2", resource: bytes("p"), aliases: ["/198.18.1.2"] }]);
    assert.deepEqual([...s.withAlias("/198.18.1.1")], []);
    assert.deepEqual([...s.withAlias("/198.18.1.2")], ["pod"]);
    assert.deepEqual([...s.dependents("svc")], []);

    assert.deepEqual(s.remove(["pod", "missing"]), ["pod"]);
    assert.deepEqual([...s.withAlias("/198.18.1.2")], []);
    assert.equal(s.size, 1);
  });

  it("replace() keeps exactly the given set", () => {
    const s = new ResourceStore(URL);
    s.upsert([
      { name: "a", version: "1", resource: bytes("a") },
      { name: "b", version: "1", resource: bytes("b") },
    ]);
    assert.deepEqual(
      s.replace([
        { name: "a", version: "1", resource: bytes("a") },
        { name: "c", version: "1", resource: bytes("c") },
      ]),
      ["c", "b"],
    );
    assert.deepEqual([...s.names()].sort(), ["a", "c"]);
  });

  it("leaves the store untouched when one payload of a batch is bad", () => {
    const s = new ResourceStore(URL, AddressSchema);
    assert.throws(() =>
      s.upsert([
        { name: "a", version: "1", resource: bytes("a") },
        { name: "b", version: "1", resource: create(ServiceSchema, {}) },
      ]),
    );
    assert.equal(s.size, 0);
  });
});
