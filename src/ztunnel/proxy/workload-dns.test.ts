import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WorkloadDns } from "./workload-dns.ts";

describe("WorkloadDns", () => {
  it("resolves, caches for the TTL, and prefers the family asked for", async () => {
    const asked: string[] = [];
    const dns = new WorkloadDns((host, family) => {
      asked.push(`${host}/${family}`);
      if (family === 6) return Promise.resolve([]);
      return Promise.resolve([{ address: "198.18.5.5", ttl: 30 }]);
    });
    assert.equal(dns.lookup("db.example.com"), undefined);
    assert.deepEqual(await dns.resolve("db.example.com", true), ["198.18.5.5"]);
    assert.deepEqual(asked, ["db.example.com/6", "db.example.com/4"]);
    assert.deepEqual(dns.lookup("db.example.com"), ["198.18.5.5"]);
  });

  it("says why when nothing resolves", async () => {
    const dns = new WorkloadDns(() => Promise.reject(new Error("queryA ENOTFOUND nowhere")));
    await assert.rejects(
      dns.resolve("nowhere", false),
      /no IP addresses were resolved for workload hostname nowhere: queryA ENOTFOUND/,
    );
    assert.equal(dns.lookup("nowhere"), undefined);
  });
});
