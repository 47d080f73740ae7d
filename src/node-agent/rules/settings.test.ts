import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defaultPodSettings, podSettingsFromAnnotations } from "./settings.ts";

describe("podSettingsFromAnnotations", () => {
  it("keeps the node defaults without annotations", () => {
    const { settings, warnings } = podSettingsFromAnnotations({});
    assert.deepEqual(settings, { ...defaultPodSettings, rerouteVirtualInterfaces: [] });
    assert.deepEqual(warnings, []);
  });

  it("reads DNS capture, bypass and virtual interfaces like istio-cni", () => {
    const { settings, warnings } = podSettingsFromAnnotations({
      "ambient.istio.io/dns-capture": "false",
      "ambient.istio.io/bypass-inbound-capture": "True",
      "istio.io/reroute-virtual-interfaces": " en0ps1, en1ps1 ,,en0ps1",
    });
    assert.equal(settings.dnsCapture, false);
    assert.equal(settings.bypassInboundCapture, true);
    assert.deepEqual(settings.rerouteVirtualInterfaces, ["en0ps1", "en1ps1"]);
    assert.deepEqual(warnings, []);
  });

  it("lets a pod turn DNS capture on when the node has it off", () => {
    const { settings } = podSettingsFromAnnotations(
      { "ambient.istio.io/dns-capture": "1" },
      { ...defaultPodSettings, dnsCapture: false },
    );
    assert.equal(settings.dnsCapture, true);
  });

  it("ignores unparsable values and names them in warnings", () => {
    const { settings, warnings } = podSettingsFromAnnotations({
      "ambient.istio.io/dns-capture": "tweedledum",
      "ambient.istio.io/bypass-inbound-capture": "yes",
      "istio.io/reroute-virtual-interfaces": "asd^&&*$&*(#, ok0, waytoolonginterfacename",
    });
    assert.equal(settings.dnsCapture, true);
    assert.equal(settings.bypassInboundCapture, false);
    assert.deepEqual(settings.rerouteVirtualInterfaces, ["ok0"]);
    assert.equal(warnings.length, 4);
    assert.match(warnings[0]!, /dns-capture="tweedledum"/);
    assert.match(warnings[3]!, /waytoolonginterfacename/);
  });
});
