import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { describe, it } from "node:test";
import dnsPacket from "dns-packet";
import { LogOutput } from "../../lib/log/index.ts";
import { answer, buildView } from "./records.ts";
import { DnsServer } from "./server.ts";

/** dns-packet decodes the response code, its types do not say so. */
const rcodeOf = (p: unknown): string | undefined => (p as { rcode?: string }).rcode;

const log = new LogOutput({ spec: { defaultLevel: "off", scopes: new Map() } }).logger("t");

const services = [
  {
    metadata: { name: "web", namespace: "shop" },
    spec: { clusterIP: "198.18.16.1", selector: { app: "web" } },
  },
  {
    metadata: { name: "db", namespace: "shop" },
    spec: { clusterIP: "None", selector: { app: "db" } },
  },
  {
    metadata: { name: "ext", namespace: "shop" },
    spec: { type: "ExternalName", externalName: "example.com" },
  },
];
const pod = (
  name: string,
  ip: string,
  labels: Record<string, string>,
  ready: boolean,
  spec: Record<string, unknown> = {},
) => ({
  metadata: { name, namespace: "shop", labels },
  spec,
  status: { podIP: ip, conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
});
const pods = [
  pod("db-0", "198.19.0.7", { app: "db" }, true, { hostname: "db-0", subdomain: "db" }),
  pod("db-1", "198.19.1.7", { app: "db" }, true),
  pod("db-2", "198.19.1.8", { app: "db" }, false),
];

describe("cluster DNS", () => {
  const view = buildView(services, pods);

  it("answers Service, headless and pod names; NXDOMAIN inside the cluster domain; REFUSED outside", () => {
    const a = (name: string, type = "A") => answer(name, type, view);
    assert.deepEqual(
      a("web.shop.svc.cluster.local").answers.map((x) => x.address),
      ["198.18.16.1"],
    );
    assert.deepEqual(
      a("WEB.shop.svc.cluster.local.").answers.map((x) => x.address),
      ["198.18.16.1"],
    );
    assert.deepEqual(
      a("db.shop.svc.cluster.local").answers.map((x) => x.address),
      ["198.19.0.7", "198.19.1.7"],
    );
    assert.deepEqual(
      a("db-0.db.shop.svc.cluster.local").answers.map((x) => x.address),
      ["198.19.0.7"],
    );
    assert.deepEqual(
      a("198-19-0-7.shop.pod.cluster.local").answers.map((x) => x.address),
      ["198.19.0.7"],
    );
    const aaaa = a("web.shop.svc.cluster.local", "AAAA");
    assert.equal(rcodeOf(aaaa), "NOERROR");
    assert.equal(aaaa.answers.length, 0, "an existing name without IPv6: empty answer");
    assert.equal(a("shop.svc.cluster.local").rcode, "NOERROR");
    assert.equal(a("nope.shop.svc.cluster.local").rcode, "NXDOMAIN");
    assert.equal(a("web.shop.shop.svc.cluster.local").rcode, "NXDOMAIN");
    assert.equal(a("ext.shop.svc.cluster.local").rcode, "NXDOMAIN");
    assert.equal(a("example.com").rcode, "REFUSED");
    assert.equal(a("cluster.local.example.com").rcode, "REFUSED");
  });

  it("serves them over UDP with dns-packet, authoritative, with the SOA on negative answers", async () => {
    let listeners: (() => void)[] = [];
    const server = new DnsServer({
      host: "127.0.0.1",
      port: 0,
      log,
      source: {
        services: () => services,
        pods: () => pods,
        subscribe: (fn) => ((listeners = [...listeners, fn]), () => {}),
      },
    });
    await server.start();
    const sock = createSocket("udp4");
    try {
      const ask = (name: string, id: number) =>
        new Promise<dnsPacket.DecodedPacket>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error("no answer")), 2000);
          sock.once("message", (m) => {
            clearTimeout(t);
            resolve(dnsPacket.decode(m));
          });
          sock.send(
            dnsPacket.encode({
              id,
              type: "query",
              flags: dnsPacket.RECURSION_DESIRED,
              questions: [{ type: "A", name }],
            }),
            server.port,
            "127.0.0.1",
          );
        });
      const ok = await ask("web.shop.svc.cluster.local", 7);
      assert.equal(ok.id, 7);
      assert.equal(rcodeOf(ok), "NOERROR");
      assert.ok((ok.flags ?? 0) & dnsPacket.AUTHORITATIVE_ANSWER);
      assert.deepEqual(
        ok.answers?.map((x) => (x as { data: string }).data),
        ["198.18.16.1"],
      );
      const nx = await ask("missing.shop.svc.cluster.local", 8);
      assert.equal(rcodeOf(nx), "NXDOMAIN");
      assert.equal(nx.authorities?.[0]?.type, "SOA");
      const refused = await ask("registry.npmjs.org", 9);
      assert.equal(rcodeOf(refused), "REFUSED");
      // Garbage gets FORMERR when an id can be read.
      const bad = server.respond(Buffer.from([0, 42, 1]));
      assert.ok(bad);
      assert.equal(rcodeOf(dnsPacket.decode(bad)), "FORMERR");
    } finally {
      sock.close();
      await server.close();
    }
  });
});
