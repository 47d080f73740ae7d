/**
 * Errors with stable codes. Expected outcomes (policy denied, no upstream, invalid resource) are
 * values, not exceptions; these are for failures, and carry a `code` an operator can grep for and
 * the `cause` that led to them.
 */
export class AmbientError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AmbientError";
    this.code = code;
  }
}

/** A value-level outcome: success with a value, or failure with a reason. */
export type Result<T, R = string> = { ok: true; value: T } | { ok: false; reason: R };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function fail<R>(reason: R): { ok: false; reason: R } {
  return { ok: false, reason };
}

/** The errno-style code of a Node system error, if any. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === "object" && err !== null && "code" in err) {
    const code = err.code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}
