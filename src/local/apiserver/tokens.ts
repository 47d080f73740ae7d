/**
 * Bearer-token authentication from a static token file, in kube-apiserver's `--token-auth-file`
 * format: one `token,user,uid[,"group1,group2"]` per line; blank lines and `#` comments skipped.
 */
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Result } from "../../lib/errors.ts";

export interface TokenEntry {
  readonly token: string;
  readonly user: string;
  readonly uid: string;
}

export function parseTokenFile(text: string, file = "token file"): Result<TokenEntry[], string[]> {
  const entries: TokenEntry[] = [];
  const problems: string[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const [token, user, uid] = line.split(",").map((s) => s.trim().replace(/^"|"$/g, ""));
    if (!token || !user) {
      problems.push(`${file}:${i + 1}: expected "token,user,uid[,groups]"`);
      return;
    }
    entries.push({ token, user, uid: uid ?? user });
  });
  if (entries.length === 0 && problems.length === 0) problems.push(`${file}: no tokens in it`);
  return problems.length > 0 ? { ok: false, reason: problems } : { ok: true, value: entries };
}

/** The user of a request's bearer token, or undefined (401). */
export function tokenAuthenticator(
  entries: readonly TokenEntry[],
): (req: IncomingMessage) => string | undefined {
  const known = entries.map((e) => ({ buf: Buffer.from(e.token), user: e.user }));
  return (req) => {
    const h = req.headers.authorization ?? "";
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    if (!m) return undefined;
    const given = Buffer.from(m[1]!);
    for (const k of known) {
      if (k.buf.length === given.length && timingSafeEqual(k.buf, given)) return k.user;
    }
    return undefined;
  };
}
