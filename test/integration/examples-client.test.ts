/**
 * The client sample ("sleep" pod): stays up until told to stop, exits 0 at once on SIGTERM or
 * SIGINT, and with TARGET_URL sends steady requests and logs each one.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import type { ChildProcess } from "node:child_process";
import type net from "node:net";
import { describe, it } from "node:test";
import { startApp } from "./examples-harness.ts";

async function exitWithin(
  child: ChildProcess,
  ms: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  const [code, signal] = (await once(child, "exit")) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal };
}

describe("client sample", () => {
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    it(`stays up, then exits 0 on ${sig}`, async () => {
      const p = await startApp("examples/client/client.ts", {}, { listeners: 0 });
      await p.waitForLine(/\tinfo\tclient\tready /);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(p.child.exitCode, null, "still running with nothing to do");
      p.child.kill(sig);
      // A SIGKILL after 3 s would show up as signal=SIGKILL instead of code 0.
      assert.deepEqual(await exitWithin(p.child, 3000), { code: 0, signal: null });
      assert.ok(p.lines.some((l) => l.includes(`exiting signal=${sig}`)));
    });
  }

  it("with TARGET_URL, sends requests one at a time and logs each", async () => {
    let hits = 0;
    const server = http.createServer((_req, res) => {
      hits++;
      res.end("ok");
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as net.AddressInfo).port;
    const p = await startApp(
      "examples/client/client.ts",
      { TARGET_URL: `http://127.0.0.1:${port}/x`, INTERVAL_MS: "50" },
      { listeners: 0 },
    );
    try {
      await p.waitForLine(/\taccess\trequest url=http:\/\/127\.0\.0\.1:\d+\/x status=200 /);
      const second = async (): Promise<void> => {
        while (p.lines.filter((l) => l.includes("status=200")).length < 2) {
          await p.waitForLine(/status=200/);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      await second();
      assert.ok(hits >= 2);
    } finally {
      p.child.kill("SIGTERM");
      assert.deepEqual(await exitWithin(p.child, 3000), { code: 0, signal: null });
      server.closeAllConnections();
      server.close();
    }
  });

  it("refuses a bad TARGET_URL", async () => {
    const p = await startApp(
      "examples/client/client.ts",
      { TARGET_URL: "productpage:9080" },
      { listeners: 0 },
    );
    const { code } = await exitWithin(p.child, 5000);
    assert.equal(code, 2);
    assert.match(p.stderr(), /TARGET_URL/);
  });
});
