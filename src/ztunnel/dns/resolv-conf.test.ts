import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AmbientError } from "../../lib/errors.ts";
import { kubernetesSearchDomains, parseResolvConf, readResolvConf } from "./resolv-conf.ts";

describe("parseResolvConf", () => {
  it("reads a Kubernetes pod's resolv.conf", () => {
    const c = parseResolvConf(
      [
        "search istio-system.svc.cluster.local svc.cluster.local cluster.local",
        "nameserver 198.18.0.10",
        "options ndots:5",
        "",
      ].join("\n"),
    );
    assert.deepEqual(c.nameservers, [{ address: "198.18.0.10", port: 53 }]);
    assert.deepEqual(c.search, [
      "istio-system.svc.cluster.local",
      "svc.cluster.local",
      "cluster.local",
    ]);
    assert.equal(c.ndots, 5);
    assert.equal(c.timeoutSeconds, 5);
    assert.equal(c.attempts, 2);
    assert.deepEqual(c.problems, []);
  });

  it("keeps nameserver order, canonicalises IPv6, drops zones, skips bad lines", () => {
    const c = parseResolvConf(
      [
        "# comment",
        "nameserver 198.18.0.1 ; trailing comment",
        "nameserver 2001:DB8:0::53",
        "nameserver fe80::1%eth0",
        "nameserver not-an-ip",
        "nameserver",
        "bogus line",
        "options timeout:1 attempts:3 rotate edns0 ndots:x",
        "sortlist 198.18.0.0/15",
      ].join("\r\n"),
    );
    assert.deepEqual(
      c.nameservers.map((n) => n.address),
      ["198.18.0.1", "2001:db8::53", "fe80::1"],
    );
    assert.equal(c.timeoutSeconds, 1);
    assert.equal(c.attempts, 3);
    assert.equal(c.rotate, true);
    assert.equal(c.ndots, 1);
    assert.deepEqual(c.problems, [
      'line 5: "not-an-ip" is not an IP address',
      'line 6: "" is not an IP address',
      'line 7: unknown keyword "bogus"',
    ]);
  });

  it("domain and search replace each other; the last wins", () => {
    assert.deepEqual(parseResolvConf("search a.example b.example\ndomain Corp.Example.\n").search, [
      "corp.example",
    ]);
    assert.deepEqual(parseResolvConf("domain corp.example\nsearch a.example.\n").search, [
      "a.example",
    ]);
  });

  it("an empty file has no nameservers", () => {
    assert.deepEqual(parseResolvConf("").nameservers, []);
  });
});

describe("readResolvConf", () => {
  it("reads a file", () => {
    const dir = mkdtempSync(join(tmpdir(), "amb-dns-"));
    try {
      const p = join(dir, "resolv.conf");
      writeFileSync(p, "nameserver 198.18.0.53\n");
      assert.deepEqual(readResolvConf(p).nameservers, [{ address: "198.18.0.53", port: 53 }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a missing file is an operator error with a code", () => {
    assert.throws(
      () => readResolvConf("/nonexistent/resolv.conf"),
      (e: unknown) =>
        e instanceof AmbientError &&
        e.code === "EDNS_RESOLV_CONF" &&
        e.message.includes("/nonexistent/resolv.conf") &&
        e.message.includes("ENOENT"),
    );
  });
});

describe("kubernetesSearchDomains", () => {
  it("is the pod's namespace, svc and the cluster domain", () => {
    assert.deepEqual(kubernetesSearchDomains("default-ns", "cluster.local."), [
      "default-ns.svc.cluster.local",
      "svc.cluster.local",
      "cluster.local",
    ]);
  });
});
