/**
 * The httpbin sample: every endpoint's status and JSON shape over HTTP/1.1, the same over HTTP/2
 * cleartext with prior knowledge on the same port, large bodies both ways with checksums, limits,
 * and the process entry point (env, listening line, SIGTERM).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import type { RunningHttpApp } from "../../examples/common/http-app.ts";
import { AppLog } from "../../examples/common/log.ts";
import { loadHttpbinConfig, startHttpbin } from "../../examples/httpbin/httpbin.ts";
import { SeededBytes } from "../../examples/httpbin/random-bytes.ts";
import { request, startApp } from "./examples-harness.ts";

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
}

function h2request(
  session: http2.ClientHttp2Session,
  path: string,
  opts: { method?: string; headers?: http2.OutgoingHttpHeaders; body?: Buffer | string } = {},
): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ":method": opts.method ?? "GET",
      ":path": path,
      ...opts.headers,
    });
    let headers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      headers = h;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () =>
      resolve({ status: Number(headers[":status"]), headers, body: Buffer.concat(chunks) }),
    );
    stream.on("error", reject);
    stream.end(opts.body);
  });
}

type Info = {
  args: Record<string, string | string[]>;
  headers: Record<string, string>;
  origin: string;
  url: string;
  data?: string;
  files?: Record<string, string>;
  form?: Record<string, string | string[]>;
  json?: unknown;
  method?: string;
};

describe("httpbin sample", () => {
  let app: RunningHttpApp;
  let port: number;
  const logLines: string[] = [];

  before(async () => {
    const config = loadHttpbinConfig({ HOST: "127.0.0.1", PORT: "0" });
    const log = new AppLog("httpbin", { sink: { write: (t: string) => logLines.push(t) } });
    app = await startHttpbin(config, log);
    port = app.port;
  });

  after(async () => {
    await app.close(0);
  });

  it("/get shows args, title-cased headers, origin and url", async () => {
    const r = await request(port, "/get?a=1&a=2&b=x", { headers: { "x-custom-thing": "v" } });
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "application/json");
    const body = r.json<Info>();
    assert.deepEqual(Object.keys(body), ["args", "headers", "origin", "url"]);
    assert.deepEqual(body.args, { a: ["1", "2"], b: "x" });
    assert.equal(body.headers["X-Custom-Thing"], "v");
    assert.equal(body.headers["Host"], `127.0.0.1:${port}`);
    assert.equal(body.origin, "127.0.0.1");
    assert.equal(body.url, `http://127.0.0.1:${port}/get?a=1&a=2&b=x`);
    assert.equal((await request(port, "/get", { method: "POST", body: "x" })).status, 405);
  });

  it("/headers, /ip, /user-agent and /uuid", async () => {
    const h = (await request(port, "/headers", { headers: { "end-user": "jason" } })).json<{
      headers: Record<string, string>;
    }>();
    assert.equal(h.headers["End-User"], "jason");
    assert.deepEqual((await request(port, "/ip")).json(), { origin: "127.0.0.1" });
    const ua = await request(port, "/user-agent", { headers: { "user-agent": "probe/1" } });
    assert.deepEqual(ua.json(), { "user-agent": "probe/1" });
    const u = (await request(port, "/uuid")).json<{ uuid: string }>();
    assert.match(u.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("/post echoes a JSON body as data and json", async () => {
    const r = await request(port, "/post?q=1", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"k":[1,2],"s":"x"}',
    });
    assert.equal(r.status, 200);
    const body = r.json<Info>();
    assert.deepEqual(Object.keys(body), [
      "args",
      "data",
      "files",
      "form",
      "headers",
      "json",
      "origin",
      "url",
    ]);
    assert.deepEqual(body.args, { q: "1" });
    assert.equal(body.data, '{"k":[1,2],"s":"x"}');
    assert.deepEqual(body.json, { k: [1, 2], s: "x" });
    assert.deepEqual(body.form, {});
    assert.equal(body.headers["Content-Type"], "application/json");
    assert.equal((await request(port, "/post")).status, 405);
  });

  it("/put and /patch parse forms; /delete takes a body; binary data comes back base64", async () => {
    const put = (
      await request(port, "/put", {
        method: "PUT",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "a=1&a=2&b=3",
      })
    ).json<Info>();
    assert.deepEqual(put.form, { a: ["1", "2"], b: "3" });
    assert.equal(put.data, "");
    assert.equal(put.json, null);
    const patch = await request(port, "/patch", { method: "PATCH", body: "plain text" });
    assert.equal(patch.json<Info>().data, "plain text");
    assert.equal(patch.json<Info>().json, null);
    const bin = Buffer.from([0xff, 0xfe, 0x00, 0x80]);
    const del = await request(port, "/delete", {
      method: "DELETE",
      headers: { "content-type": "application/octet-stream" },
      body: bin,
    });
    assert.equal(
      del.json<Info>().data,
      `data:application/octet-stream;base64,${bin.toString("base64")}`,
    );
  });

  it("/anything accepts any method and path, with multipart forms and files", async () => {
    const fd = new FormData();
    fd.append("field", "value");
    fd.append("upload", new Blob(["file contents\n"], { type: "text/plain" }), "a.txt");
    const encoded = new Request("http://x/", { method: "POST", body: fd });
    const body = Buffer.from(await encoded.arrayBuffer());
    const r = await request(port, "/anything/deep/path?x=1", {
      method: "POST",
      headers: { "content-type": encoded.headers.get("content-type")! },
      body,
    });
    assert.equal(r.status, 200);
    const info = r.json<Info>();
    assert.equal(info.method, "POST");
    assert.deepEqual(info.form, { field: "value" });
    assert.deepEqual(info.files, { upload: "file contents\n" });
    assert.equal(info.url, `http://127.0.0.1:${port}/anything/deep/path?x=1`);
    const other = await request(port, "/anything", { method: "OPTIONS" });
    assert.equal(other.json<Info>().method, "OPTIONS");
  });

  it("/status answers the code asked for, with the usual extra headers", async () => {
    for (const code of [200, 201, 204, 400, 403, 404, 500, 503, 504]) {
      const r = await request(port, `/status/${code}`, { method: code === 201 ? "POST" : "GET" });
      assert.equal(r.status, code);
    }
    const teapot = await request(port, "/status/418");
    assert.equal(teapot.status, 418);
    assert.match(teapot.text, /teapot/);
    const redirect = await request(port, "/status/302");
    assert.equal(redirect.headers.location, "/redirect/1");
    const unauth = await request(port, "/status/401");
    assert.match(unauth.headers["www-authenticate"] ?? "", /^Basic /);
    for (const bad of ["99", "600", "abc", "200,x", "200:-1", "200:0"]) {
      assert.equal((await request(port, `/status/${bad}`)).status, 400, bad);
    }
  });

  it("/status with several codes picks among them, honouring weights", async () => {
    const seen = new Set<number>();
    for (let i = 0; i < 60; i++) seen.add((await request(port, "/status/200,500")).status);
    assert.deepEqual([...seen].sort(), [200, 500]);
    for (let i = 0; i < 20; i++) {
      assert.equal((await request(port, "/status/200:1,500:0")).status, 200);
    }
  });

  it("/delay waits, answers like /get, and refuses more than 10 s", async () => {
    const t0 = performance.now();
    const r = await request(port, "/delay/0.3?x=1");
    assert.ok(performance.now() - t0 >= 290, "the answer comes after the delay");
    assert.equal(r.status, 200);
    assert.deepEqual(r.json<Info>().args, { x: "1" });
    assert.equal((await request(port, "/delay/11")).status, 400);
    assert.equal((await request(port, "/delay/-1")).status, 400);
  });

  it("/bytes returns N bytes, the same ones for the same seed, within a bound", async () => {
    const a = await request(port, "/bytes/100000?seed=42");
    const b = await request(port, "/bytes/100000?seed=42");
    const c = await request(port, "/bytes/100000");
    assert.equal(a.status, 200);
    assert.equal(a.headers["content-type"], "application/octet-stream");
    assert.equal(a.body.length, 100000);
    assert.equal(c.body.length, 100000);
    assert.ok(a.body.equals(b.body));
    assert.ok(a.body.equals(new SeededBytes(42).fill(Buffer.alloc(100000))));
    assert.ok(!a.body.equals(c.body));
    assert.equal((await request(port, "/bytes/0")).body.length, 0);
    assert.equal((await request(port, `/bytes/${10 * 1024 * 1024 + 1}`)).status, 400);
  });

  it("/stream-bytes streams large seeded bodies in chunks", async () => {
    const n = 20 * 1024 * 1024 + 5;
    const r = await request(port, `/stream-bytes/${n}?seed=7&chunk_size=65536`);
    assert.equal(r.status, 200);
    assert.equal(r.headers["transfer-encoding"], "chunked");
    assert.equal(r.body.length, n);
    assert.equal(sha256(r.body), sha256(new SeededBytes(7).fill(Buffer.alloc(n))));
    assert.equal((await request(port, "/stream-bytes/10?chunk_size=0")).status, 400);
  });

  it("/stream sends N JSON lines, at most 100", async () => {
    const r = await request(port, "/stream/3");
    const lines = r.text.trimEnd().split("\n");
    assert.equal(lines.length, 3);
    lines.forEach((l, i) => {
      const obj = JSON.parse(l) as Info & { id: number };
      assert.equal(obj.id, i);
      assert.equal(obj.origin, "127.0.0.1");
    });
    assert.equal((await request(port, "/stream/1000")).text.trimEnd().split("\n").length, 100);
  });

  it("/redirect, /response-headers and unknown paths", async () => {
    const r = await request(port, "/redirect/3");
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, "/redirect/2");
    assert.equal((await request(port, "/redirect/1")).headers.location, "/get");
    const rh = await request(port, "/response-headers?x-test=1&x-test=2&x-other=a");
    assert.equal(rh.status, 200);
    assert.equal(rh.headers["x-test"], "1, 2");
    assert.equal(rh.headers["x-other"], "a");
    assert.deepEqual(rh.json<Record<string, unknown>>()["x-test"], ["1", "2"]);
    assert.equal((await request(port, "/nope")).status, 404);
    assert.equal((await request(port, "/get/extra")).status, 404);
    assert.match((await request(port, "/")).text, /\/status\/<code>/);
  });

  it("/echo streams a 10 MB body back unchanged", async () => {
    const data = new SeededBytes(99).fill(Buffer.alloc(10 * 1024 * 1024));
    const r = await request(port, "/echo", {
      method: "POST",
      headers: { "content-type": "application/x-test" },
      body: data,
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "application/x-test");
    assert.equal(r.body.length, data.length);
    assert.equal(sha256(r.body), sha256(data));
  });

  it("rejects request bodies over the limit with 413", async () => {
    const r = await request(port, "/post", {
      method: "POST",
      body: Buffer.alloc(10 * 1024 * 1024 + 1),
    });
    assert.equal(r.status, 413);
    assert.equal(r.headers.connection, "close");
  });

  it("speaks HTTP/2 cleartext with prior knowledge on the same port", async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const get = await h2request(session, "/get?h=2", { headers: { "x-h2": "yes" } });
      assert.equal(get.status, 200);
      const info = JSON.parse(get.body.toString()) as Info;
      assert.deepEqual(info.args, { h: "2" });
      assert.equal(info.headers["X-H2"], "yes");
      assert.equal(info.headers["Host"], `127.0.0.1:${port}`);
      assert.equal(info.origin, "127.0.0.1");
      const post = await h2request(session, "/post", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"a":1}',
      });
      assert.deepEqual((JSON.parse(post.body.toString()) as Info).json, { a: 1 });
      assert.equal((await h2request(session, "/status/503")).status, 503);
      const data = new SeededBytes(5).fill(Buffer.alloc(8 * 1024 * 1024));
      const echo = await h2request(session, "/echo", { method: "POST", body: data });
      assert.equal(sha256(echo.body), sha256(data));
      const streamed = await h2request(session, "/stream-bytes/3000000?seed=1");
      assert.equal(sha256(streamed.body), sha256(new SeededBytes(1).fill(Buffer.alloc(3000000))));
      // Several streams at once on the one connection.
      const many = await Promise.all(
        Array.from({ length: 20 }, (_, i) => h2request(session, `/anything/${i}`)),
      );
      many.forEach((m, i) =>
        assert.equal((JSON.parse(m.body.toString()) as Info).url.endsWith(`/anything/${i}`), true),
      );
    } finally {
      session.close();
    }
    assert.ok(
      logLines.some((l) =>
        /\taccess\trequest method=GET path="\/get\?h=2" proto=HTTP\/2\.0 status=200 .*peer=127\.0\.0\.1/.test(
          l,
        ),
      ),
    );
  });

  it("keeps HTTP/1.1 keep-alive and pipelined requests working behind the protocol sniffing", async () => {
    const net = await import("node:net");
    const sock = net.connect(port, "127.0.0.1");
    // A wrong protocol choice leaves the connection hanging: fail instead of waiting forever.
    sock.setTimeout(5000, () => sock.destroy());
    const closed = new Promise((r) => sock.once("close", r));
    sock.on("error", () => undefined);
    const got: Buffer[] = [];
    sock.on("data", (c: Buffer) => got.push(c));
    // Three pipelined requests, the first bytes one at a time: "P" alone could still be the
    // HTTP/2 preface ("PRI * HTTP/2.0"), so the sniffing must wait for "PU" to decide.
    const reqs =
      "PUT /status/201 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nGET /ip HTTP/1.1\r\nHost: x\r\n\r\nGET /status/202 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    for (const ch of reqs.slice(0, 3)) {
      sock.write(ch);
      await new Promise((r) => setTimeout(r, 20));
    }
    sock.write(reqs.slice(3));
    await closed;
    const text = Buffer.concat(got).toString();
    const statuses = [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => m[1]);
    assert.deepEqual(statuses, ["201", "200", "202"]);
  });

  it("on SIGTERM finishes in-flight requests (HTTP/1.1 and HTTP/2), then exits 0", async () => {
    const p = await startApp("examples/httpbin/httpbin.ts");
    const port = p.ports[0]!;
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      assert.equal((await h2request(session, "/status/204")).status, 204);
      const h1 = request(port, "/delay/0.6");
      const h2 = h2request(session, "/delay/0.6");
      // Let both requests reach the server before the signal.
      await new Promise((r) => setTimeout(r, 300));
      const stopped = p.stop();
      const [a, b] = await Promise.all([h1, h2]);
      assert.equal(a.status, 200);
      assert.equal(b.status, 200);
      assert.equal(await stopped, 0);
      assert.ok(p.lines.some((l) => /path=\/delay\/0\.6 proto=HTTP\/2\.0 status=200/.test(l)));
    } finally {
      session.destroy();
    }
  });

  it("cuts requests still running when the shutdown grace period ends", async () => {
    const p = await startApp("examples/httpbin/httpbin.ts", { SHUTDOWN_GRACE_MS: "200" });
    const slow = request(p.ports[0]!, "/delay/5").then(
      () => "answered",
      () => "cut",
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await p.stop(), 0);
    assert.equal(await slow, "cut");
  });

  it("runs as a process from env, and exits 0 on SIGTERM", async () => {
    const p = await startApp("examples/httpbin/httpbin.ts", { H2C: "false" });
    try {
      assert.match(p.lines[0]!, /\tinfo\thttpbin\tlistening host=127\.0\.0\.1 port=\d+ h2c=false/);
      const r = await request(p.ports[0]!, "/status/200");
      assert.equal(r.status, 200);
    } finally {
      assert.equal(await p.stop(), 0);
    }
  });
});
