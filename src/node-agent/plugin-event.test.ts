import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseAddEvent, parseCniArgs, parseDelEvent } from "./plugin-event.ts";

// What istio-cni's plugin posts: Go's JSON of CNIPluginAddEvent (net.IPNet's Mask is base64).
const istioBody = {
  CmdAddEvent: {
    ContainerID: "3f1c0d",
    Netns: "/var/run/netns/cni-1234",
    IfName: "eth0",
    Args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=apps;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=3f1c0d;K8S_POD_UID=0b6f-11",
    Path: "/opt/cni/bin",
    StdinData: "eyJjbmlWZXJzaW9uIjoiMS4wLjAifQ==",
  },
  PodName: "web-0",
  PodNamespace: "apps",
  IPs: [
    { Interface: 0, Address: { IP: "198.18.0.5", Mask: "////AA==" }, Gateway: "198.18.0.1" },
    { Address: { IP: "fd00::5", Mask: "/////////////////////w==" }, Gateway: null },
  ],
};

describe("plugin events", () => {
  it("parses istio-cni's ADD body", () => {
    const r = parseAddEvent(JSON.stringify(istioBody));
    assert.ok(r.ok, r.ok ? "" : r.reason);
    assert.deepEqual(r.value, {
      podName: "web-0",
      podNamespace: "apps",
      podUid: "0b6f-11",
      containerId: "3f1c0d",
      netns: "/var/run/netns/cni-1234",
      ips: ["198.18.0.5", "fd00::5"],
    });
  });

  it("parses current istio-cni's ADD body, with Netns at the top level", () => {
    const r = parseAddEvent(
      JSON.stringify({
        Netns: "/run/netns/amb-k1-apps-web-0",
        PodName: "web-0",
        PodNamespace: "apps",
        IPs: [{ Address: { IP: "198.19.1.7", Mask: "/////w==" }, Gateway: "198.19.1.1" }],
      }),
    );
    assert.ok(r.ok, r.ok ? "" : r.reason);
    assert.equal(r.value.netns, "/run/netns/amb-k1-apps-web-0");
    assert.deepEqual(r.value.ips, ["198.19.1.7"]);
    assert.equal(r.value.podUid, undefined);
  });

  it("takes name and namespace from the CNI args, IPs as strings, no IPs at all", () => {
    const r = parseAddEvent(
      JSON.stringify({
        CmdAddEvent: { Netns: "/run/netns/x", Args: "K8S_POD_NAMESPACE=a;K8S_POD_NAME=b" },
        IPs: ["198.18.1.2/24"],
      }),
    );
    assert.ok(r.ok);
    assert.deepEqual(
      [r.value.podNamespace, r.value.podName, r.value.ips, r.value.podUid],
      ["a", "b", ["198.18.1.2"], undefined],
    );
    const none = parseAddEvent(JSON.stringify({ ...istioBody, IPs: null }));
    assert.ok(none.ok);
    assert.deepEqual(none.value.ips, []);
  });

  it("reports every problem of a bad ADD at once", () => {
    const r = parseAddEvent(JSON.stringify({ CmdAddEvent: { Netns: "netns-1" }, IPs: [{}] }));
    assert.ok(!r.ok);
    assert.match(r.reason, /PodName is missing/);
    assert.match(r.reason, /PodNamespace is missing/);
    assert.match(r.reason, /Netns "netns-1" is not a path/);
    assert.match(r.reason, /IPs\[0\] has no valid IP/);
    assert.match((parseAddEvent("nope") as { reason: string }).reason, /not JSON/);
    assert.match((parseAddEvent("[1]") as { reason: string }).reason, /not a JSON object/);
  });

  it("parses DEL (ours), with or without its own command block", () => {
    const r = parseDelEvent(
      JSON.stringify({ CmdDelEvent: { ContainerID: "c1" }, PodName: "p", PodNamespace: "n" }),
    );
    assert.ok(r.ok);
    assert.deepEqual(r.value, {
      podName: "p",
      podNamespace: "n",
      podUid: undefined,
      containerId: "c1",
    });
    assert.ok(!parseDelEvent("{}").ok);
  });

  it("CNI args tolerate spacing and empty parts", () => {
    assert.deepEqual(
      [...parseCniArgs(" A=1;;B = 2 ;C=").entries()],
      [
        ["A", "1"],
        ["B", "2"],
        ["C", ""],
      ],
    );
  });
});
