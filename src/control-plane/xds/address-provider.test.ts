import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { AddressSchema, WorkloadSchema } from "../../lib/gen/istio/workload/workload_pb.ts";
import { ADDRESS_TYPE_URL, storeResource } from "../../lib/xds/index.ts";
import { AddressProvider } from "./address-provider.ts";
import { workloadPayload } from "./workload-provider.ts";

const res = (
  name: string,
  version: string,
  extra: { aliases?: string[]; related?: string[] } = {},
) => storeResource(ADDRESS_TYPE_URL, { name, version, resource: new Uint8Array([1]), ...extra });

describe("AddressProvider", () => {
  it("answers get() for the name names() just yielded, and any other name, correctly", () => {
    const p = new AddressProvider();
    p.upsert([res("a", "1"), res("b", "1"), res("c", "1")]);
    const seen: string[] = [];
    for (const n of p.names()) {
      assert.equal(p.get(n)?.name, n);
      assert.equal(p.get("b")?.name, "b");
      seen.push(n);
    }
    assert.deepEqual(seen, ["a", "b", "c"]);
  });

  it("forgets the cursor when iteration ends early, and on writes", () => {
    const p = new AddressProvider();
    p.upsert([res("a", "1"), res("b", "1")]);
    for (const n of p.names()) {
      assert.equal(n, "a");
      break;
    }
    p.remove(["a"]);
    assert.equal(p.get("a"), undefined);
    const it = p.names()[Symbol.iterator]();
    assert.equal(it.next().value, "b");
    p.upsert([res("b", "2")]);
    assert.equal(p.get("b")?.version, "2", "a write mid-iteration is seen");
  });

  it("indexes aliases and related names, and reports only version changes", () => {
    const p = new AddressProvider();
    assert.deepEqual(p.upsert([res("w", "1", { aliases: ["/198.18.0.1"], related: ["ns/svc"] })]), [
      "w",
    ]);
    assert.deepEqual(
      p.upsert([res("w", "1", { aliases: ["/198.18.0.1"], related: ["ns/svc"] })]),
      [],
    );
    assert.deepEqual([...p.withAlias("/198.18.0.1")], ["w"]);
    assert.deepEqual([...p.dependents("ns/svc")], ["w"]);
    p.upsert([res("w", "2", { aliases: ["/198.18.0.2"] })]);
    assert.deepEqual([...p.withAlias("/198.18.0.1")], []);
    assert.deepEqual([...p.dependents("ns/svc")], []);
    assert.deepEqual(p.remove(["w", "x"]), ["w"]);
    assert.equal(p.size, 0);
  });
});

describe("workloadPayload", () => {
  it("finds the Workload inside an encoded Address{workload}, nothing in an Address{service}", () => {
    const big = "x".repeat(300); // a two-byte length
    const addr = create(AddressSchema, {
      type: { case: "workload", value: { uid: "u", name: big, node: "n" } },
    });
    const inner = workloadPayload(toBinary(AddressSchema, addr));
    assert.ok(inner !== undefined);
    const w = fromBinary(WorkloadSchema, inner);
    assert.equal(w.name, big);
    assert.equal(w.node, "n");
    const svc = create(AddressSchema, { type: { case: "service", value: { name: "s" } } });
    assert.equal(workloadPayload(toBinary(AddressSchema, svc)), undefined);
  });
});
