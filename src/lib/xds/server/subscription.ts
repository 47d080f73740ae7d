/**
 * Delta xDS subscription bookkeeping for one type on one stream, as istiod does it:
 * - first request: wildcard when it subscribes to nothing, or to `*` (after its own
 *   unsubscribes: ztunnel's on-demand mode subscribes and unsubscribes `*` in one message to mean
 *   "nothing yet"); an explicit subscriber also keeps the names it reports holding
 *   (`initial_resource_versions`), so its on-demand subscriptions survive a reconnect;
 * - later requests: `*` in subscribe/unsubscribe turns wildcard on/off; other names are added or
 *   removed. An empty list changes nothing.
 */
export interface Subscription {
  wildcard: boolean;
  /** Explicitly subscribed names and aliases (never `*`). */
  readonly names: Set<string>;
}

export interface SubscriptionChange {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly wildcardChanged: boolean;
}

export interface SubscriptionRequest {
  readonly resourceNamesSubscribe: readonly string[];
  readonly resourceNamesUnsubscribe: readonly string[];
  readonly initialResourceVersions?: Readonly<Record<string, string>>;
}

export function initialSubscription(req: SubscriptionRequest): Subscription {
  const names = new Set<string>(req.resourceNamesSubscribe);
  for (const n of req.resourceNamesUnsubscribe) names.delete(n);
  const wildcard = req.resourceNamesSubscribe.length === 0 || names.has("*");
  names.delete("*");
  if (!wildcard) {
    for (const n of Object.keys(req.initialResourceVersions ?? {})) if (n !== "*") names.add(n);
  }
  return { wildcard, names };
}

/** Applies a later request's subscribe/unsubscribe lists in place; reports what changed. */
export function updateSubscription(
  sub: Subscription,
  req: SubscriptionRequest,
): SubscriptionChange {
  const added: string[] = [];
  const removed: string[] = [];
  const wasWildcard = sub.wildcard;
  for (const n of req.resourceNamesSubscribe) {
    if (n === "*") sub.wildcard = true;
    else if (!sub.names.has(n)) {
      sub.names.add(n);
      added.push(n);
    }
  }
  for (const n of req.resourceNamesUnsubscribe) {
    if (n === "*") sub.wildcard = false;
    else if (sub.names.delete(n)) removed.push(n);
  }
  return {
    // A name both subscribed and unsubscribed in one request ends up unsubscribed.
    added: removed.length === 0 ? added : added.filter((n) => sub.names.has(n)),
    removed,
    wildcardChanged: sub.wildcard !== wasWildcard,
  };
}
