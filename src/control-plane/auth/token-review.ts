/**
 * Kubernetes authentication: a caller's projected service account token is checked by the API
 * server (`POST /apis/authentication.k8s.io/v1/tokenreviews`, audiences `istio-ca`), as istiod
 * does. The bound pod comes from the review's `extra` (`authentication.kubernetes.io/pod-name`,
 * `pod-uid`, and on newer servers `node-name`); the node otherwise from that pod in the store.
 */
import { request as httpRequest, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Metadata } from "@grpc/grpc-js";
import type { KubeConfig } from "@kubernetes/client-node";
import { fail, ok, type Result } from "../../lib/errors.ts";
import { bearerToken, parseServiceAccountUser, type Authenticator, type Caller } from "./caller.ts";

export const EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name";
export const EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid";
export const EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name";

/** What the authenticator needs to know about pods (the config store answers). */
export type PodLookup = (
  namespace: string,
  name: string,
) => { readonly uid: string; readonly node: string | undefined } | undefined;

interface TokenReviewStatus {
  authenticated?: boolean;
  error?: string;
  audiences?: string[];
  user?: { username?: string; extra?: Record<string, string[]> };
}

export class TokenReviewAuthenticator implements Authenticator {
  readonly #kc: KubeConfig;
  readonly #audiences: readonly string[];
  readonly #pods: PodLookup;
  readonly #timeoutMs: number;

  constructor(options: {
    kubeConfig: KubeConfig;
    audiences: readonly string[];
    pods: PodLookup;
    timeoutMs?: number;
  }) {
    this.#kc = options.kubeConfig;
    this.#audiences = options.audiences;
    this.#pods = options.pods;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  async authenticate(metadata: Metadata): Promise<Result<Caller>> {
    const token = bearerToken(metadata);
    if (!token.ok) return token;
    return this.review(token.value);
  }

  /** Asks the API server about a token. A failure to reach it throws (callers retry). */
  async review(token: string): Promise<Result<Caller>> {
    const body = {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenReview",
      spec: { token, audiences: [...this.#audiences] },
    };
    const { status, json } = await this.#post("/apis/authentication.k8s.io/v1/tokenreviews", body);
    if (status !== 201 && status !== 200) {
      const msg = (json as { message?: unknown } | undefined)?.message;
      throw new Error(
        `TokenReview failed with HTTP ${status}${typeof msg === "string" ? `: ${msg}` : ""}; check the control plane may create tokenreviews (system:auth-delegator)`,
      );
    }
    const st = (json as { status?: TokenReviewStatus } | undefined)?.status ?? {};
    if (st.authenticated !== true) {
      return fail(
        `token rejected by the Kubernetes API server: ${st.error ?? "not authenticated"}`,
      );
    }
    if (st.audiences !== undefined && !st.audiences.some((a) => this.#audiences.includes(a))) {
      return fail(`token audience is not ${this.#audiences.join(" or ")}`);
    }
    const username = st.user?.username ?? "";
    const sa = parseServiceAccountUser(username);
    if (sa === undefined) return fail(`"${username}" is not a service account`);
    const extra = st.user?.extra ?? {};
    const podName = extra[EXTRA_POD_NAME]?.[0];
    const podUid = extra[EXTRA_POD_UID]?.[0];
    let node = extra[EXTRA_NODE_NAME]?.[0];
    let pod: Caller["pod"];
    if (podName !== undefined && podUid !== undefined) {
      pod = { name: podName, uid: podUid };
      const known = this.#pods(sa.namespace, podName);
      // The pod a token is bound to must still exist as that incarnation.
      if (known !== undefined && known.uid !== "" && known.uid !== podUid) {
        return fail(
          `the token's pod ${sa.namespace}/${podName} was replaced (uid ${podUid} is gone)`,
        );
      }
      node ??= known?.node;
    }
    return ok({
      namespace: sa.namespace,
      serviceAccount: sa.serviceAccount,
      node: node === "" ? undefined : node,
      pod,
      via: "token-review",
    });
  }

  async #post(path: string, body: unknown): Promise<{ status: number; json: unknown }> {
    const cluster = this.#kc.getCurrentCluster();
    if (cluster === null) throw new Error("kubeconfig has no current cluster");
    const server = new URL(cluster.server);
    const url = new URL(server.pathname.replace(/\/$/, "") + path, server);
    const opts: RequestOptions & { headers: Record<string, string> } = {
      method: "POST",
      headers: {},
    };
    await this.#kc.applyToHTTPSOptions(opts);
    const payload = JSON.stringify(body);
    opts.headers["accept"] = "application/json";
    opts.headers["content-type"] = "application/json";
    opts.headers["content-length"] = String(Buffer.byteLength(payload));
    opts.timeout = this.#timeoutMs;
    return new Promise((resolve, reject) => {
      const send = url.protocol === "http:" ? httpRequest : httpsRequest;
      const req = send(url, opts, (res) => {
        res.setEncoding("utf8");
        let text = "";
        res.on("data", (c: string) => (text += c));
        res.on("end", () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
        res.on("error", reject);
      });
      req.on("timeout", () =>
        req.destroy(new Error(`TokenReview timed out after ${this.#timeoutMs} ms`)),
      );
      req.on("error", reject);
      req.end(payload);
    });
  }
}
