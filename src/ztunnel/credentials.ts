/**
 * Reading what ztunnel presents to and trusts from the control plane: the root certificates of
 * `XDS_ROOT_CA` / `CA_ROOT_CA` and the `AUTH_TOKEN` bearer token. Both are read again for every
 * connection or request, so a rotated token or root bundle is picked up without a restart.
 */
import { readFile } from "node:fs/promises";
import { AmbientError } from "../lib/errors.ts";
import type { RootCertSource, TokenSource } from "./config.ts";

/** The PEM roots, or undefined for the system's (`SYSTEM`). */
export async function readRootCert(
  source: RootCertSource,
  variable: string,
): Promise<string | undefined> {
  switch (source.kind) {
    case "system":
      return undefined;
    case "pem":
      return source.pem;
    case "file":
      try {
        return await readFile(source.path, "utf8");
      } catch (err) {
        throw new AmbientError(
          "ZTUNNEL_ROOT_CERT",
          `cannot read the root certificate ${source.path} (${variable}): ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        );
      }
  }
}

/** A function returning the current token (undefined: send none). */
export function tokenReader(source: TokenSource): () => Promise<string | undefined> {
  switch (source.kind) {
    case "none":
      return () => Promise.resolve(undefined);
    case "static":
      return () => Promise.resolve(source.token);
    case "file":
      return async () => {
        try {
          return (await readFile(source.path, "utf8")).trim();
        } catch (err) {
          throw new AmbientError(
            "ZTUNNEL_TOKEN",
            `cannot read the token ${source.path} (AUTH_TOKEN): ${err instanceof Error ? err.message : String(err)}`,
            { cause: err },
          );
        }
      };
  }
}
