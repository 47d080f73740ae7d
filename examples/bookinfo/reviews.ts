/**
 * bookinfo `reviews`, all three versions in one program (REVIEWS_VERSION picks one):
 *   v1  reviews without stars;
 *   v2  black stars, from `ratings`;
 *   v3  red stars, from `ratings`.
 *
 *   GET /reviews/<id>  → {"id":"0","podname":...,"version":"v2","reviews":[{"reviewer":...,
 *                          "text":...,"rating":{"stars":5,"color":"black"}}]}
 *   GET /health        → {"status":"Reviews is healthy"}
 *
 * When `ratings` fails or is too slow, each review carries
 * `"rating":{"error":"Ratings service is currently unavailable"}` and the answer is still 200.
 *
 * Env: REVIEWS_VERSION (v1), ENABLE_RATINGS (false for v1, else true), STAR_COLOR (black for v2,
 * red for v3), RATINGS_URL (http://ratings:9080), RATINGS_TIMEOUT_MS (10000 with black stars,
 * 2500 otherwise, as Istio's sample), POD_NAME, PORT (9080), HOST, ACCESS_LOG, SHUTDOWN_GRACE_MS.
 */
import os from "node:os";
import { EnvReader, podName, runMain, serverSettings } from "../common/env.ts";
import type { ServerSettings } from "../common/env.ts";
import { listenHttp } from "../common/http-app.ts";
import type { Handler, RunningHttpApp } from "../common/http-app.ts";
import { AppLog } from "../common/log.ts";
import { sendJson, splitTarget } from "../common/respond.ts";
import { onShutdown } from "../common/shutdown.ts";
import { createAgent, httpGet } from "../common/upstream.ts";
import { REVIEW_TEXTS, parseId } from "./catalog.ts";
import { forwardHeaders } from "./propagation.ts";

export type ReviewsVersion = "v1" | "v2" | "v3";

export interface ReviewsConfig extends ServerSettings {
  readonly version: ReviewsVersion;
  readonly enableRatings: boolean;
  readonly starColor: string;
  readonly ratingsUrl: string;
  readonly ratingsTimeoutMs: number;
  readonly podName: string;
}

export function loadReviewsConfig(env: NodeJS.ProcessEnv): ReviewsConfig {
  const r = new EnvReader(env);
  const server = serverSettings(r, 9080);
  const version = r.oneOf<ReviewsVersion>("REVIEWS_VERSION", "v1", ["v1", "v2", "v3"]);
  const starColor = r.string("STAR_COLOR", version === "v3" ? "red" : "black");
  // The colour ends up in HTML attributes on the product page: accept names and hex only.
  if (!/^(?:[a-z]{1,20}|#[0-9a-f]{3}|#[0-9a-f]{6})$/i.test(starColor)) {
    r.problem(`STAR_COLOR=${JSON.stringify(starColor)}: expected a colour name or #rgb/#rrggbb`);
  }
  const config: ReviewsConfig = {
    ...server,
    version,
    enableRatings: r.bool("ENABLE_RATINGS", version !== "v1"),
    starColor,
    ratingsUrl: r.httpUrl("RATINGS_URL", "http://ratings:9080"),
    ratingsTimeoutMs: r.int(
      "RATINGS_TIMEOUT_MS",
      starColor === "black" ? 10_000 : 2_500,
      1,
      600_000,
    ),
    podName: podName(env, os.hostname()),
  };
  r.done("reviews");
  return Object.freeze(config);
}

export type Rating =
  { readonly stars: number; readonly color: string } | { readonly error: string };

export interface Review {
  readonly reviewer: string;
  readonly text: string;
  readonly rating?: Rating;
}

export const RATINGS_UNAVAILABLE = "Ratings service is currently unavailable";

/**
 * Builds the reviews answer. `ratings` is undefined when ratings are off, a map when the ratings
 * service answered, or a string (the failure) when it did not.
 */
export function buildReviews(
  config: ReviewsConfig,
  id: number,
  ratings: Readonly<Record<string, number>> | string | undefined,
): Record<string, unknown> {
  const reviews: Review[] = REVIEW_TEXTS.map((t) => {
    if (ratings === undefined) return { reviewer: t.reviewer, text: t.text };
    if (typeof ratings === "string") {
      return { reviewer: t.reviewer, text: t.text, rating: { error: RATINGS_UNAVAILABLE } };
    }
    const stars = ratings[t.reviewer];
    return stars === undefined
      ? { reviewer: t.reviewer, text: t.text }
      : { reviewer: t.reviewer, text: t.text, rating: { stars, color: config.starColor } };
  });
  return {
    id: String(id),
    podname: config.podName,
    clustername: "null",
    version: config.version,
    reviews,
  };
}

function parseRatingsAnswer(body: string): Record<string, number> | string {
  try {
    const v = JSON.parse(body) as { ratings?: unknown };
    if (typeof v.ratings === "object" && v.ratings !== null) {
      const out: Record<string, number> = {};
      for (const [k, s] of Object.entries(v.ratings)) if (typeof s === "number") out[k] = s;
      return out;
    }
  } catch {
    // fall through
  }
  return "ratings answered without a ratings object";
}

export function reviewsHandler(config: ReviewsConfig, log: AppLog): Handler {
  const agent = createAgent();
  return (req, res) => {
    const { path } = splitTarget(req.url);
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendJson(res, 405, { error: "method not allowed" }, { allow: "GET, HEAD" });
      return;
    }
    if (path === "/health" || path === "/healthz") {
      sendJson(res, 200, { status: "Reviews is healthy" });
      return;
    }
    const m = /^\/reviews\/([^/]+)$/.exec(path);
    if (m === null) {
      sendJson(res, 404, { error: "not found" });
      return;
    }
    const id = parseId(m[1]);
    if (id === undefined) {
      sendJson(res, 400, { error: "please provide numeric product ID" });
      return;
    }
    if (!config.enableRatings) {
      sendJson(res, 200, buildReviews(config, id, undefined));
      return;
    }
    return httpGet(`${config.ratingsUrl}/ratings/${id}`, {
      headers: forwardHeaders(req.headers, undefined),
      timeoutMs: config.ratingsTimeoutMs,
      agent,
    }).then((r) => {
      let ratings: Record<string, number> | string;
      if (!r.ok) ratings = r.reason;
      else if (r.status !== 200) ratings = `ratings answered ${r.status}`;
      else ratings = parseRatingsAnswer(r.body);
      if (typeof ratings === "string") log.warn("ratings unavailable", { reason: ratings });
      sendJson(res, 200, buildReviews(config, id, ratings));
    });
  };
}

export function startReviews(config: ReviewsConfig, log: AppLog): Promise<RunningHttpApp> {
  return listenHttp({
    log,
    host: config.host,
    port: config.port,
    handler: reviewsHandler(config, log),
  });
}

if (import.meta.main) {
  runMain(async () => {
    const config = loadReviewsConfig(process.env);
    const log = new AppLog(`reviews-${config.version}`, { access: config.accessLog });
    const app = await startReviews(config, log);
    log.info("serving reviews", {
      version: config.version,
      ratings: config.enableRatings ? config.ratingsUrl : "off",
      star_color: config.enableRatings ? config.starColor : undefined,
    });
    onShutdown(log, config.graceMs, () => app.close(config.graceMs));
  });
}
