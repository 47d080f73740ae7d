/**
 * The data behind the bookinfo sample: one book, its details, two reviews and their star
 * ratings. The shapes match Istio's bookinfo services so tools written for it keep working.
 */

export interface Product {
  readonly id: number;
  readonly title: string;
  readonly summary: string;
}

export const PRODUCTS: readonly Product[] = Object.freeze([
  Object.freeze({
    id: 0,
    title: "The Comedy of Errors",
    summary:
      "Two pairs of identical twins, separated at birth, land in the same town on the same day. " +
      "Nobody can tell who is who, and the mix-ups pile up until the family is reunited: " +
      "Shakespeare's shortest and most farcical play.",
  }),
]);

export function findProduct(id: number): Product | undefined {
  return PRODUCTS.find((p) => p.id === id);
}

/** The `details` service's answer for a product id (any id answers, as in Istio's sample). */
export function bookDetails(id: number): Record<string, string | number> {
  return {
    id,
    author: "William Shakespeare",
    year: 1595,
    type: "paperback",
    pages: 200,
    publisher: "PublisherA",
    language: "English",
    "ISBN-10": "1234567890",
    "ISBN-13": "123-1234567890",
  };
}

export interface ReviewText {
  readonly reviewer: string;
  readonly text: string;
}

export const REVIEW_TEXTS: readonly ReviewText[] = Object.freeze([
  Object.freeze({
    reviewer: "Reviewer1",
    text: "A fast, funny farce: the confusion builds scene by scene and pays off in the end.",
  }),
  Object.freeze({
    reviewer: "Reviewer2",
    text: "Slapstick more than poetry, but the reunion at the close is genuinely touching.",
  }),
]);

/** The `ratings` service's default stars per reviewer. */
export const DEFAULT_RATINGS: Readonly<Record<string, number>> = Object.freeze({
  Reviewer1: 5,
  Reviewer2: 4,
});

/** Parses a path's product id segment; only plain non-negative integers are ids. */
export function parseId(segment: string | undefined): number | undefined {
  if (segment === undefined || !/^\d{1,9}$/.test(segment)) return undefined;
  return Number(segment);
}
