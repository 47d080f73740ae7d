/**
 * The bookinfo sample on loopback: details, ratings and the three reviews versions run as child
 * processes (as `ambient up` runs them); productpage runs both as a process and in-process for the
 * failure cases. Checks what a user sees: the page and JSON per reviews version (star colours),
 * header propagation to every upstream, graceful degradation when an upstream is down or hangs,
 * access-log lines, health endpoints, SIGTERM and configuration errors.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import type net from "node:net";
import { after, before, describe, it } from "node:test";
import { loadProductpageConfig, startProductpage } from "../../examples/bookinfo/productpage.ts";
import type { RunningHttpApp } from "../../examples/common/http-app.ts";
import { AppLog } from "../../examples/common/log.ts";
import { deadPort, request, startApp } from "./examples-harness.ts";
import type { AppProcess } from "./examples-harness.ts";

const url = (port: number): string => `http://127.0.0.1:${port}`;

interface Captured {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
}

/** A stand-in upstream that records each request and answers like details/ratings would. */
async function captureServer(): Promise<{ server: http.Server; port: number; seen: Captured[] }> {
  const seen: Captured[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ path: req.url ?? "", headers: req.headers });
    const body = req.url?.startsWith("/ratings/")
      ? { id: 0, ratings: { Reviewer1: 2, Reviewer2: 3 } }
      : { id: 0, author: "Captured Author", type: "hardcover", pages: 1 };
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, port: (server.address() as net.AddressInfo).port, seen };
}

/** An upstream that accepts requests and never answers. */
async function hangingServer(): Promise<{ server: http.Server; port: number; count(): number }> {
  let n = 0;
  const server = http.createServer(() => {
    n++;
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, port: (server.address() as net.AddressInfo).port, count: () => n };
}

function memoryLog(name: string): { log: AppLog; lines: string[] } {
  const lines: string[] = [];
  return { log: new AppLog(name, { sink: { write: (t: string) => lines.push(t) } }), lines };
}

interface Product {
  details: Record<string, unknown>;
  reviews: {
    error?: string;
    version?: string;
    podname?: string;
    reviews?: {
      reviewer: string;
      text: string;
      rating?: { stars?: number; color?: string; error?: string };
    }[];
  };
  reviewsVersion: string | null;
}

describe("bookinfo sample", () => {
  const procs: AppProcess[] = [];
  const inProcess: RunningHttpApp[] = [];
  const servers: http.Server[] = [];
  let details: AppProcess;
  let ratings: AppProcess;
  const reviews: Record<"v1" | "v2" | "v3", AppProcess> = {} as never;
  let productpage: AppProcess;

  async function spawn(file: string, env: Record<string, string> = {}): Promise<AppProcess> {
    const p = await startApp(file, env);
    procs.push(p);
    return p;
  }

  async function productpageFor(env: Record<string, string>): Promise<{
    port: number;
    lines: string[];
  }> {
    const { log, lines } = memoryLog("productpage");
    const config = loadProductpageConfig({ HOST: "127.0.0.1", PORT: "0", ...env });
    const app = await startProductpage(config, log);
    inProcess.push(app);
    return { port: app.port, lines };
  }

  before(async () => {
    [details, ratings] = await Promise.all([
      spawn("examples/bookinfo/details.ts"),
      spawn("examples/bookinfo/ratings.ts"),
    ]);
    const versions = ["v1", "v2", "v3"] as const;
    const started = await Promise.all(
      versions.map((v) =>
        spawn("examples/bookinfo/reviews.ts", {
          REVIEWS_VERSION: v,
          RATINGS_URL: url(ratings.ports[0]!),
          POD_NAME: `reviews-${v}-test`,
        }),
      ),
    );
    versions.forEach((v, i) => (reviews[v] = started[i]!));
    productpage = await spawn("examples/bookinfo/productpage.ts", {
      DETAILS_URL: url(details.ports[0]!),
      REVIEWS_URL: url(reviews.v2.ports[0]!),
      RATINGS_URL: url(ratings.ports[0]!),
    });
  });

  after(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await Promise.all(inProcess.map((a) => a.close(0)));
    for (const s of servers) s.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  it("answers health checks on every service", async () => {
    const all = [details, ratings, reviews.v1, reviews.v2, reviews.v3, productpage];
    const names = ["Details", "Ratings", "Reviews", "Reviews", "Reviews", "Productpage"];
    for (const [i, p] of all.entries()) {
      const r = await request(p.ports[0]!, "/health");
      assert.equal(r.status, 200);
      assert.deepEqual(r.json(), { status: `${names[i]} is healthy` });
    }
  });

  it("details and ratings answer in Istio's JSON shapes", async () => {
    const d = await request(details.ports[0]!, "/details/0");
    assert.equal(d.status, 200);
    assert.equal(d.headers["content-type"], "application/json");
    assert.deepEqual(Object.keys(d.json()).sort(), [
      "ISBN-10",
      "ISBN-13",
      "author",
      "id",
      "language",
      "pages",
      "publisher",
      "type",
      "year",
    ]);
    assert.equal((await request(details.ports[0]!, "/details/abc")).status, 400);
    const r = await request(ratings.ports[0]!, "/ratings/0");
    assert.deepEqual(r.json(), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
  });

  it("ratings stores posted ratings and rejects bad ones", async () => {
    const port = ratings.ports[0]!;
    const posted = await request(port, "/ratings/7", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ Reviewer1: 1 }),
    });
    assert.equal(posted.status, 200);
    assert.deepEqual(posted.json(), { id: 7, ratings: { Reviewer1: 1, Reviewer2: 4 } });
    assert.deepEqual((await request(port, "/ratings/7")).json(), posted.json());
    const bad = await request(port, "/ratings/7", { method: "POST", body: '{"Reviewer1": 9}' });
    assert.equal(bad.status, 400);
    assert.match(bad.json<{ error: string }>().error, /1 to 5/);
  });

  it("reviews v1 has no stars, v2 black stars, v3 red stars", async () => {
    const r1 = (await request(reviews.v1.ports[0]!, "/reviews/0")).json<Product["reviews"]>();
    assert.equal(r1.version, "v1");
    assert.equal(r1.podname, "reviews-v1-test");
    assert.equal(r1.reviews!.length, 2);
    for (const rv of r1.reviews!) assert.equal(rv.rating, undefined);
    for (const [v, color] of [
      ["v2", "black"],
      ["v3", "red"],
    ] as const) {
      const r = (await request(reviews[v].ports[0]!, "/reviews/0")).json<Product["reviews"]>();
      assert.equal(r.version, v);
      assert.deepEqual(
        r.reviews!.map((x) => x.rating),
        [
          { stars: 5, color },
          { stars: 4, color },
        ],
      );
    }
  });

  it("productpage renders details and reviews, with the star colour of each reviews version", async () => {
    const cases = [
      { v: "v1", color: undefined },
      { v: "v2", color: "black" },
      { v: "v3", color: "red" },
    ] as const;
    for (const c of cases) {
      const pp = await productpageFor({
        DETAILS_URL: url(details.ports[0]!),
        REVIEWS_URL: url(reviews[c.v].ports[0]!),
      });
      const page = await request(pp.port, "/productpage");
      assert.equal(page.status, 200);
      assert.match(page.headers["content-type"]!, /^text\/html/);
      assert.match(page.text, /<h1>The Comedy of Errors<\/h1>/);
      assert.match(page.text, /<dt>ISBN-10<\/dt><dd>1234567890<\/dd>/);
      assert.match(page.text, /Reviewer1/);
      assert.match(page.text, new RegExp(`Reviews served by: <code>reviews-${c.v}-test</code>`));
      assert.match(page.text, new RegExp(`data-version="${c.v}"`));
      const stars = [
        ...page.text.matchAll(
          /<span class="stars" data-stars="(\d)" data-color="(\w+)" style="color: (\w+)">([★☆]+)<\/span>/g,
        ),
      ];
      if (c.color === undefined) {
        assert.equal(stars.length, 0, "v1 shows no stars");
      } else {
        assert.deepEqual(
          stars.map((m) => [m[1], m[2], m[3], m[4]]),
          [
            ["5", c.color, c.color, "★★★★★"],
            ["4", c.color, c.color, "★★★★☆"],
          ],
        );
      }
      const api = await request(pp.port, "/api/v1/products/0");
      assert.equal(api.status, 200);
      const body = api.json<Product>();
      assert.equal(body.reviewsVersion, c.v);
      assert.equal(body.details["author"], "William Shakespeare");
    }
  });

  it("productpage as a process serves the page, the JSON API and the index", async () => {
    const port = productpage.ports[0]!;
    const list = await request(port, "/api/v1/products");
    assert.deepEqual(
      list.json<{ id: number; title: string }[]>().map((p) => [p.id, p.title]),
      [[0, "The Comedy of Errors"]],
    );
    const product = (await request(port, "/api/v1/products/0")).json<Product>();
    assert.equal(product.reviewsVersion, "v2");
    assert.equal((await request(port, "/api/v1/products/5")).status, 404);
    const rv = await request(port, "/api/v1/products/0/reviews");
    assert.equal(rv.status, 200);
    assert.equal(rv.json<Product["reviews"]>().version, "v2");
    const rt = await request(port, "/api/v1/products/0/ratings");
    assert.deepEqual(rt.json(), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
    const index = await request(port, "/");
    assert.equal(index.status, 200);
    assert.match(index.text, /href="\/productpage\?id=0"/);
    assert.equal((await request(port, "/nope")).status, 404);
    assert.equal((await request(port, "/productpage", { method: "DELETE" })).status, 405);
  });

  it("writes one access-log line per request, with the request id", async () => {
    const id = `test-${process.pid}-${Date.now()}`;
    await request(productpage.ports[0]!, "/productpage", { headers: { "x-request-id": id } });
    const line = await productpage.waitForLine(new RegExp(`request_id=${id}`));
    assert.match(
      line,
      /\tinfo\taccess\trequest method=GET path=\/productpage proto=HTTP\/1\.1 status=200 /,
    );
    // The id reached every hop, so each wrote its own line with it.
    await details.waitForLine(new RegExp(`path=/details/0 .*request_id=${id}`));
    await reviews.v2.waitForLine(new RegExp(`path=/reviews/0 .*request_id=${id}`));
    await ratings.waitForLine(new RegExp(`path=/ratings/0 .*request_id=${id}`));
    assert.equal(productpage.lines.filter((l) => l.includes(`request_id=${id}`)).length, 1);
  });

  it("propagates tracing, request-id and end-user headers, and nothing else", async () => {
    const cap = await captureServer();
    servers.push(cap.server);
    const rv = await spawn("examples/bookinfo/reviews.ts", {
      REVIEWS_VERSION: "v2",
      RATINGS_URL: url(cap.port),
    });
    const pp = await productpageFor({ DETAILS_URL: url(cap.port), REVIEWS_URL: url(rv.ports[0]!) });
    const sent = {
      "x-request-id": "rid-1",
      "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
      "x-b3-spanid": "e457b5a2e4d86bd1",
      "x-b3-sampled": "1",
      b3: "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      tracestate: "vendor=x",
      "end-user": "jason",
      "x-not-propagated": "secret",
    };
    const page = await request(pp.port, "/productpage", { headers: sent });
    assert.equal(page.status, 200);
    assert.match(page.text, /Captured Author/);
    assert.match(page.text, /data-stars="2"/, "ratings from the capture server are shown");
    const detailsReq = cap.seen.find((s) => s.path === "/details/0");
    const ratingsReq = cap.seen.find((s) => s.path === "/ratings/0");
    assert.ok(detailsReq && ratingsReq, `seen: ${cap.seen.map((s) => s.path).join(", ")}`);
    for (const seen of [detailsReq, ratingsReq]) {
      for (const [k, v] of Object.entries(sent)) {
        if (k === "x-not-propagated") assert.equal(seen.headers[k], undefined, `${k} stays`);
        else assert.equal(seen.headers[k], v, `${k} on ${seen.path}`);
      }
    }
  });

  it("a signed-in user is sent upstream as end-user", async () => {
    const cap = await captureServer();
    servers.push(cap.server);
    const pp = await productpageFor({
      DETAILS_URL: url(cap.port),
      REVIEWS_URL: url(await deadPort()),
    });
    const login = await request(pp.port, "/login", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "username=jason&password=x",
    });
    assert.equal(login.status, 302);
    assert.equal(login.headers.location, "/productpage");
    const cookie = login.headers["set-cookie"]?.[0]?.split(";")[0];
    assert.equal(cookie, "user=jason");
    const page = await request(pp.port, "/productpage", { headers: { cookie: cookie } });
    assert.match(page.text, /Signed in as <b class="user">jason<\/b>/);
    assert.equal(cap.seen.at(-1)?.headers["end-user"], "jason");
    const bad = await request(pp.port, "/login", { method: "POST", body: "username=<script>" });
    assert.equal(bad.status, 400);
    assert.doesNotMatch(bad.text, /<script>/);
    const out = await request(pp.port, "/logout");
    assert.equal(out.status, 302);
    assert.match(out.headers["set-cookie"]?.[0] ?? "", /^user=; .*Max-Age=0/);
  });

  it("shows reviews unavailable, still with status 200, when reviews is down", async () => {
    const pp = await productpageFor({
      DETAILS_URL: url(details.ports[0]!),
      REVIEWS_URL: url(await deadPort()),
    });
    const page = await request(pp.port, "/productpage");
    assert.equal(page.status, 200);
    assert.match(page.text, /Sorry, product reviews are currently unavailable for this book\./);
    assert.match(page.text, /<dt>ISBN-13<\/dt>/, "details still shown");
    const api = (await request(pp.port, "/api/v1/products/0")).json<Product>();
    assert.equal(api.reviewsVersion, null);
    assert.match(api.reviews.error!, /reviews are currently unavailable/);
    const passthrough = await request(pp.port, "/api/v1/products/0/reviews");
    assert.equal(passthrough.status, 503);
    assert.ok(
      pp.lines.some((l) => /\twarn\tproductpage\treviews unavailable .*ECONNREFUSED/.test(l)),
    );
  });

  it("gives up on a reviews service that hangs, after two attempts with the configured timeout", async () => {
    const hang = await hangingServer();
    servers.push(hang.server);
    const pp = await productpageFor({
      DETAILS_URL: url(details.ports[0]!),
      REVIEWS_URL: url(hang.port),
      REVIEWS_TIMEOUT_MS: "200",
    });
    const page = await request(pp.port, "/productpage");
    assert.equal(page.status, 200);
    assert.match(page.text, /reviews are currently unavailable/);
    assert.equal(hang.count(), 2);
  });

  it("shows details unavailable when details is down", async () => {
    const pp = await productpageFor({
      DETAILS_URL: url(await deadPort()),
      REVIEWS_URL: url(reviews.v1.ports[0]!),
    });
    const page = await request(pp.port, "/productpage");
    assert.equal(page.status, 200);
    assert.match(page.text, /Sorry, product details are currently unavailable for this book\./);
    assert.match(page.text, /Reviewer1/);
  });

  it("shows ratings unavailable when ratings is down", async () => {
    const rv = await spawn("examples/bookinfo/reviews.ts", {
      REVIEWS_VERSION: "v3",
      RATINGS_URL: url(await deadPort()),
    });
    const direct = (await request(rv.ports[0]!, "/reviews/0")).json<Product["reviews"]>();
    assert.deepEqual(direct.reviews![0]!.rating, {
      error: "Ratings service is currently unavailable",
    });
    const pp = await productpageFor({
      DETAILS_URL: url(details.ports[0]!),
      REVIEWS_URL: url(rv.ports[0]!),
    });
    const page = await request(pp.port, "/productpage");
    assert.equal(page.status, 200);
    assert.match(page.text, /class="error rating-error">Ratings service is currently unavailable/);
  });

  it("exits 0 on SIGTERM", async () => {
    const p = await startApp("examples/bookinfo/details.ts");
    assert.equal(await p.stop(), 0);
    assert.ok(p.lines.some((l) => /\tshutting down signal=SIGTERM/.test(l)));
  });

  it("refuses bad settings, naming every bad key", async () => {
    const p = await startApp(
      "examples/bookinfo/reviews.ts",
      { PORT: "http", REVIEWS_VERSION: "v9", RATINGS_URL: "ftp://x" },
      { listeners: 0 },
    );
    const [code] = (await once(p.child, "exit")) as [number | null];
    assert.equal(code, 2);
    const err = p.stderr();
    assert.match(err, /PORT="http"/);
    assert.match(err, /REVIEWS_VERSION="v9": expected one of v1, v2, v3/);
    assert.match(err, /RATINGS_URL="ftp:\/\/x"/);
  });
});
