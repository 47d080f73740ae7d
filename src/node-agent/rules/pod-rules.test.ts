import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { buildHostProbeNft } from "./host-probe.ts";
import {
  buildPodRules,
  renderPodRules,
  renderRestore,
  renderRoutingCommands,
} from "./pod-rules.ts";
import { defaultPodSettings, type PodRedirectionSettings } from "./settings.ts";

const testdata = join(import.meta.dirname, "testdata");

/** Compares with the committed golden file; `UPDATE_GOLDEN=1` rewrites it instead. */
function golden(name: string, actual: string): void {
  const file = join(testdata, name);
  if (process.env["UPDATE_GOLDEN"] === "1") writeFileSync(file, actual);
  assert.equal(actual, readFileSync(file, "utf8"), `output differs from ${file}`);
}

const cases: Record<string, Partial<PodRedirectionSettings>> = {
  default: {},
  "dns-capture-off": { dnsCapture: false },
  ipv6: { ipv6: true },
  "bypass-inbound-capture": { bypassInboundCapture: true },
  "reroute-virtual-interfaces": { rerouteVirtualInterfaces: ["virt0", "tap+"] },
};

describe("pod redirection rules", () => {
  for (const [name, overrides] of Object.entries(cases)) {
    it(`matches the golden output: ${name}`, () => {
      const rules = buildPodRules({ ...defaultPodSettings, ...overrides });
      golden(`${name}.golden`, renderPodRules(rules));
    });
  }

  it("redirects outbound to 15001, inbound to 15006 and DNS to 15053 by default", () => {
    const [v4] = buildPodRules(defaultPodSettings).families;
    const text = renderRestore(v4!);
    assert.match(
      text,
      /-A ISTIO_OUTPUT ! -d 127\.0\.0\.1\/32 -p tcp -m mark ! --mark 0x539\/0xfff -j REDIRECT --to-ports 15001\n/,
    );
    assert.match(
      text,
      /-A ISTIO_PRERT ! -d 127\.0\.0\.1\/32 -p tcp -m tcp ! --dport 15008 -m mark ! --mark 0x539\/0xfff -j REDIRECT --to-ports 15006\n/,
    );
    assert.match(text, /--dport 53 -j REDIRECT --to-ports 15053\n/);
    assert.match(text, /^\*raw$/m);
  });

  it("has no raw table and no port-53 rules without DNS capture", () => {
    const [v4] = buildPodRules({ ...defaultPodSettings, dnsCapture: false }).families;
    const text = renderRestore(v4!);
    assert.doesNotMatch(text, /\*raw/);
    assert.doesNotMatch(text, /15053|dport 53|sport 53/);
  });

  it("keeps the connmark rule but skips inbound capture and the probe bypass in bypass mode", () => {
    const [v4] = buildPodRules({ ...defaultPodSettings, bypassInboundCapture: true }).families;
    const text = renderRestore(v4!);
    assert.doesNotMatch(text, /15006/);
    assert.doesNotMatch(text, /-s 169\.254\.7\.127/);
    assert.match(
      text,
      /-A ISTIO_PRERT -m mark --mark 0x539\/0xfff -j CONNMARK --set-xmark 0x111\/0xfff/,
    );
    // The nat chain still exists (it is jumped to) and outbound is still captured.
    assert.match(
      text,
      /:ISTIO_PRERT - \[0:0\]\n:ISTIO_OUTPUT|:ISTIO_OUTPUT - \[0:0\]\n:ISTIO_PRERT/,
    );
    assert.match(text, /--to-ports 15001/);
  });

  it("puts virtual interface redirects first in nat ISTIO_PRERT", () => {
    const [v4] = buildPodRules({
      ...defaultPodSettings,
      rerouteVirtualInterfaces: ["virt0"],
    }).families;
    const prert = v4!.rules.filter((r) => r.table === "nat" && r.chain === "ISTIO_PRERT");
    assert.deepEqual(
      prert.slice(0, 2).map((r) => r.spec),
      ["-i virt0 -p tcp -j REDIRECT --to-ports 15001", "-i virt0 -p tcp -j RETURN"],
    );
  });

  it("uses the IPv6 loopback and probe addresses for ip6tables", () => {
    const rules = buildPodRules({ ...defaultPodSettings, ipv6: true });
    assert.deepEqual(
      rules.families.map((f) => f.family),
      ["ipv4", "ipv6"],
    );
    const text = renderRestore(rules.families[1]!);
    assert.match(text, /! -d ::1\/128/);
    assert.match(text, /-s fd16:9254:7127:1337:ffff:ffff:ffff:ffff\/128/);
    assert.doesNotMatch(text, /127\.0\.0\.1|169\.254/);
    assert.deepEqual(renderRoutingCommands(rules.families[1]!), [
      "ip -6 rule add fwmark 0x111/0xfff pref 32764 lookup 100",
      "ip -6 route replace local ::/0 dev lo table 100",
    ]);
  });

  it("refuses settings that would put junk into iptables", () => {
    assert.throws(
      () => buildPodRules({ ...defaultPodSettings, rerouteVirtualInterfaces: ["eth0 -j ACCEPT"] }),
      { code: "RULES_INVALID_SETTINGS", message: /"eth0 -j ACCEPT" is not a valid interface name/ },
    );
    assert.throws(() => buildPodRules({ ...defaultPodSettings, probeSnatIpv4: "::1" }), {
      code: "RULES_INVALID_SETTINGS",
    });
    assert.throws(() => buildPodRules({ ...defaultPodSettings, ipv4: false, ipv6: false }), {
      code: "RULES_INVALID_SETTINGS",
    });
  });
});

describe("host probe rules", () => {
  it("matches the golden output", () => {
    golden(
      "host-probe.golden",
      buildHostProbeNft({ ipv6: false, podIps: ["198.19.1.3", "198.19.1.2", "198.19.1.3"] }),
    );
  });

  it("matches the golden output with IPv6 and no pods yet", () => {
    golden("host-probe-ipv6.golden", buildHostProbeNft({ ipv6: true, podIps: [] }));
  });

  it("rejects addresses that are not IPs", () => {
    assert.throws(() => buildHostProbeNft({ ipv6: false, podIps: ["198.19.1.2; flush ruleset"] }), {
      code: "RULES_INVALID_SETTINGS",
    });
    assert.throws(() => buildHostProbeNft({ ipv6: false, podIps: ["fd00::1"] }), {
      message: /IPv6 is not enabled/,
    });
  });
});
