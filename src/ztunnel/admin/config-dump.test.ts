import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseIdentity } from "../../lib/identity/index.ts";
import { createTestPki } from "../../testing/pki.ts";
import { loadConfig } from "../config.ts";
import { dumpCertificate } from "../identity/index.ts";
import { ProxyState, applyLocalConfig, parseLocalConfig } from "../state/index.ts";
import { buildConfigDump } from "./config-dump.ts";

const testdata = join(import.meta.dirname, "testdata");
const GOLDEN = join(testdata, "config-dump.golden.json");

/** Replaces what changes from run to run (keys, serials, dates, versions) with placeholders. */
function normalise(value: unknown, key = ""): unknown {
  if (Array.isArray(value)) return value.map((v) => normalise(v, key));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalise(v, k)]));
  }
  if (typeof value !== "string") return value;
  if (key === "pem") return "<pem>";
  if (key === "serialNumber") return "<serial>";
  if (key === "validFrom" || key === "expirationTime") return "<time>";
  if (key === "version" || key === "nodeVersion") return "<version>";
  return value;
}

describe("config_dump", () => {
  it("matches the golden layout (volatile fields normalised)", async () => {
    const state = new ProxyState({ localNode: "node-a" });
    const parsed = parseLocalConfig(readFileSync(join(testdata, "state.yaml"), "utf8"));
    if (!parsed.ok) assert.fail(parsed.reason.join("\n"));
    applyLocalConfig(state, parsed.value);

    const pki = await createTestPki();
    const client = await pki.issue("spiffe://cluster.local/ns/default/sa/client");
    const config = loadConfig(
      {
        NODE_NAME: "node-a",
        POD_NAME: "ztunnel-a",
        XDS_ADDRESS: "https://istiod.istio-system.svc:15012",
        AUTH_TOKEN: "secret-token-value",
        ISTIO_META_DNS_CAPTURE: "true",
      },
      { fileExists: () => false },
    );
    const dump = buildConfigDump({
      state,
      config,
      staticConfig: undefined,
      version: { version: "1.2.3", nodeVersion: "v24" },
      certificates: [
        {
          identity: "spiffe://cluster.local/ns/default/sa/client",
          state: "Available",
          certChain: client.chainPem.map(dumpCertificate),
          rootCerts: client.rootsPem.map(dumpCertificate),
        },
        {
          identity: "spiffe://cluster.local/ns/default/sa/other",
          state: "Unavailable: the CA said no",
          certChain: [],
          rootCerts: [],
        },
      ],
      workloadState: {
        "pod-uid-1": {
          state: "Up",
          info: { name: "client-1", namespace: "default", serviceAccount: "client" },
        },
      },
    });

    // Round-trip through JSON, as the endpoint sends it.
    const json = normalise(JSON.parse(JSON.stringify(dump)));
    assert.ok(!JSON.stringify(dump).includes("secret-token-value"), "the token never appears");
    if (process.env["UPDATE_GOLDEN"] === "1") {
      writeFileSync(GOLDEN, JSON.stringify(json, null, 2) + "\n");
    }
    const golden: unknown = JSON.parse(readFileSync(GOLDEN, "utf8"));
    assert.deepEqual(json, golden);
    assert.ok(parseIdentity("spiffe://cluster.local/ns/default/sa/client").ok);
  });
});
