/**
 * Who is calling the control plane, as authentication established it: the caller's own identity
 * (namespace + service account), the node it runs on, and its pod when the token is bound to one.
 * xDS and the CA both authenticate through one `Authenticator`.
 */
import type { Metadata } from "@grpc/grpc-js";
import type { Result } from "../../lib/errors.ts";

export interface Caller {
  readonly namespace: string;
  readonly serviceAccount: string;
  /** The node the caller runs on (from the token, or from its pod). */
  readonly node: string | undefined;
  /** The pod the token is bound to (Kubernetes projected tokens). */
  readonly pod: { readonly name: string; readonly uid: string } | undefined;
  /** How the caller was authenticated. */
  readonly via: "local-token" | "token-review";
}

/** `system:serviceaccount:<ns>:<sa>` — the Kubernetes user name of a service account. */
export function serviceAccountUser(namespace: string, serviceAccount: string): string {
  return `system:serviceaccount:${namespace}:${serviceAccount}`;
}

/** Parses `system:serviceaccount:<ns>:<sa>`; undefined for any other user name. */
export function parseServiceAccountUser(
  user: string,
): { namespace: string; serviceAccount: string } | undefined {
  const parts = user.split(":");
  if (parts.length !== 4 || parts[0] !== "system" || parts[1] !== "serviceaccount")
    return undefined;
  const [, , namespace, serviceAccount] = parts as [string, string, string, string];
  if (namespace === "" || serviceAccount === "") return undefined;
  return { namespace, serviceAccount };
}

/** One line naming a caller for logs and messages. */
export function describeCaller(c: Caller): string {
  let s = `${c.namespace}/${c.serviceAccount}`;
  if (c.node !== undefined) s += ` on node ${c.node}`;
  if (c.pod !== undefined) s += ` (pod ${c.pod.name})`;
  return s;
}

/** Checks the bearer token of a call. Refusals are values with a reason an operator can act on. */
export interface Authenticator {
  authenticate(metadata: Metadata, peer: string): Promise<Result<Caller>>;
}

/** The bearer token from `authorization: Bearer <token>`, or why there is none. */
export function bearerToken(metadata: Metadata): Result<string> {
  const values = metadata.get("authorization");
  if (values.length === 0) {
    return {
      ok: false,
      reason:
        "no authorization header; send 'authorization: Bearer <token>' (ztunnel reads it from AUTH_TOKEN)",
    };
  }
  const v = values[0];
  const text = typeof v === "string" ? v : (v?.toString("utf8") ?? "");
  const m = /^Bearer\s+(\S+)\s*$/i.exec(text);
  if (m === null) return { ok: false, reason: "authorization header is not 'Bearer <token>'" };
  return { ok: true, value: m[1]! };
}
