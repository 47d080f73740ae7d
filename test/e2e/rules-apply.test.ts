/**
 * Applying and removing in-pod redirection rules in real network namespaces (root): what the
 * kernel holds afterwards equals the committed golden files, a second apply changes nothing,
 * and removal leaves no table, chain, ip rule or route behind.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  applyHostProbeRules,
  applyPodRules,
  buildPodRules,
  defaultPodSettings,
  removeHostProbeRules,
  removePodRules,
  type PodRedirectionSettings,
} from "../../src/node-agent/rules/index.ts";
import { Sandbox, goldenSection, normaliseSave, requireRoot, sh } from "./rules-helpers.ts";

const testdata = join(import.meta.dirname, "../../src/node-agent/rules/testdata");

function golden(name: string): string {
  return readFileSync(join(testdata, `${name}.golden`), "utf8");
}

function save(ns: string, tool: "iptables-save" | "ip6tables-save" = "iptables-save"): string {
  return normaliseSave(sh("ip", ["netns", "exec", ns, tool]));
}

/** nft's view with rule handles: any rule re-added would get a new handle. */
function ruleset(ns: string): string {
  return sh("ip", ["netns", "exec", ns, "nft", "-a", "list", "ruleset"]);
}

function ipRules(ns: string, flag: "-4" | "-6"): string {
  return sh("ip", ["-n", ns, flag, "rule", "show"]);
}

function table100(ns: string, flag: "-4" | "-6"): string {
  try {
    return sh("ip", ["-n", ns, flag, "route", "show", "table", "100"]).trim();
  } catch (err) {
    // A routing table that was never used does not exist: it is empty.
    if (/table does not exist/.test(String((err as { stderr?: unknown }).stderr))) return "";
    throw err;
  }
}

function assertClean(ns: string): void {
  assert.equal(save(ns), "", "iptables-save should show no tables");
  assert.equal(save(ns, "ip6tables-save"), "", "ip6tables-save should show no tables");
  assert.equal(ruleset(ns).trim(), "", "nft should hold no tables at all");
  assert.doesNotMatch(ipRules(ns, "-4"), /fwmark|lookup 100/);
  assert.doesNotMatch(ipRules(ns, "-6"), /fwmark|lookup 100/);
  assert.equal(table100(ns, "-4"), "");
  assert.equal(table100(ns, "-6"), "");
}

const cases: Record<string, Partial<PodRedirectionSettings>> = {
  default: {},
  "dns-capture-off": { dnsCapture: false },
  ipv6: { ipv6: true },
  "bypass-inbound-capture": { bypassInboundCapture: true },
  "reroute-virtual-interfaces": { rerouteVirtualInterfaces: ["virt0", "tap+"] },
};

describe("redirection rules in a network namespace", () => {
  const box = new Sandbox("rules");
  before(() => requireRoot());
  after(() => box.cleanup());

  for (const [name, overrides] of Object.entries(cases)) {
    it(`apply gives exactly the golden rules, twice, and remove cleans up: ${name}`, async () => {
      const ns = box.netns(name.slice(0, 6));
      const rules = buildPodRules({ ...defaultPodSettings, ...overrides });
      const g = golden(name);

      await applyPodRules(box.path(ns), rules);
      assert.equal(save(ns), goldenSection(g, "iptables-restore"));
      assert.equal(save(ns, "ip6tables-save"), goldenSection(g, "ip6tables-restore"));
      assert.match(ipRules(ns, "-4"), /^32764:\s+from all fwmark 0x111\/0xfff lookup 100$/m);
      assert.equal(table100(ns, "-4"), "local default dev lo scope host");
      if (overrides.ipv6) {
        assert.match(ipRules(ns, "-6"), /^32764:\s+from all fwmark 0x111\/0xfff lookup 100$/m);
        assert.match(table100(ns, "-6"), /^local default dev lo /);
      } else {
        assert.doesNotMatch(ipRules(ns, "-6"), /fwmark/);
      }

      // A second apply is a no-op: same rules, same nft handles, one ip rule.
      const before = ruleset(ns);
      await applyPodRules(box.path(ns), rules);
      assert.equal(ruleset(ns), before);
      assert.equal(ipRules(ns, "-4").match(/fwmark/g)?.length, 1);

      await removePodRules(box.path(ns));
      assertClean(ns);
      // Removing again, from a namespace with nothing of ours, is fine.
      await removePodRules(box.path(ns));
      assertClean(ns);
    });
  }

  it("re-applying with other settings replaces the rules (DNS off, then IPv6 off)", async () => {
    const ns = box.netns("change");
    await applyPodRules(box.path(ns), buildPodRules({ ...defaultPodSettings, ipv6: true }));
    await applyPodRules(box.path(ns), buildPodRules({ ...defaultPodSettings, dnsCapture: false }));
    assert.equal(save(ns), goldenSection(golden("dns-capture-off"), "iptables-restore"));
    // The IPv6 rules, ip rule and route from the first apply are gone.
    assert.equal(save(ns, "ip6tables-save"), "");
    assert.doesNotMatch(ipRules(ns, "-6"), /fwmark/);
    assert.equal(table100(ns, "-6"), "");
    await removePodRules(box.path(ns));
    assertClean(ns);
  });

  it("leaves other people's rules alone and repairs a missing or doubled jump", async () => {
    const ns = box.netns("foreign");
    sh("ip", [
      "netns",
      "exec",
      ns,
      "iptables",
      "-t",
      "nat",
      "-A",
      "POSTROUTING",
      "-o",
      "lo",
      "-j",
      "ACCEPT",
    ]);
    const rules = buildPodRules(defaultPodSettings);
    await applyPodRules(box.path(ns), rules);
    sh("ip", [
      "netns",
      "exec",
      ns,
      "iptables",
      "-t",
      "nat",
      "-D",
      "PREROUTING",
      "-j",
      "ISTIO_PRERT",
    ]);
    sh("ip", [
      "netns",
      "exec",
      ns,
      "iptables",
      "-t",
      "mangle",
      "-A",
      "OUTPUT",
      "-j",
      "ISTIO_OUTPUT",
    ]);
    await applyPodRules(box.path(ns), rules);
    // iptables-save lists built-in chains' rules first: the foreign rule follows our two jumps.
    const expected = goldenSection(golden("default"), "iptables-restore").replace(
      "*nat\n:ISTIO_OUTPUT - [0:0]\n:ISTIO_PRERT - [0:0]\n-A PREROUTING -j ISTIO_PRERT\n-A OUTPUT -j ISTIO_OUTPUT\n",
      "*nat\n:ISTIO_OUTPUT - [0:0]\n:ISTIO_PRERT - [0:0]\n-A PREROUTING -j ISTIO_PRERT\n-A OUTPUT -j ISTIO_OUTPUT\n-A POSTROUTING -o lo -j ACCEPT\n",
    );
    assert.notEqual(expected, goldenSection(golden("default"), "iptables-restore"));
    assert.equal(save(ns), expected);
    await removePodRules(box.path(ns));
    assert.equal(save(ns), "*nat\n-A POSTROUTING -o lo -j ACCEPT\nCOMMIT");
  });

  it("reports a missing namespace by path", async () => {
    const missing = `/run/netns/${box.prefix}-missing`;
    await assert.rejects(applyPodRules(missing, buildPodRules(defaultPodSettings)), {
      code: "RULES_NETNS_MISSING",
      message: new RegExp(`network namespace ${missing} does not exist`),
    });
    await assert.rejects(removePodRules(missing), { code: "RULES_NETNS_MISSING" });
  });

  it("names the command, the namespace and stderr when a command fails", async () => {
    // A path that exists but is not a network namespace: nsenter refuses it.
    const bogus = join("/tmp", `${box.prefix}-not-a-netns`);
    writeFileSync(bogus, "");
    try {
      await assert.rejects(
        applyPodRules(bogus, buildPodRules(defaultPodSettings)),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, "RULES_COMMAND_FAILED");
          assert.match(
            err.message,
            new RegExp(`in netns ${bogus} failed with exit code \\d+: nsenter: `),
          );
          return true;
        },
      );
      await assert.rejects(removePodRules(bogus), {
        code: "RULES_COMMAND_FAILED",
        message: /nsenter: /,
      });
    } finally {
      sh("rm", ["-f", bogus]);
    }
  });

  it("installs, updates and removes the host probe SNAT table", async () => {
    const ns = box.netns("host");
    await applyHostProbeRules(box.path(ns), { ipv6: false, podIps: ["198.18.50.2"] });
    await applyHostProbeRules(box.path(ns), {
      ipv6: false,
      podIps: ["198.18.50.2", "198.18.50.3"],
    });
    const text = sh("ip", [
      "netns",
      "exec",
      ns,
      "nft",
      "list",
      "table",
      "inet",
      "istio-ambient-nat",
    ]);
    assert.match(text, /elements = \{ 198\.18\.50\.2, 198\.18\.50\.3 \}/);
    assert.equal(text.match(/snat ip to 169\.254\.7\.127/g)?.length, 1);
    await removeHostProbeRules(box.path(ns));
    assert.equal(ruleset(ns).trim(), "");
    await removeHostProbeRules(box.path(ns));
  });
});
