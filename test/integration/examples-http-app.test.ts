/**
 * The HTTP server every sample app shares: a handler that throws or rejects answers 500 and the
 * app keeps serving; every request gets one access-log line; the HTTP/2 sniffing hands a preface
 * split over several writes to HTTP/2; close() waits for running requests.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { listenHttp } from "../../examples/common/http-app.ts";
import type { RunningHttpApp } from "../../examples/common/http-app.ts";
import { AppLog } from "../../examples/common/log.ts";
import { sendBody } from "../../examples/common/respond.ts";
import { request } from "./examples-harness.ts";

describe("sample HTTP server", () => {
  let app: RunningHttpApp;
  const lines: string[] = [];

  before(async () => {
    const log = new AppLog("t", { sink: { write: (t: string) => lines.push(t) } });
    app = await listenHttp({
      log,
      host: "127.0.0.1",
      port: 0,
      h2c: true,
      handler: (req, res) => {
        if (req.url === "/throw") throw new Error("sync bug");
        if (req.url === "/reject") return Promise.reject(new Error("async bug"));
        if (req.url === "/slow") {
          return new Promise((resolve) =>
            setTimeout(() => {
              sendBody(res, 200, "slow\n", "text/plain");
              resolve();
            }, 300),
          );
        }
        sendBody(res, 200, `ok ${req.httpVersion}\n`, "text/plain");
      },
    });
  });

  after(async () => {
    await app.close(0);
  });

  it("answers 500 when a handler throws or rejects, and keeps serving", async () => {
    assert.equal((await request(app.port, "/throw")).status, 500);
    assert.equal((await request(app.port, "/reject")).status, 500);
    assert.equal((await request(app.port, "/fine")).text, "ok 1.1\n");
    assert.ok(
      lines.some((l) => /\terror\tt\thandler failed path=\/throw error="Error: sync bug"/.test(l)),
    );
    assert.ok(
      lines.some((l) =>
        /\terror\tt\thandler failed path=\/reject error="Error: async bug"/.test(l),
      ),
    );
    await new Promise((r) => setImmediate(r));
    assert.ok(
      lines.some((l) =>
        /\taccess\trequest method=GET path=\/throw proto=HTTP\/1\.1 status=500 /.test(l),
      ),
    );
  });

  it("recognises an HTTP/2 preface that arrives a few bytes at a time", async () => {
    // A relay between the client and the app that forwards the client's first bytes in small,
    // separate pieces, then passes everything through.
    let pieces = 0;
    const relay = net.createServer((down) => {
      const up = net.connect(app.port, "127.0.0.1");
      up.pipe(down);
      let first = true;
      down.on("data", (chunk: Buffer) => {
        if (!first) {
          up.write(chunk);
          return;
        }
        first = false;
        down.pause();
        const cuts = [0, 3, 10, 20, chunk.length];
        let i = 0;
        const step = (): void => {
          up.write(chunk.subarray(cuts[i], cuts[i + 1]));
          pieces++;
          if (++i < cuts.length - 1) setTimeout(step, 20);
          else down.resume();
        };
        step();
      });
      down.on("close", () => up.destroy());
      up.on("close", () => down.destroy());
      down.on("error", () => up.destroy());
      up.on("error", () => down.destroy());
    });
    relay.listen(0, "127.0.0.1");
    await new Promise((r) => relay.once("listening", r));
    const session = http2.connect(`http://127.0.0.1:${(relay.address() as net.AddressInfo).port}`);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const s = session.request({ ":path": "/fine" });
        let text = "";
        s.setEncoding("utf8");
        s.on("data", (c: string) => (text += c));
        s.on("end", () => resolve(text));
        s.on("error", reject);
        s.end();
      });
      assert.equal(body, "ok 2.0\n");
      assert.equal(pieces, 4, "the preface went over in four pieces");
    } finally {
      session.destroy();
      relay.close();
    }
  });

  it("close() lets a running request finish before resolving", async () => {
    const log = new AppLog("t2", { sink: { write: () => undefined } });
    const other = await listenHttp({
      log,
      host: "127.0.0.1",
      port: 0,
      handler: (_req, res) =>
        new Promise((resolve) =>
          setTimeout(() => {
            sendBody(res, 200, "done\n", "text/plain");
            resolve();
          }, 300),
        ),
    });
    const pending = request(other.port, "/");
    await new Promise((r) => setTimeout(r, 100));
    await other.close(5000);
    assert.equal((await pending).text, "done\n");
  });
});
