import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canonicalService, podServiceAccount, workloadOwnerOfPod } from "./workload-meta.ts";

const owned = (kind: string, name: string, labels: Record<string, string> = {}) => ({
  name: `${name}-xyz`,
  generateName: `${name}-`,
  labels,
  ownerReferences: [{ kind, name, controller: true }],
});

describe("workload owner heuristics (istiod GetDeployMetaFromPod)", () => {
  it("ReplicaSet with pod-template-hash → Deployment", () => {
    assert.deepEqual(
      workloadOwnerOfPod(owned("ReplicaSet", "web-5d4f8", { "pod-template-hash": "5d4f8" })),
      {
        name: "web",
        kind: "Deployment",
      },
    );
  });
  it("ReplicaSet without the hash stays a ReplicaSet", () => {
    assert.deepEqual(workloadOwnerOfPod(owned("ReplicaSet", "web")), {
      name: "web",
      kind: "ReplicaSet",
    });
  });
  it("Job with a timestamp suffix → CronJob; other Jobs stay Jobs", () => {
    assert.deepEqual(workloadOwnerOfPod(owned("Job", "report-28991234")), {
      name: "report",
      kind: "CronJob",
    });
    assert.deepEqual(workloadOwnerOfPod(owned("Job", "report-1234")), {
      name: "report-1234",
      kind: "Job",
    });
  });
  it("only generated pods look at owners; non-controller owners are ignored", () => {
    assert.deepEqual(
      workloadOwnerOfPod({
        name: "db-0",
        ownerReferences: [{ kind: "StatefulSet", name: "db", controller: true }],
      }),
      {
        name: "db-0",
        kind: "Pod",
      },
    );
    assert.deepEqual(
      workloadOwnerOfPod({
        name: "x-1",
        generateName: "x-",
        ownerReferences: [{ kind: "ReplicaSet", name: "x" }],
      }),
      {
        name: "x-1",
        kind: "Pod",
      },
    );
  });
  it("service.istio.io/workload-name overrides the name", () => {
    const meta = owned("ReplicaSet", "web-5d4f8", {
      "pod-template-hash": "5d4f8",
      "service.istio.io/workload-name": "custom",
    });
    assert.deepEqual(workloadOwnerOfPod(meta), { name: "custom", kind: "Deployment" });
  });
});

describe("canonicalService", () => {
  it("uses the first present label of each chain", () => {
    assert.deepEqual(
      canonicalService({ app: "a", "app.kubernetes.io/name": "k", version: "v1" }, "w"),
      { name: "k", revision: "v1" },
    );
    assert.deepEqual(canonicalService({ "service.istio.io/canonical-name": "c", app: "a" }, "w"), {
      name: "c",
      revision: "latest",
    });
  });
  it("falls back to the workload name and latest", () => {
    assert.deepEqual(canonicalService({}, "w"), { name: "w", revision: "latest" });
  });
});

describe("podServiceAccount", () => {
  it("defaults like the API server", () => {
    assert.equal(
      podServiceAccount({ apiVersion: "v1", kind: "Pod", metadata: { name: "p" } }),
      "default",
    );
    assert.equal(
      podServiceAccount({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "p" },
        spec: { serviceAccountName: "sa" },
      }),
      "sa",
    );
  });
});

describe("owners of pods from sources without generateName (the config store)", () => {
  it("still recognises Deployment and Job pods, and not StatefulSet pods", () => {
    const rs = {
      name: "web-5d4f8-abc",
      labels: { "pod-template-hash": "5d4f8" },
      ownerReferences: [{ kind: "ReplicaSet", name: "web-5d4f8", controller: true }],
    };
    assert.deepEqual(workloadOwnerOfPod(rs), { name: "web", kind: "Deployment" });
    const job = {
      name: "report-28991234-x",
      ownerReferences: [{ kind: "Job", name: "report-28991234", controller: true }],
    };
    assert.deepEqual(workloadOwnerOfPod(job), { name: "report", kind: "CronJob" });
    const sts = {
      name: "db-0",
      ownerReferences: [{ kind: "StatefulSet", name: "db", controller: true }],
    };
    assert.deepEqual(workloadOwnerOfPod(sts), { name: "db-0", kind: "Pod" });
  });
});
