/**
 * The plugin-event and state-file parsers under mutation: text that arrives over the event socket
 * or from disk never makes them throw; every outcome is a value or a reason. Deterministic
 * (seeded), bounded in count.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseAddEvent, parseDelEvent } from "./plugin-event.ts";
import { parseState, renderState } from "./state-file.ts";

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const pieces = [
  '"',
  "{",
  "}",
  "[",
  "]",
  ",",
  ":",
  "null",
  "1e999",
  "-0",
  "\\u0000",
  "true",
  " ",
  '"IPs"',
  "/",
];

function mutate(text: string, rand: () => number): string {
  let out = text;
  const edits = 1 + Math.floor(rand() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rand() * (out.length + 1));
    const op = rand();
    if (op < 0.4)
      out = out.slice(0, at) + pieces[Math.floor(rand() * pieces.length)]! + out.slice(at);
    else if (op < 0.8) out = out.slice(0, at) + out.slice(at + 1 + Math.floor(rand() * 8));
    else out = out.slice(0, at) + out.slice(at, at + 16) + out.slice(at);
  }
  return out;
}

const addBody = JSON.stringify({
  CmdAddEvent: {
    ContainerID: "c1",
    Netns: "/var/run/netns/cni-1",
    Args: "K8S_POD_NAMESPACE=apps;K8S_POD_NAME=web;K8S_POD_UID=u1",
  },
  PodName: "web",
  PodNamespace: "apps",
  IPs: [{ Address: { IP: "198.18.0.5", Mask: "////AA==" } }, "198.18.0.6/24"],
});
const stateText = renderState([
  {
    uid: "u1",
    namespace: "apps",
    name: "web",
    netns: "/run/netns/web",
    containerId: "c1",
    ips: ["198.18.0.5"],
    captured: true,
  },
]);

describe("parsers under mutation", () => {
  it("400 mutated plugin events and state files: values, never exceptions", () => {
    const rand = prng(20261122);
    let rejected = 0;
    for (let i = 0; i < 400; i++) {
      const add = parseAddEvent(mutate(addBody, rand));
      const del = parseDelEvent(mutate(addBody, rand));
      const state = parseState(mutate(stateText, rand));
      if (!add.ok) {
        assert.ok(add.reason.length > 0);
        rejected++;
      } else {
        assert.ok(add.value.netns.startsWith("/"));
      }
      if (!del.ok) assert.ok(del.reason.length > 0);
      for (const p of state.pods) assert.ok(p.netns.startsWith("/") && p.uid !== "");
    }
    assert.ok(rejected > 50, `mutations should break many inputs (${rejected})`);
  });
});
