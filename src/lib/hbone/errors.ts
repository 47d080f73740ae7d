/**
 * Failures of the HBONE client, with stable codes. A refused CONNECT (any non-200) carries the
 * status the server answered, so callers can tell a policy denial (401) from an upstream failure
 * (503) or a bad request (400).
 */
import { AmbientError } from "../errors.ts";

export type HboneErrorCode =
  /** TCP connect to the peer's port 15008 did not complete in time. */
  | "HBONE_CONNECT_TIMEOUT"
  /** TCP connect failed (refused, unreachable, ...). */
  | "HBONE_CONNECT_FAILED"
  /** The TLS handshake failed or was cut (bad certificate, untrusted root, expired, ...). */
  | "HBONE_TLS_FAILED"
  /** The server's certificate is valid but not for any of the expected identities. */
  | "HBONE_IDENTITY_MISMATCH"
  /** The peer did not negotiate ALPN `h2`. */
  | "HBONE_ALPN"
  /** No certificate could be obtained for the source identity. */
  | "HBONE_CERTIFICATE"
  /** The server answered the CONNECT with a status other than 200. */
  | "HBONE_STATUS"
  /** The stream or its connection ended before the server answered. */
  | "HBONE_STREAM_FAILED"
  /** The caller aborted the request. */
  | "HBONE_ABORTED"
  /** The client (pool) was closed. */
  | "HBONE_CLOSED";

export class HboneError extends AmbientError {
  declare readonly code: HboneErrorCode;
  /** The HTTP status of a refused CONNECT (`HBONE_STATUS`), otherwise undefined. */
  readonly status: number | undefined;

  constructor(
    code: HboneErrorCode,
    message: string,
    options: { cause?: unknown; status?: number } = {},
  ) {
    super(code, message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = "HboneError";
    this.status = options.status;
  }
}

export function isHboneError(err: unknown): err is HboneError {
  return err instanceof HboneError;
}
