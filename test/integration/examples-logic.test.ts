/**
 * The pure parts of the sample apps, without sockets: settings parsing, status-code choice, seeded
 * bytes, header propagation, cookie and reviews parsing, HTML escaping, log line layout.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PROPAGATED_HEADERS, forwardHeaders } from "../../examples/bookinfo/propagation.ts";
import { parseReviewsAnswer, userFromCookie } from "../../examples/bookinfo/productpage.ts";
import { renderProductPage } from "../../examples/bookinfo/render.ts";
import { PRODUCTS } from "../../examples/bookinfo/catalog.ts";
import { loadReviewsConfig } from "../../examples/bookinfo/reviews.ts";
import { EnvReader } from "../../examples/common/env.ts";
import { formatLine } from "../../examples/common/log.ts";
import { SeededBytes } from "../../examples/httpbin/random-bytes.ts";
import { multiDict, titleCase } from "../../examples/httpbin/routes.ts";
import { parseStatusCodes, pickStatus } from "../../examples/httpbin/status-codes.ts";
import { loadTcpEchoConfig } from "../../examples/tcp-echo/tcp-echo.ts";

describe("sample app logic", () => {
  it("EnvReader reports every bad key at once, and uses defaults for unset ones", () => {
    const r = new EnvReader({ PORT: "99999", ACCESS_LOG: "maybe", URL: "nope", N: " 7 " });
    assert.equal(r.port("PORT", 80), 80);
    assert.equal(r.bool("ACCESS_LOG", true), true);
    assert.equal(r.httpUrl("URL", "http://x:1"), "http://x:1");
    assert.equal(r.int("N", 0, 0, 10), 7);
    assert.equal(r.string("UNSET", "d"), "d");
    assert.throws(
      () => r.done("app"),
      (e: Error) =>
        /PORT="99999"/.test(e.message) &&
        /ACCESS_LOG="maybe"/.test(e.message) &&
        /URL="nope"/.test(e.message),
    );
    const ok = new EnvReader({ URL: "http://details:9080/" });
    assert.equal(ok.httpUrl("URL", ""), "http://details:9080");
    ok.done("app");
  });

  it("reviews picks Istio's defaults per version", () => {
    const v1 = loadReviewsConfig({ REVIEWS_VERSION: "v1" });
    assert.equal(v1.enableRatings, false);
    const v2 = loadReviewsConfig({ REVIEWS_VERSION: "v2" });
    assert.deepEqual([v2.enableRatings, v2.starColor, v2.ratingsTimeoutMs], [true, "black", 10000]);
    const v3 = loadReviewsConfig({ REVIEWS_VERSION: "v3" });
    assert.deepEqual(
      [v3.starColor, v3.ratingsTimeoutMs, v3.ratingsUrl],
      ["red", 2500, "http://ratings:9080"],
    );
    assert.throws(() => loadReviewsConfig({ STAR_COLOR: 'red" onmouseover="x' }), /STAR_COLOR/);
  });

  it("tcp-echo takes Istio's argument form, arguments over env", () => {
    const c = loadTcpEchoConfig({ TCP_ECHO_PORTS: "1", TCP_ECHO_PREFIX: "env" }, [
      "9000,9001",
      "hello",
    ]);
    assert.deepEqual([c.ports, c.prefix], [[9000, 9001], "hello"]);
    const e = loadTcpEchoConfig({ TCP_ECHO_PORTS: "7000" }, []);
    assert.deepEqual([e.ports, e.prefix], [[7000], ""]);
    assert.throws(() => loadTcpEchoConfig({}, ["9000,9000"]), /repeat a port/);
  });

  it("parses status-code lists and picks by weight", () => {
    const p = parseStatusCodes("200:3,500:1");
    assert.ok(p.ok);
    assert.equal(pickStatus(p.choices, 0), 200);
    assert.equal(pickStatus(p.choices, 0.74), 200);
    assert.equal(pickStatus(p.choices, 0.75), 500);
    assert.equal(pickStatus(p.choices, 0.9999999), 500);
    const u = parseStatusCodes("201,202,203");
    assert.ok(u.ok);
    assert.deepEqual(
      [0, 0.34, 0.67].map((x) => pickStatus(u.choices, x)),
      [201, 202, 203],
    );
    for (const bad of ["", "1000", "100", "200:", "200:x", "200:1:2", "200:0,500:0"]) {
      assert.equal(parseStatusCodes(bad).ok, false, bad);
    }
  });

  it("seeded bytes are the same however the stream is cut", () => {
    const whole = new SeededBytes(11).fill(Buffer.alloc(1001));
    const g = new SeededBytes(11);
    const parts = [3, 1, 0, 5, 500, 2, 490].map((n) => g.fill(Buffer.alloc(n)));
    assert.ok(Buffer.concat(parts).equals(whole));
    assert.ok(!new SeededBytes(12).fill(Buffer.alloc(1001)).equals(whole));
  });

  it("propagates only the listed headers; a signed-in user becomes end-user", () => {
    const out = forwardHeaders(
      { "x-request-id": "r", traceparent: "t", "end-user": "a", host: "h", "x-other": "o" },
      undefined,
    );
    assert.deepEqual(out, { "x-request-id": "r", traceparent: "t", "end-user": "a" });
    assert.equal(forwardHeaders({ "end-user": "a" }, "jason")["end-user"], "jason");
    for (const h of [
      "x-request-id",
      "b3",
      "x-b3-traceid",
      "traceparent",
      "tracestate",
      "end-user",
    ]) {
      assert.ok(PROPAGATED_HEADERS.includes(h), h);
    }
  });

  it("reads the user cookie and reviews answers defensively", () => {
    assert.equal(userFromCookie("a=1; user=jason; b=2"), "jason");
    assert.equal(userFromCookie("user=<x>"), undefined);
    assert.equal(userFromCookie(undefined), undefined);
    assert.deepEqual(parseReviewsAnswer("not json"), {
      ok: false,
      error: "Sorry, product reviews are currently unavailable for this book.",
    });
    const r = parseReviewsAnswer(
      JSON.stringify({
        version: "v2",
        podname: "p",
        reviews: [{ reviewer: "A", text: "t", rating: { stars: 3, color: "black" } }, { bogus: 1 }],
      }),
    );
    assert.deepEqual(r, {
      ok: true,
      version: "v2",
      podname: "p",
      reviews: [{ reviewer: "A", text: "t", rating: { stars: 3, color: "black" } }],
    });
  });

  it("escapes everything upstreams send before it reaches the page", () => {
    const html = renderProductPage({
      product: PRODUCTS[0]!,
      user: undefined,
      details: { ok: true, details: { type: "<script>alert(1)</script>" } },
      reviews: {
        ok: true,
        version: '"><b>',
        podname: "<i>",
        reviews: [{ reviewer: "<u>", text: "&", rating: { stars: 9, color: "red;x" } }],
      },
    });
    assert.doesNotMatch(html, /<script>|<i>|<u>/);
    assert.match(html, /<dd>&#60;script&#62;alert\(1\)&#60;\/script&#62;<\/dd>/);
    assert.match(html, /data-version="&#34;&#62;&#60;b&#62;"/);
    assert.match(
      html,
      /data-stars="5" data-color="black" style="color: black"/,
      "clamped, safe colour",
    );
  });

  it("log lines use the components' plain layout", () => {
    const line = formatLine(new Date(0), "info", "access", "request", {
      path: "/a b",
      status: 200,
      skipped: undefined,
      empty: "",
    });
    assert.equal(
      line,
      '1970-01-01T00:00:00.000Z\tinfo\taccess\trequest path="/a b" status=200 empty=""\n',
    );
  });

  it("httpbin helpers: repeated names become arrays; header names are title-cased", () => {
    assert.deepEqual(multiDict(new URLSearchParams("a=1&b=2&a=3&a=4")), {
      a: ["1", "3", "4"],
      b: "2",
    });
    assert.equal(titleCase("x-b3-traceid"), "X-B3-Traceid");
    assert.equal(titleCase("content-type"), "Content-Type");
  });
});
