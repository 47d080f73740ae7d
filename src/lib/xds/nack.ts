/**
 * The NACK message both sides use: `error_detail.message` = `"<name>: <reason>; <name>: <reason>"`
 * (ztunnel's format). The server reads back which resources were rejected by matching each
 * `; `-separated part against the names it sent, so names containing `: ` cannot confuse it.
 */

/** One resource a client refused, and why. */
export interface Rejection {
  readonly name: string;
  readonly reason: string;
}

export function formatRejections(rejections: readonly Rejection[]): string {
  return rejections.map((r) => `${r.name}: ${r.reason}`).join("; ");
}

/**
 * The rejections in `message` that name one of `candidates`, in message order, first mention
 * of each name only. Parts that name no candidate (free text) are folded into the reason of the
 * rejection before them, since a reason may itself contain `; `.
 */
export function parseRejections(message: string, candidates: ReadonlySet<string>): Rejection[] {
  const found: { name: string; reason: string }[] = [];
  const seen = new Set<string>();
  let current: { name: string; reason: string } | undefined;
  for (const part of message.split("; ")) {
    // Try every `: ` in the part, shortest prefix first: a name may itself contain `: `.
    let name: string | undefined;
    let at = part.indexOf(": ");
    while (at !== -1) {
      const candidate = part.slice(0, at);
      if (candidates.has(candidate)) {
        name = candidate;
        break;
      }
      at = part.indexOf(": ", at + 1);
    }
    if (name !== undefined) {
      current = seen.has(name) ? undefined : { name, reason: part.slice(at + 2) };
      if (current !== undefined) {
        seen.add(name);
        found.push(current);
      }
    } else if (current !== undefined) {
      current.reason += `; ${part}`;
    }
  }
  return found;
}
