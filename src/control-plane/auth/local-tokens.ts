/**
 * Local authentication: the control plane is its own token issuer. At start-up it loads (or
 * creates, 0600) an ES256 signing key in its state directory and writes one JWT per node to
 * `<credentials-dir>/<node>.token` (0600). The token looks like a Kubernetes projected service
 * account token: subject `system:serviceaccount:istio-system:ztunnel`, audience `istio-ca`, and
 * the node in the `kubernetes.io` claim. The local runtime hands each node's ztunnel its file
 * (ztunnel's `AUTH_TOKEN`); every xDS stream and CA call verifies it.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from "node:crypto";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Metadata } from "@grpc/grpc-js";
import { SignJWT, jwtVerify, errors as joseErrors } from "jose";
import { AmbientError, errnoCode, fail, ok, type Result } from "../../lib/errors.ts";
import {
  bearerToken,
  parseServiceAccountUser,
  serviceAccountUser,
  type Authenticator,
  type Caller,
} from "./caller.ts";

export const TOKEN_ISSUER = "https://ambient.local/control-plane";
export const TOKEN_KEY_FILE = "token-signing-key.pem";
/** Node tokens live a day and are rewritten every half of that (ztunnel re-reads the file). */
export const NODE_TOKEN_TTL_SECONDS = 24 * 3600;

export interface TokenSubject {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly node?: string;
}

interface KubeClaim {
  namespace?: unknown;
  serviceaccount?: { name?: unknown };
  node?: { name?: unknown };
}

export class LocalTokenAuthority implements Authenticator {
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;
  readonly #audiences: readonly string[];
  readonly #now: () => number;

  private constructor(privateKey: KeyObject, audiences: readonly string[], now: () => number) {
    this.#privateKey = privateKey;
    this.#publicKey = createPublicKey(privateKey);
    this.#audiences = audiences;
    this.#now = now;
  }

  /** Loads `<stateDir>/token-signing-key.pem`, creating it (P-256, 0600) when absent. */
  static async loadOrCreate(
    stateDir: string,
    options: { audiences?: readonly string[]; now?: () => number } = {},
  ): Promise<LocalTokenAuthority> {
    const path = join(stateDir, TOKEN_KEY_FILE);
    let pem: string | undefined;
    try {
      pem = await readFile(path, "utf8");
    } catch (err) {
      if (errnoCode(err) !== "ENOENT") {
        throw new AmbientError(
          "TOKEN_KEY",
          `cannot read the token signing key ${path}: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
    if (pem === undefined) {
      const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
      await mkdir(stateDir, { recursive: true, mode: 0o700 });
      try {
        await writeFile(path, pem, { mode: 0o600, flag: "wx" });
      } catch (err) {
        if (errnoCode(err) !== "EEXIST") {
          throw new AmbientError(
            "TOKEN_KEY",
            `cannot write the token signing key ${path}: ${(err as Error).message}; check the state directory is writable`,
            { cause: err },
          );
        }
        pem = await readFile(path, "utf8");
      }
    }
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch (err) {
      throw new AmbientError(
        "TOKEN_KEY",
        `${path} is not a PEM private key: ${(err as Error).message}; delete it to have a new one made (existing node tokens stop working)`,
        { cause: err },
      );
    }
    if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
      throw new AmbientError("TOKEN_KEY", `${path} is not a P-256 key (ES256 tokens need one)`);
    }
    return new LocalTokenAuthority(key, options.audiences ?? ["istio-ca"], options.now ?? Date.now);
  }

  /** A signed token for a service account, optionally bound to a node. */
  async issue(subject: TokenSubject, ttlSeconds = NODE_TOKEN_TTL_SECONDS): Promise<string> {
    const nowSec = Math.floor(this.#now() / 1000);
    const kube: Record<string, unknown> = {
      namespace: subject.namespace,
      serviceaccount: { name: subject.serviceAccount },
    };
    if (subject.node !== undefined) kube["node"] = { name: subject.node };
    return new SignJWT({ "kubernetes.io": kube })
      .setProtectedHeader({ alg: "ES256", typ: "JWT" })
      .setIssuer(TOKEN_ISSUER)
      .setSubject(serviceAccountUser(subject.namespace, subject.serviceAccount))
      .setAudience(this.#audiences[0] ?? "istio-ca")
      .setIssuedAt(nowSec)
      .setNotBefore(nowSec - 60)
      .setExpirationTime(nowSec + ttlSeconds)
      .sign(this.#privateKey);
  }

  /** Writes `<dir>/<node>.token` (0600, atomically) for a node's ztunnel; returns the path. */
  async writeNodeToken(dir: string, node: string, systemNamespace: string): Promise<string> {
    const token = await this.issue({ namespace: systemNamespace, serviceAccount: "ztunnel", node });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, `${node}.token`);
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, token, { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, path);
    return path;
  }

  /** Verifies a token: signature, issuer, audience, time; returns who it names. */
  async verify(token: string): Promise<Result<Caller>> {
    try {
      const { payload } = await jwtVerify(token, this.#publicKey, {
        issuer: TOKEN_ISSUER,
        audience: [...this.#audiences],
        algorithms: ["ES256"],
        currentDate: new Date(this.#now()),
      });
      const sa = parseServiceAccountUser(payload.sub ?? "");
      if (sa === undefined) {
        return fail(`token subject "${payload.sub ?? ""}" is not a service account`);
      }
      const kube = payload["kubernetes.io"] as KubeClaim | undefined;
      const nodeName = kube?.node?.name;
      return ok({
        namespace: sa.namespace,
        serviceAccount: sa.serviceAccount,
        node: typeof nodeName === "string" && nodeName !== "" ? nodeName : undefined,
        pod: undefined,
        via: "local-token",
      });
    } catch (err) {
      return fail(describeJoseError(err, this.#audiences));
    }
  }

  authenticate(metadata: Metadata): Promise<Result<Caller>> {
    const token = bearerToken(metadata);
    if (!token.ok) return Promise.resolve(token);
    return this.verify(token.value);
  }
}

function describeJoseError(err: unknown, audiences: readonly string[]): string {
  if (err instanceof joseErrors.JWTExpired) {
    return "token expired; the control plane rewrites node tokens every 12 h, check the proxy re-reads its token file";
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === "aud") return `token audience is not ${audiences.join(" or ")}`;
    if (err.claim === "iss") return "token was not issued by this control plane";
    return `token claim ${err.claim} is invalid: ${err.reason}`;
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return "token signature does not verify: it was signed by another key (a token from an older state directory?)";
  }
  if (err instanceof joseErrors.JOSEError) return `token is not a valid JWT (${err.message})`;
  return `token check failed: ${err instanceof Error ? err.message : String(err)}`;
}
