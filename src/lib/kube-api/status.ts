/** Kubernetes `Status` bodies: what the API server answers when a request fails. */

export type Json = Record<string, unknown>;

export type StatusReason =
  | "BadRequest"
  | "Unauthorized"
  | "Forbidden"
  | "NotFound"
  | "AlreadyExists"
  | "Conflict"
  | "Invalid"
  | "MethodNotAllowed"
  | "UnsupportedMediaType"
  | "Expired"
  | "Gone"
  | "RequestEntityTooLarge"
  | "InternalError";

export interface ApiFailure {
  readonly ok: false;
  readonly code: number;
  readonly status: Json;
}

export interface ApiSuccess {
  readonly ok: true;
  readonly code: number;
  /** The object as stored (frozen: copy before changing it). */
  readonly object: Json;
}

/** What a write returns: the stored object, or the Status to answer with. */
export type ApiOutcome = ApiSuccess | ApiFailure;

export function statusBody(
  code: number,
  reason: StatusReason,
  message: string,
  details?: Json,
): Json {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    ...(details !== undefined ? { details } : {}),
    code,
  };
}

export function failure(code: number, reason: StatusReason, message: string): ApiFailure {
  return { ok: false, code, status: statusBody(code, reason, message) };
}

export function success(code: number, object: Json): ApiSuccess {
  return { ok: true, code, object };
}

export function isObject(v: unknown): v is Json {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** The metadata map of an object (created when missing, for objects being built). */
export function meta(o: Json): Json {
  if (!isObject(o["metadata"])) o["metadata"] = {};
  return o["metadata"] as Json;
}

/** Reads metadata without creating it. */
export function metaOf(o: Json): Json {
  return isObject(o["metadata"]) ? o["metadata"] : {};
}

export function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}
