/**
 * productpage's HTML, a pure function of what the upstream services answered. Plain HTML with
 * inline styles: the page must render without fetching anything else (no CDN in a test mesh).
 */
import type { Product } from "./catalog.ts";

export const DETAILS_UNAVAILABLE =
  "Sorry, product details are currently unavailable for this book.";
export const REVIEWS_UNAVAILABLE =
  "Sorry, product reviews are currently unavailable for this book.";

export type StarRating =
  { readonly stars: number; readonly color: string } | { readonly error: string };

export interface ReviewView {
  readonly reviewer: string;
  readonly text: string;
  readonly rating?: StarRating;
}

export type DetailsOutcome =
  | { readonly ok: true; readonly details: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly error: string };

export type ReviewsOutcome =
  | {
      readonly ok: true;
      readonly version: string | undefined;
      readonly podname: string | undefined;
      readonly reviews: readonly ReviewView[];
    }
  | { readonly ok: false; readonly error: string };

export interface ProductView {
  readonly product: Product;
  readonly user: string | undefined;
  readonly details: DetailsOutcome;
  readonly reviews: ReviewsOutcome;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `body{font-family:system-ui,sans-serif;margin:0;color:#222}
header{background:#1f3b57;color:#fff;padding:.8rem 1.5rem;display:flex;justify-content:space-between;align-items:center}
header a{color:#fff}header form{margin:0}main{max-width:60rem;margin:0 auto;padding:1rem 1.5rem}
.cols{display:flex;gap:2rem;flex-wrap:wrap}.cols section{flex:1;min-width:18rem}
dt{font-weight:600}dd{margin:0 0 .4rem 0}blockquote{margin:0 0 1rem 0;padding:.5rem 1rem;border-left:4px solid #ccc}
.stars{font-size:1.2rem}.error{color:#a40000}.served-by{color:#666;font-size:.9rem}`;

/** A colour from an upstream answer goes into a style attribute: names and hex codes only. */
function safeColor(c: string): string {
  return /^(?:[a-z]{1,20}|#[0-9a-f]{3}|#[0-9a-f]{6})$/i.test(c) ? c : "black";
}

function stars(rating: StarRating): string {
  if ("error" in rating) return `<p class="error rating-error">${escapeHtml(rating.error)}</p>`;
  const n = Math.max(0, Math.min(5, Math.round(rating.stars)));
  const color = safeColor(rating.color);
  return (
    `<span class="stars" data-stars="${n}" data-color="${color}" style="color: ${color}">` +
    `${"★".repeat(n)}${"☆".repeat(5 - n)}</span>`
  );
}

/** A JSON value from an upstream as page text. */
function asText(v: unknown): string {
  return typeof v === "string" || typeof v === "number" || typeof v === "boolean"
    ? String(v)
    : JSON.stringify(v);
}

function detailsSection(d: DetailsOutcome): string {
  if (!d.ok) {
    return `<section id="details"><h2>Book details</h2><p class="error">${escapeHtml(d.error)}</p></section>`;
  }
  const rows = ["type", "pages", "publisher", "language", "ISBN-10", "ISBN-13"]
    .filter((k) => d.details[k] !== undefined)
    .map((k) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(asText(d.details[k]))}</dd>`)
    .join("");
  const author = d.details["author"];
  const year = d.details["year"];
  const by =
    author === undefined
      ? ""
      : `<p>by ${escapeHtml(asText(author))}${year === undefined ? "" : `, ${escapeHtml(asText(year))}`}</p>`;
  return `<section id="details"><h2>Book details</h2>${by}<dl>${rows}</dl></section>`;
}

function reviewsSection(r: ReviewsOutcome): string {
  if (!r.ok) {
    return `<section id="reviews"><h2>Book reviews</h2><p class="error">${escapeHtml(r.error)}</p></section>`;
  }
  const items = r.reviews
    .map(
      (rv) =>
        `<blockquote><p>${escapeHtml(rv.text)}</p><footer>— ${escapeHtml(rv.reviewer)}` +
        `${rv.rating === undefined ? "" : ` ${stars(rv.rating)}`}</footer></blockquote>`,
    )
    .join("");
  const version = r.version ?? "unknown";
  const servedBy =
    `<p class="served-by">Reviews served by: <code>${escapeHtml(r.podname ?? "unknown")}</code>` +
    ` (<span class="reviews-version">${escapeHtml(version)}</span>)</p>`;
  return `<section id="reviews" data-version="${escapeHtml(version)}"><h2>Book reviews</h2>${items}${servedBy}</section>`;
}

function userBar(user: string | undefined): string {
  if (user !== undefined) {
    return `<span>Signed in as <b class="user">${escapeHtml(user)}</b> · <a href="/logout">sign out</a></span>`;
  }
  return (
    `<form method="post" action="/login"><input name="username" placeholder="user name" ` +
    `aria-label="user name" required> <button type="submit">Sign in</button></form>`
  );
}

export function renderProductPage(v: ProductView): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bookinfo: ${escapeHtml(v.product.title)}</title>
<style>${STYLE}</style></head>
<body><header><a href="/"><b>Bookinfo</b></a>${userBar(v.user)}</header>
<main><h1>${escapeHtml(v.product.title)}</h1><p class="summary">${escapeHtml(v.product.summary)}</p>
<div class="cols">${detailsSection(v.details)}${reviewsSection(v.reviews)}</div></main></body></html>
`;
}

export function renderIndex(products: readonly Product[]): string {
  const list = products
    .map((p) => `<li><a href="/productpage?id=${p.id}">${escapeHtml(p.title)}</a></li>`)
    .join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bookinfo</title><style>${STYLE}</style></head>
<body><header><b>Bookinfo</b></header><main><h1>Bookinfo sample</h1>
<p>A book page assembled from four services: productpage, details, reviews (v1, v2, v3) and ratings.</p>
<ul>${list}</ul>
<p>JSON: <a href="/api/v1/products">/api/v1/products</a>, <a href="/api/v1/products/0">/api/v1/products/0</a>,
<a href="/api/v1/products/0/reviews">/api/v1/products/0/reviews</a>,
<a href="/api/v1/products/0/ratings">/api/v1/products/0/ratings</a></p></main></body></html>
`;
}
