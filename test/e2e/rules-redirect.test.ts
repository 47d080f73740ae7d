/**
 * What the redirection rules do to real traffic (root). Three namespaces: a pod, its node
 * (forwarding, with the host probe SNAT) and a remote host behind the node. Listeners stand in
 * for ztunnel on 15001/15006/15008/15053 and for the app on 8080; each answers with where the
 * connection landed.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  applyHostProbeRules,
  applyPodRules,
  buildPodRules,
  defaultPodSettings,
  removeHostProbeRules,
  removePodRules,
} from "../../src/node-agent/rules/index.ts";
import { Sandbox, requireRoot, sh } from "./rules-helpers.ts";

const POD = "198.18.60.2";
const NODE_POD_SIDE = "198.18.60.1";
const REMOTE = "198.18.61.2";
const NODE_REMOTE_SIDE = "198.18.61.1";

// A client whose socket carries SO_MARK 0x539, like every socket ztunnel opens in a pod.
const markedClient = `
import json, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, 0x539)
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    print(data.decode().strip())
except OSError as e:
    print(json.dumps({"error": type(e).__name__}))
`;

describe("redirection rules on live traffic", () => {
  const box = new Sandbox("rdr");
  let pod = "";
  let node = "";
  let remote = "";

  before(async () => {
    requireRoot();
    pod = box.netns("pod");
    node = box.netns("node");
    remote = box.netns("remote");
    box.link(node, "vpod", `${NODE_POD_SIDE}/24`, pod, "eth0", `${POD}/24`);
    box.link(node, "vremote", `${NODE_REMOTE_SIDE}/24`, remote, "eth0", `${REMOTE}/24`);
    sh("ip", ["-n", pod, "route", "add", "default", "via", NODE_POD_SIDE]);
    sh("ip", ["-n", remote, "route", "add", "default", "via", NODE_REMOTE_SIDE]);
    sh("ip", ["netns", "exec", node, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);

    await box.serve(pod, "tcp-server", "0.0.0.0", "15001", "ztunnel-outbound");
    await box.serve(pod, "tcp-server", "0.0.0.0", "15006", "ztunnel-inbound");
    await box.serve(pod, "tcp-server", "0.0.0.0", "15008", "ztunnel-hbone");
    await box.serve(pod, "udp-server", "127.0.0.1", "15053", "ztunnel-dns");
    await box.serve(pod, "tcp-server", "0.0.0.0", "8080", "app");
    await box.serve(remote, "tcp-server", "0.0.0.0", "80", "remote-web");
    await box.serve(remote, "udp-server", "0.0.0.0", "53", "remote-dns");

    await applyPodRules(box.path(pod), buildPodRules(defaultPodSettings));
    await applyHostProbeRules(box.path(node), { ipv6: false, podIps: [POD] });
  });
  after(() => box.cleanup());

  it("sends the pod's outbound TCP to ztunnel's 15001, whatever the destination", async () => {
    const toRemote = await box.client(pod, "tcp-client", REMOTE, "80");
    assert.equal(toRemote["label"], "ztunnel-outbound");
    assert.match(String(toRemote["local"]), /:15001$/);
    const toVip = await box.client(pod, "tcp-client", "198.18.255.7", "80");
    assert.equal(toVip["label"], "ztunnel-outbound");
  });

  it("lets ztunnel's own marked (0x539) connections out unredirected", async () => {
    const out = await box.exec(pod, "python3", "-c", markedClient, REMOTE, "80");
    const answer = JSON.parse(out) as Record<string, string>;
    assert.equal(answer["label"], "remote-web");
    assert.match(answer["remote"]!, new RegExp(`^${POD.replaceAll(".", "\\.")}:`));
  });

  it("sends inbound TCP from another host to ztunnel's 15006, source preserved", async () => {
    const answer = await box.client(remote, "tcp-client", POD, "8080");
    assert.equal(answer["label"], "ztunnel-inbound");
    assert.equal(answer["local"], `${POD}:15006`);
    assert.match(String(answer["remote"]), new RegExp(`^${REMOTE.replaceAll(".", "\\.")}:`));
  });

  it("does not redirect inbound HBONE on 15008", async () => {
    const answer = await box.client(remote, "tcp-client", POD, "15008");
    assert.equal(answer["label"], "ztunnel-hbone");
  });

  it("lets node-local probes reach the app directly, SNAT-ed to 169.254.7.127", async () => {
    const answer = await box.client(node, "tcp-client", POD, "8080");
    assert.equal(answer["label"], "app");
    assert.match(String(answer["remote"]), /^169\.254\.7\.127:/);
  });

  it("does not redirect the app calling itself on its pod IP or on localhost", async () => {
    assert.equal((await box.client(pod, "tcp-client", POD, "8080"))["label"], "app");
    assert.equal((await box.client(pod, "tcp-client", "127.0.0.1", "8080"))["label"], "app");
  });

  it("sends DNS on UDP 53 to ztunnel's 15053 and the answer appears to come from the server asked", async () => {
    const answer = await box.client(pod, "udp-client", REMOTE, "53");
    assert.deepEqual((answer["reply"] as Record<string, string>)["label"], "ztunnel-dns");
    assert.equal(answer["from"], `${REMOTE}:53`);
  });

  it("after removal, traffic flows directly again", async () => {
    await removePodRules(box.path(pod));
    await removeHostProbeRules(box.path(node));
    assert.equal((await box.client(pod, "tcp-client", REMOTE, "80"))["label"], "remote-web");
    assert.equal((await box.client(remote, "tcp-client", POD, "8080"))["label"], "app");
    const dns = await box.client(pod, "udp-client", REMOTE, "53");
    assert.equal((dns["reply"] as Record<string, string>)["label"], "remote-dns");
    const probe = await box.client(node, "tcp-client", POD, "8080");
    assert.match(String(probe["remote"]), new RegExp(`^${NODE_POD_SIDE.replaceAll(".", "\\.")}:`));
  });
});
