/**
 * Label matching with Kubernetes semantics: equality maps (Service selectors, workload
 * selectors) and full `LabelSelector`s (matchLabels + matchExpressions).
 */
import type { LabelSelector } from "./objects.ts";

type Labels = Readonly<Record<string, string>>;

/** Every key/value of `selector` is present in `labels`. An empty selector selects everything. */
export function isSubset(selector: Labels, labels: Labels): boolean {
  for (const k in selector) {
    if (labels[k] !== selector[k]) return false;
  }
  return true;
}

/** `isSubset`, but an empty or missing selector selects nothing (Service and workload selectors). */
export function selectsNonEmpty(selector: Labels | undefined, labels: Labels): boolean {
  if (selector === undefined || isEmpty(selector)) return false;
  return isSubset(selector, labels);
}

export function isEmpty(map: Labels | undefined): boolean {
  if (map === undefined) return true;
  for (const _ in map) return false;
  return true;
}

/**
 * `metav1.LabelSelectorAsSelector` semantics: a missing selector matches nothing, an empty one
 * matches everything, otherwise every term must hold.
 */
export function labelSelectorMatches(selector: LabelSelector | undefined, labels: Labels): boolean {
  if (selector === undefined) return false;
  if (selector.matchLabels !== undefined && !isSubset(selector.matchLabels, labels)) return false;
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, req.key);
    const v = labels[req.key];
    const values = req.values ?? [];
    switch (req.operator) {
      case "In":
        if (!has || v === undefined || !values.includes(v)) return false;
        break;
      case "NotIn":
        if (has && v !== undefined && values.includes(v)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
      default:
        // An invalid selector selects nothing (Kubernetes refuses to build it).
        return false;
    }
  }
  return true;
}

/** A stable text form of a label map (sorted `k=v` joined by commas), for keys and fingerprints. */
export function formatLabels(labels: Labels | undefined): string {
  if (labels === undefined) return "";
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k] ?? ""}`)
    .join(",");
}
