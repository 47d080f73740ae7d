/**
 * The tcp-echo sample as a process: 10 MB echoed back intact (checksum), the client's FIN
 * honoured (everything echoed, then the server closes), reading paused while the client does not
 * read (backpressure), line prefixes like Istio's sample, several ports, SIGTERM.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { deadPort, startApp } from "./examples-harness.ts";
import type { AppProcess } from "./examples-harness.ts";

interface Exchange {
  readonly received: Buffer;
  /** True when the server closed its side (FIN) after the client had half-closed. */
  readonly serverEnded: boolean;
}

/** Sends `data`, half-closes, and collects everything until the server's FIN. */
function exchange(port: number, data: Buffer | string): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let serverEnded = false;
    sock.on("data", (c: Buffer) => chunks.push(c));
    sock.on("end", () => {
      serverEnded = true;
      sock.end();
    });
    sock.on("close", () => resolve({ received: Buffer.concat(chunks), serverEnded }));
    sock.on("error", reject);
    sock.end(data);
  });
}

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

describe("tcp-echo sample", () => {
  let raw: AppProcess;
  let prefixed: AppProcess;

  before(async () => {
    // Two fixed free ports for the prefixed instance, to check it serves every port it is given.
    const [p1, p2] = [await deadPort(), await deadPort()];
    [raw, prefixed] = await Promise.all([
      startApp("examples/tcp-echo/tcp-echo.ts", { TCP_ECHO_PORTS: "0" }),
      startApp(
        "examples/tcp-echo/tcp-echo.ts",
        {},
        { args: [`${p1},${p2}`, "hello"], listeners: 2 },
      ),
    ]);
  });

  after(async () => {
    await Promise.all([raw.stop(), prefixed.stop()]);
  });

  it("echoes 10 MB unchanged and closes after the client's FIN", async () => {
    const data = randomBytes(10 * 1024 * 1024);
    const r = await exchange(raw.ports[0]!, data);
    assert.equal(r.received.length, data.length);
    assert.equal(sha256(r.received), sha256(data));
    assert.equal(r.serverEnded, true);
    const line = await raw.waitForLine(
      /\taccess\tconnection .*bytes_in=10485760 bytes_out=10485760/,
    );
    assert.match(line, /peer=127\.0\.0\.1:\d+/);
  });

  it("keeps echoing while the client has half-closed, until all is sent back", async () => {
    const sock = net.connect({ port: raw.ports[0]!, host: "127.0.0.1", allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let ended = false;
    sock.on("data", (c: Buffer) => chunks.push(c));
    sock.on("end", () => {
      ended = true;
      sock.end();
    });
    sock.write("first ");
    await new Promise((r) => setTimeout(r, 50));
    sock.end("second");
    await new Promise((r) => sock.on("close", r));
    assert.equal(Buffer.concat(chunks).toString(), "first second");
    assert.equal(ended, true);
  });

  it("stops reading while the client does not read its echo (backpressure)", async () => {
    const total = 64 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 0x5a);
    const sock = net.connect({ port: raw.ports[0]!, host: "127.0.0.1", allowHalfOpen: true });
    sock.pause();
    // Each write waits for the previous one to be taken by the kernel, so `accepted` is what the
    // connection (kernel buffers plus the server) has absorbed.
    let accepted = 0;
    const next = (): void => {
      if (accepted < total) {
        sock.write(chunk, () => {
          accepted += chunk.length;
          next();
        });
      } else {
        sock.end();
      }
    };
    next();
    await new Promise((r) => setTimeout(r, 1500));
    const absorbed = accepted;
    const received = new Promise<number>((resolve, reject) => {
      let got = 0;
      sock.on("data", (c: Buffer) => {
        got += c.length;
      });
      sock.on("end", () => resolve(got));
      sock.on("error", reject);
    });
    sock.resume();
    const got = await received;
    sock.destroy();
    // A server that read without regard to its writes would have taken all 64 MB by now.
    assert.ok(absorbed < total / 2, `absorbed ${absorbed} bytes without the client reading`);
    assert.equal(got, total);
  });

  it("prefixes each line like Istio's tcp-echo, on every configured port", async () => {
    for (const port of prefixed.ports) {
      const r = await exchange(port, "world\nfoo\nno newline at end");
      assert.equal(r.received.toString(), "hello world\nhello foo\nhello no newline at end");
      assert.equal(r.serverEnded, true);
    }
  });

  it("prefixes lines split across writes exactly once", async () => {
    const sock = net.connect({ port: prefixed.ports[0]!, host: "127.0.0.1", allowHalfOpen: true });
    const chunks: Buffer[] = [];
    sock.on("data", (c: Buffer) => chunks.push(c));
    sock.on("end", () => sock.end());
    for (const part of ["wor", "ld\n", "\n", "x"]) {
      sock.write(part);
      await new Promise((r) => setTimeout(r, 20));
    }
    sock.end();
    await new Promise((r) => sock.on("close", r));
    assert.equal(Buffer.concat(chunks).toString(), "hello world\nhello \nhello x");
  });

  it("refuses a bad port list, and exits 0 on SIGTERM", async () => {
    const bad = await startApp(
      "examples/tcp-echo/tcp-echo.ts",
      {},
      { args: ["9000,x"], listeners: 0 },
    );
    const [code] = (await once(bad.child, "exit")) as [number | null];
    assert.equal(code, 2);
    assert.match(bad.stderr(), /port "x" in "9000,x" is not a port/);
    const p = await startApp("examples/tcp-echo/tcp-echo.ts", { TCP_ECHO_PORTS: "0" });
    assert.equal(await p.stop(), 0);
  });
});
