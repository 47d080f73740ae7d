/**
 * bookinfo `productpage`: the book page, assembled from `details` and `reviews` (which calls
 * `ratings`). When an upstream fails or is too slow the page still answers 200 and says which part
 * is unavailable, as Istio's sample does.
 *
 *   GET  /                              index with links
 *   GET  /productpage[?id=0]            the HTML page (shows which reviews version answered)
 *   GET  /api/v1/products               the product list
 *   GET  /api/v1/products/<id>          the product with its details, reviews and reviewsVersion
 *   GET  /api/v1/products/<id>/reviews  what reviews answered (status passed through)
 *   GET  /api/v1/products/<id>/ratings  what ratings answered (status passed through)
 *   POST /login (form username=...)     signs in: sets the `user` cookie, sent on as `end-user`
 *   GET  /logout                        clears it
 *   GET  /health                        {"status":"Productpage is healthy"}
 *
 * Env: DETAILS_URL (http://details:9080), REVIEWS_URL (http://reviews:9080), RATINGS_URL
 * (http://ratings:9080), DETAILS_TIMEOUT_MS (3000), REVIEWS_TIMEOUT_MS (3000, per attempt),
 * REVIEWS_ATTEMPTS (2), RATINGS_TIMEOUT_MS (3000), PORT (9080), HOST, ACCESS_LOG,
 * SHUTDOWN_GRACE_MS.
 */
import type http from "node:http";
import { EnvReader, runMain, serverSettings } from "../common/env.ts";
import type { ServerSettings } from "../common/env.ts";
import { listenHttp } from "../common/http-app.ts";
import type { Handler, Req, Res, RunningHttpApp } from "../common/http-app.ts";
import { AppLog } from "../common/log.ts";
import { closeIfHttp1, readBody, sendBody, sendJson, splitTarget } from "../common/respond.ts";
import { onShutdown } from "../common/shutdown.ts";
import { createAgent, httpGet } from "../common/upstream.ts";
import { PRODUCTS, findProduct, parseId } from "./catalog.ts";
import type { Product } from "./catalog.ts";
import { forwardHeaders } from "./propagation.ts";
import {
  DETAILS_UNAVAILABLE,
  REVIEWS_UNAVAILABLE,
  escapeHtml,
  renderIndex,
  renderProductPage,
} from "./render.ts";
import type { DetailsOutcome, ReviewView, ReviewsOutcome, StarRating } from "./render.ts";

export interface ProductpageConfig extends ServerSettings {
  readonly detailsUrl: string;
  readonly reviewsUrl: string;
  readonly ratingsUrl: string;
  readonly detailsTimeoutMs: number;
  readonly reviewsTimeoutMs: number;
  readonly reviewsAttempts: number;
  readonly ratingsTimeoutMs: number;
}

export function loadProductpageConfig(env: NodeJS.ProcessEnv): ProductpageConfig {
  const r = new EnvReader(env);
  const config: ProductpageConfig = {
    ...serverSettings(r, 9080),
    detailsUrl: r.httpUrl("DETAILS_URL", "http://details:9080"),
    reviewsUrl: r.httpUrl("REVIEWS_URL", "http://reviews:9080"),
    ratingsUrl: r.httpUrl("RATINGS_URL", "http://ratings:9080"),
    detailsTimeoutMs: r.int("DETAILS_TIMEOUT_MS", 3000, 1, 600_000),
    reviewsTimeoutMs: r.int("REVIEWS_TIMEOUT_MS", 3000, 1, 600_000),
    reviewsAttempts: r.int("REVIEWS_ATTEMPTS", 2, 1, 10),
    ratingsTimeoutMs: r.int("RATINGS_TIMEOUT_MS", 3000, 1, 600_000),
  };
  r.done("productpage");
  return Object.freeze(config);
}

const USER_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** The signed-in user from the `user` cookie, if it holds a plausible name. */
export function userFromCookie(cookie: string | undefined): string | undefined {
  if (cookie === undefined) return undefined;
  for (const part of cookie.split(";")) {
    const eq = part.indexOf("=");
    if (eq !== -1 && part.slice(0, eq).trim() === "user") {
      const v = part.slice(eq + 1).trim();
      return USER_RE.test(v) ? v : undefined;
    }
  }
  return undefined;
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

function parseRating(v: unknown): StarRating | undefined {
  const r = asRecord(v);
  if (r === undefined) return undefined;
  if (typeof r["error"] === "string") return { error: r["error"] };
  if (typeof r["stars"] === "number") {
    return { stars: r["stars"], color: typeof r["color"] === "string" ? r["color"] : "black" };
  }
  return undefined;
}

/** Reads a reviews answer; anything malformed counts as reviews being unavailable. */
export function parseReviewsAnswer(body: string): ReviewsOutcome {
  let v: Record<string, unknown> | undefined;
  try {
    v = asRecord(JSON.parse(body));
  } catch {
    v = undefined;
  }
  const list = v?.["reviews"];
  if (v === undefined || !Array.isArray(list)) return { ok: false, error: REVIEWS_UNAVAILABLE };
  const reviews: ReviewView[] = [];
  for (const item of list) {
    const r = asRecord(item);
    if (r === undefined || typeof r["reviewer"] !== "string" || typeof r["text"] !== "string") {
      continue;
    }
    const rating = parseRating(r["rating"]);
    reviews.push(
      rating === undefined
        ? { reviewer: r["reviewer"], text: r["text"] }
        : { reviewer: r["reviewer"], text: r["text"], rating },
    );
  }
  return {
    ok: true,
    version: typeof v["version"] === "string" ? v["version"] : undefined,
    podname: typeof v["podname"] === "string" ? v["podname"] : undefined,
    reviews,
  };
}

interface Upstreams {
  details(id: number, headers: http.OutgoingHttpHeaders): Promise<DetailsOutcome>;
  reviews(id: number, headers: http.OutgoingHttpHeaders): Promise<ReviewsOutcome>;
}

function upstreams(config: ProductpageConfig, log: AppLog): Upstreams {
  const agent = createAgent();
  return {
    async details(id, headers) {
      const r = await httpGet(`${config.detailsUrl}/details/${id}`, {
        headers,
        timeoutMs: config.detailsTimeoutMs,
        agent,
      });
      if (r.ok && r.status === 200) {
        try {
          const d = asRecord(JSON.parse(r.body));
          if (d !== undefined) return { ok: true, details: d };
        } catch {
          // reported below
        }
      }
      log.warn("details unavailable", { reason: r.ok ? `status ${r.status}` : r.reason });
      return { ok: false, error: DETAILS_UNAVAILABLE };
    },
    async reviews(id, headers) {
      let reason = "";
      // Two attempts by default, like Istio's productpage; the fault-injection tasks rely on it.
      for (let attempt = 1; attempt <= config.reviewsAttempts; attempt++) {
        const r = await httpGet(`${config.reviewsUrl}/reviews/${id}`, {
          headers,
          timeoutMs: config.reviewsTimeoutMs,
          agent,
        });
        if (r.ok && r.status === 200) {
          const parsed = parseReviewsAnswer(r.body);
          if (parsed.ok) return parsed;
          reason = "malformed answer";
        } else {
          reason = r.ok ? `status ${r.status}` : r.reason;
        }
      }
      log.warn("reviews unavailable", { reason, attempts: config.reviewsAttempts });
      return { ok: false, error: REVIEWS_UNAVAILABLE };
    },
  };
}

async function productJson(
  product: Product,
  up: Upstreams,
  headers: http.OutgoingHttpHeaders,
): Promise<Record<string, unknown>> {
  const [details, reviews] = await Promise.all([
    up.details(product.id, headers),
    up.reviews(product.id, headers),
  ]);
  return {
    id: product.id,
    title: product.title,
    details: details.ok ? details.details : { error: details.error },
    reviews: reviews.ok
      ? { version: reviews.version, podname: reviews.podname, reviews: reviews.reviews }
      : { error: reviews.error },
    reviewsVersion: reviews.ok ? (reviews.version ?? null) : null,
  };
}

/** Passes an upstream's JSON answer through, or answers 503 with the reason. */
function passThrough(
  res: Res,
  url: string,
  headers: http.OutgoingHttpHeaders,
  timeoutMs: number,
  agent: http.Agent,
): Promise<void> {
  return httpGet(url, { headers, timeoutMs, agent }).then((r) => {
    if (r.ok) sendBody(res, r.status, r.body, "application/json");
    else sendJson(res, 503, { error: r.reason });
  });
}

function login(req: Req, res: Res): Promise<void> {
  return readBody(req, 4096).then((b) => {
    if (!b.ok) {
      sendJson(res, b.status, { error: b.reason }, closeIfHttp1(req));
      return;
    }
    const name = new URLSearchParams(b.body.toString()).get("username")?.trim() ?? "";
    if (!USER_RE.test(name)) {
      sendBody(
        res,
        400,
        `<p>User names are 1 to 64 letters, digits, dots, dashes or underscores; got "${escapeHtml(name)}".</p>\n`,
        "text/html; charset=utf-8",
      );
      return;
    }
    res.writeHead(302, {
      location: "/productpage",
      "set-cookie": `user=${name}; Path=/; HttpOnly; SameSite=Lax`,
      "content-length": 0,
    });
    res.end();
  });
}

export function productpageHandler(config: ProductpageConfig, log: AppLog): Handler {
  const up = upstreams(config, log);
  const passAgent = createAgent();
  return (req, res) => {
    const { path, query } = splitTarget(req.url);
    const user = userFromCookie(req.headers.cookie);
    if (path === "/login") {
      if (req.method === "POST") return login(req, res);
      sendJson(res, 405, { error: "sign in with POST" }, { allow: "POST" });
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendJson(res, 405, { error: "method not allowed" }, { allow: "GET, HEAD" });
      return;
    }
    const headers = forwardHeaders(req.headers, user);
    if (path === "/health" || path === "/healthz") {
      sendJson(res, 200, { status: "Productpage is healthy" });
      return;
    }
    if (path === "/" || path === "/index.html") {
      sendBody(res, 200, renderIndex(PRODUCTS), "text/html; charset=utf-8");
      return;
    }
    if (path === "/logout") {
      res.writeHead(302, {
        location: "/productpage",
        "set-cookie": "user=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax",
        "content-length": 0,
      });
      res.end();
      return;
    }
    if (path === "/productpage") {
      const product = findProduct(parseId(query.get("id") ?? "0") ?? -1);
      if (product === undefined) {
        sendBody(res, 404, "<p>No such product.</p>\n", "text/html; charset=utf-8");
        return;
      }
      return Promise.all([up.details(product.id, headers), up.reviews(product.id, headers)]).then(
        ([details, reviews]) => {
          const html = renderProductPage({ product, user, details, reviews });
          sendBody(res, 200, html, "text/html; charset=utf-8");
        },
      );
      return;
    }
    if (path === "/api/v1/products") {
      sendJson(
        res,
        200,
        PRODUCTS.map((p) => ({ id: p.id, title: p.title, descriptionHtml: escapeHtml(p.summary) })),
      );
      return;
    }
    const m = /^\/api\/v1\/products\/([^/]+)(?:\/(reviews|ratings))?$/.exec(path);
    if (m !== null) {
      const id = parseId(m[1]);
      if (id === undefined) {
        sendJson(res, 400, { error: "please provide numeric product ID" });
        return;
      }
      if (m[2] === "reviews") {
        return passThrough(
          res,
          `${config.reviewsUrl}/reviews/${id}`,
          headers,
          config.reviewsTimeoutMs,
          passAgent,
        );
        return;
      }
      if (m[2] === "ratings") {
        return passThrough(
          res,
          `${config.ratingsUrl}/ratings/${id}`,
          headers,
          config.ratingsTimeoutMs,
          passAgent,
        );
        return;
      }
      const product = findProduct(id);
      if (product === undefined) {
        sendJson(res, 404, { error: `no product with id ${id}` });
        return;
      }
      return productJson(product, up, headers).then((body) => sendJson(res, 200, body));
      return;
    }
    sendJson(res, 404, { error: "not found" });
  };
}

export function startProductpage(config: ProductpageConfig, log: AppLog): Promise<RunningHttpApp> {
  return listenHttp({
    log,
    host: config.host,
    port: config.port,
    handler: productpageHandler(config, log),
  });
}

if (import.meta.main) {
  runMain(async () => {
    const config = loadProductpageConfig(process.env);
    const log = new AppLog("productpage", { access: config.accessLog });
    const app = await startProductpage(config, log);
    log.info("upstreams", {
      details: config.detailsUrl,
      reviews: config.reviewsUrl,
      ratings: config.ratingsUrl,
    });
    onShutdown(log, config.graceMs, () => app.close(config.graceMs));
  });
}
