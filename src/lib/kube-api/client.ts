/**
 * A small write client for the Kubernetes API (create, get, patch, delete, bind), with the
 * connection settings of `@kubernetes/client-node`'s KubeConfig. Reads that need a cache go
 * through `KubeConfigStore` (src/lib/config); this is for the writes a kubelet or controller
 * makes. Answers are values: the object, or the status code and message of the refusal.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { KubeHttp, statusOf } from "../config/kube-http.ts";
import type { Result } from "../errors.ts";
import type { PatchType } from "./patch.ts";
import { isObject, type Json } from "./status.ts";

export interface ClientFailure {
  /** HTTP status; 0 when the server could not be reached. */
  readonly code: number;
  readonly reason: string;
  readonly message: string;
}

export type ClientResult<T = Json> = Result<T, ClientFailure>;

const CONTENT_TYPES: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  json: "application/json-patch+json",
};

/** The REST path of a collection or object: `/api/v1/namespaces/ns/pods/name/status`. */
export function resourcePath(
  apiVersion: string,
  plural: string,
  opts: { namespace?: string; name?: string; subresource?: string } = {},
): string {
  let p = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  if (opts.namespace !== undefined) p += `/namespaces/${encodeURIComponent(opts.namespace)}`;
  p += `/${plural}`;
  if (opts.name !== undefined) p += `/${encodeURIComponent(opts.name)}`;
  if (opts.subresource !== undefined) p += `/${opts.subresource}`;
  return p;
}

export class KubeClient {
  readonly #http: KubeHttp;
  readonly #timeoutMs: number;

  constructor(kubeConfig: KubeConfig, opts: { timeoutMs?: number } = {}) {
    this.#http = new KubeHttp(kubeConfig);
    this.#timeoutMs = opts.timeoutMs ?? 15_000;
  }

  async request(
    method: string,
    path: string,
    opts: { body?: unknown; contentType?: string; query?: Record<string, string> } = {},
  ): Promise<ClientResult> {
    let res;
    try {
      res = await this.#http.call(method, path, { ...opts, timeoutMs: this.#timeoutMs });
    } catch (err) {
      return {
        ok: false,
        reason: {
          code: 0,
          reason: "Unreachable",
          message: `${method} ${path}: ${err instanceof Error ? err.message : String(err)}`,
        },
      };
    }
    if (res.status >= 200 && res.status < 300) {
      return { ok: true, value: isObject(res.body) ? res.body : {} };
    }
    const s = statusOf(res.body);
    return {
      ok: false,
      reason: {
        code: res.status,
        reason: s.reason ?? "",
        message:
          `${method} ${path}: ${res.status} ${s.message ?? (typeof res.body === "string" ? res.body : "")}`.trim(),
      },
    };
  }

  get(path: string): Promise<ClientResult> {
    return this.request("GET", path);
  }

  create(collectionPath: string, obj: Json): Promise<ClientResult> {
    return this.request("POST", collectionPath, { body: obj });
  }

  replace(path: string, obj: Json): Promise<ClientResult> {
    return this.request("PUT", path, { body: obj });
  }

  patch(path: string, patch: unknown, type: PatchType = "merge"): Promise<ClientResult> {
    return this.request("PATCH", path, { body: patch, contentType: CONTENT_TYPES[type] });
  }

  /**
   * DELETE with its options in the query: KubeHttp sends a DELETE body without a length, which
   * a server reads as a second request, so none is sent.
   */
  delete(path: string, opts: { gracePeriodSeconds?: number } = {}): Promise<ClientResult> {
    const query: Record<string, string> = {};
    if (opts.gracePeriodSeconds !== undefined) {
      query["gracePeriodSeconds"] = String(opts.gracePeriodSeconds);
    }
    return this.request("DELETE", path, { query });
  }
}
