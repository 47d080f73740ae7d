import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { DeltaDiscoveryResponseSchema } from "../../gen/envoy/service/discovery/v3/discovery_pb.ts";
import type { Address } from "../../gen/istio/workload/workload_pb.ts";
import { AddressSchema } from "../../gen/istio/workload/workload_pb.ts";
import { AuthorizationSchema } from "../../gen/istio/security/authorization_pb.ts";
import type { XdsBatch } from "./handler.ts";
import { ClientTypeState } from "./type-state.ts";

const URL = "type.googleapis.com/istio.workload.Address";
const node = {
  id: "ztunnel~198.18.0.1~z.istio-system~istio-system.svc.cluster.local",
  metadata: { NODE_NAME: "n1" },
};

const svc = (name: string) =>
  anyPack(
    AddressSchema,
    create(AddressSchema, { type: { case: "service", value: { name, namespace: "ns" } } }),
  );

function response(p: {
  nonce: string;
  resources?: {
    name: string;
    version: string;
    aliases?: string[];
    resource?: ReturnType<typeof svc>;
  }[];
  removed?: string[];
}) {
  return create(DeltaDiscoveryResponseSchema, {
    typeUrl: URL,
    nonce: p.nonce,
    resources: (p.resources ?? []).map((r) => ({
      name: r.name,
      version: r.version,
      aliases: r.aliases ?? [],
      ...(r.resource === undefined ? {} : { resource: r.resource }),
    })),
    removedResources: p.removed ?? [],
  });
}

/** A state whose handler records batches and refuses names in `refuse`. */
function state(onDemand = false, refuse: Set<string> = new Set()) {
  const batches: XdsBatch<Address>[] = [];
  const st = new ClientTypeState(
    {
      schema: AddressSchema,
      apply(batch: XdsBatch<Address>) {
        batches.push(batch);
        return batch.updates
          .filter((u) => refuse.has(u.name))
          .map((u) => ({ name: u.name, reason: "refused by handler" }));
      },
    },
    onDemand,
  );
  return { st, batches };
}

describe("ClientTypeState", () => {
  it("wildcard initial request: node, empty lists, held versions", () => {
    const { st } = state();
    st.process(
      response({ nonce: "1", resources: [{ name: "ns/a", version: "v1", resource: svc("a") }] }),
    );
    assert.deepEqual(st.initialRequest(node), {
      typeUrl: URL,
      node,
      resourceNamesSubscribe: [],
      resourceNamesUnsubscribe: [],
      initialResourceVersions: { "ns/a": "v1" },
    });
  });

  it("on-demand initial request subscribes and unsubscribes '*', plus names asked for", () => {
    const { st } = state(true);
    st.subscribe("/198.18.1.5");
    const req = st.initialRequest(node);
    assert.deepEqual(req.resourceNamesSubscribe, ["*", "/198.18.1.5"]);
    assert.deepEqual(req.resourceNamesUnsubscribe, ["*"]);
    // A type that opts out of on-demand stays wildcard.
    const auth = new ClientTypeState(
      { schema: AuthorizationSchema, onDemand: false, apply: () => undefined },
      true,
    );
    assert.equal(auth.onDemand, false);
    assert.deepEqual(auth.initialRequest(node).resourceNamesSubscribe, []);
  });

  it("applies good resources, NACKs only the bad ones (decode and handler), forgets them", () => {
    const { st, batches } = state(false, new Set(["ns/refused"]));
    const result = st.process(
      response({
        nonce: "n7",
        resources: [
          { name: "ns/good", version: "1", aliases: ["/198.18.5.5"], resource: svc("good") },
          {
            name: "ns/garbage",
            version: "1",
            resource: { ...svc("x"), value: new Uint8Array([0xff, 0xff]) },
          },
          { name: "ns/empty", version: "1" },
          { name: "ns/refused", version: "1", resource: svc("refused") },
        ],
        removed: ["ns/old"],
      }),
    );
    assert.deepEqual(
      batches[0]!.updates.map((u) => u.name),
      ["ns/good", "ns/refused"],
    );
    assert.deepEqual(batches[0]!.removed, ["ns/old"]);
    assert.equal(batches[0]!.updates[0]!.resource.type.case, "service");
    assert.deepEqual(
      result.rejected.map((r) => r.name),
      ["ns/garbage", "ns/empty", "ns/refused"],
    );
    assert.equal(result.request.typeUrl, URL);
    assert.equal(result.request.responseNonce, "n7");
    assert.match(
      result.request.errorDetail?.message ?? "",
      /^ns\/garbage: cannot decode istio\.workload\.Address \(2 bytes\): .+; ns\/empty: xDS resource without a payload; ns\/refused: refused by handler$/,
    );
    assert.deepEqual(Object.keys(st.initialRequest(node).initialResourceVersions ?? {}), [
      "ns/good",
    ]);
    assert.equal(st.holds("/198.18.5.5"), true);
    assert.deepEqual(result.arrived, [
      "ns/good",
      "/198.18.5.5",
      "ns/garbage",
      "ns/empty",
      "ns/refused",
    ]);
  });

  it("ACKs a clean batch without error detail; removals drop versions and aliases", () => {
    const { st } = state();
    st.process(
      response({
        nonce: "1",
        resources: [{ name: "ns/a", version: "1", aliases: ["/198.18.0.9"], resource: svc("a") }],
      }),
    );
    const r = st.process(response({ nonce: "2", removed: ["ns/a"] }));
    assert.deepEqual(r.request, { typeUrl: URL, responseNonce: "2" });
    assert.equal(st.holds("ns/a"), false);
    assert.equal(st.holds("/198.18.0.9"), false);
  });

  it("a throwing handler refuses the whole batch", () => {
    const st = new ClientTypeState(
      {
        schema: AddressSchema,
        apply: () => {
          throw new Error("state locked");
        },
      },
      false,
    );
    const r = st.process(
      response({ nonce: "1", resources: [{ name: "ns/a", version: "1", resource: svc("a") }] }),
    );
    assert.equal(r.request.errorDetail?.message, "ns/a: handler failed: state locked");
    assert.equal(st.heldCount, 0);
  });
});
