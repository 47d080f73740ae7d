/**
 * When a crashed component is started again: at once after a first crash, then 1 s doubling to
 * 30 s while it keeps crashing; a component that ran for a minute counts as healthy again. (As
 * the kubelet restarts containers, with shorter steps: a control plane or ztunnel that is down
 * costs the whole node.)
 */
export const BACKOFF_FIRST_MS = 1000;
export const BACKOFF_MAX_MS = 30_000;
/** A run at least this long resets the count. */
export const HEALTHY_RUN_MS = 60_000;

/** Consecutive crashes after this exit: reset by a long run. */
export function crashCount(previous: number, ranMs: number): number {
  return ranMs >= HEALTHY_RUN_MS ? 1 : previous + 1;
}

/** Delay before the next start after `crashes` consecutive crashes (1 = the first). */
export function restartDelayMs(crashes: number): number {
  if (crashes <= 1) return 0;
  return Math.min(BACKOFF_FIRST_MS * 2 ** (crashes - 2), BACKOFF_MAX_MS);
}
