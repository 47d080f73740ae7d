/**
 * The ambient index fed by the real config store: the store's objects (EndpointSlice fields under
 * `spec`, defaulted metadata) and batches give the same resources as the raw documents.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { MemoryConfigStore } from "../../lib/config/index.ts";
import type { ConfigBatch, ConfigObject, Manifest } from "../../lib/config/index.ts";
import { LogOutput, MemorySink } from "../../lib/log/index.ts";
import { snapshotFromStore } from "../model/index.ts";
import type {
  AuthorizationPolicy,
  EndpointSlice,
  Gateway,
  GatewayClass,
  Namespace,
  Node,
  PeerAuthentication,
  Pod,
  Service,
  ServiceEntry,
  WorkloadEntry,
} from "../model/index.ts";
import { AmbientIndex } from "./index.ts";

// Compile-time: the store's typed objects are the model's objects, kind by kind.
export const asModel = {
  namespace: (o: ConfigObject<"Namespace">): Namespace => o,
  node: (o: ConfigObject<"Node">): Node => o,
  pod: (o: ConfigObject<"Pod">): Pod => o,
  service: (o: ConfigObject<"Service">): Service => o,
  endpointSlice: (o: ConfigObject<"EndpointSlice">): EndpointSlice => o,
  serviceEntry: (o: ConfigObject<"ServiceEntry">): ServiceEntry => o,
  workloadEntry: (o: ConfigObject<"WorkloadEntry">): WorkloadEntry => o,
  gateway: (o: ConfigObject<"Gateway">): Gateway => o,
  gatewayClass: (o: ConfigObject<"GatewayClass">): GatewayClass => o,
  authorizationPolicy: (o: ConfigObject<"AuthorizationPolicy">): AuthorizationPolicy => o,
  peerAuthentication: (o: ConfigObject<"PeerAuthentication">): PeerAuthentication => o,
};

const testdata = join(import.meta.dirname, "testdata");

function manifests(name: string): Manifest[] {
  const text = readFileSync(join(testdata, name, "input.yaml"), "utf8");
  return parseAllDocuments(text)
    .map((d) => d.toJS() as unknown)
    .filter((v): v is Manifest => v !== null && v !== undefined);
}

function resources(index: AmbientIndex): string[] {
  return [
    ...index.addresses().map((r) => `${r.name} ${r.version}`),
    ...index.authorizations().map((r) => `${r.name} ${r.version}`),
  ];
}

describe("ambient index fed by the config store", () => {
  for (const name of readdirSync(testdata).sort()) {
    it(`${name}: store objects give the same resources as the documents`, async () => {
      const docs = manifests(name);
      const store = new MemoryConfigStore({
        log: new LogOutput({ sink: new MemorySink() }).logger("config"),
      });
      const fromBatches = new AmbientIndex();
      const batches: ConfigBatch[] = [];
      store.subscribe((b) => batches.push(b));
      await store.start();
      const result = store.set(...docs);
      // Some cases feed deliberately invalid values (bad ports, IPs) to check the conversion
      // copes; the store rejects those documents, so compare on what it accepted. Metadata the
      // store owns (uid, creationTimestamp; no deletionTimestamp from users) is taken from it.
      await Promise.resolve();
      for (const b of batches) fromBatches.applyBatch(b);
      const stored = new Map(
        result.applied.map((o) => [`${o.kind}/${o.metadata.namespace}/${o.metadata.name}`, o]),
      );
      const direct = new AmbientIndex();
      for (const doc of docs) {
        const kind = doc.kind;
        const ns =
          doc.metadata.namespace ??
          (["Namespace", "Node", "GatewayClass"].includes(kind) ? "" : "default");
        const s = stored.get(`${kind}/${ns}/${doc.metadata.name}`);
        if (s === undefined) continue;
        const { deletionTimestamp: _ignored, ...meta } = doc.metadata as Record<string, unknown>;
        const object = {
          ...doc,
          metadata: {
            ...meta,
            uid: s.metadata.uid,
            creationTimestamp: s.metadata.creationTimestamp,
          },
        };
        direct.apply([{ op: "upsert", object: object as unknown as Pod }]);
      }
      // Every document was either stored or rejected with a reason.
      const rejected = new Set(result.problems.map((p) => p.key));
      assert.equal(stored.size + rejected.size, docs.length);
      assert.deepEqual(resources(fromBatches), resources(direct));
      const fromSnapshot = new AmbientIndex();
      fromSnapshot.replace(snapshotFromStore(store));
      assert.deepEqual(resources(fromSnapshot), resources(direct));
    });
  }
});
