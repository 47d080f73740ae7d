/**
 * `/logging` (ztunnel's admin, after Envoy's): GET (or POST without parameters) shows the current
 * level spec; POST `?level=<spec>` changes it at runtime — a bare level sets the default, and
 * `scope=level` entries are added to (or replace) the current ones; `?reset` goes back to the
 * start-up spec first. A bad spec is answered 400 with the reason and changes nothing.
 */
import { formatLevelSpec, parseLevelSpec } from "../../lib/log/index.ts";
import type { LevelSpec, LogOutput } from "../../lib/log/index.ts";
import type { HttpAnswer } from "./http.ts";

const HELP = `usage: GET /logging                          (show the current level)
usage: POST /logging?level=<level>            (change the default level)
usage: POST /logging?level=<scope>=<level>,...  (change scopes, e.g. xds=debug,access=off)
usage: POST /logging?reset                    (back to the start-up level)

levels: off|error|warn|info|debug|trace
`;

/** Applies `update` on top of `current`. */
export function mergeLevelSpec(current: LevelSpec, update: string): LevelSpec | string {
  const parsed = parseLevelSpec(update);
  if (!parsed.ok) return parsed.reason;
  const setsDefault = update.split(",").some((p) => p.trim() !== "" && !p.includes("="));
  return {
    defaultLevel: setsDefault ? parsed.value.defaultLevel : current.defaultLevel,
    scopes: new Map([...current.scopes, ...parsed.value.scopes]),
  };
}

export function handleLogging(
  method: string,
  query: URLSearchParams,
  output: LogOutput,
  initial: LevelSpec,
): HttpAnswer {
  const current = (): HttpAnswer => ({
    status: 200,
    body: `current log level is ${formatLevelSpec(output.spec)}\n`,
  });
  if (method === "GET") return current();
  if (method !== "POST") return { status: 405, body: `invalid HTTP method\n${HELP}` };
  const level = query.get("level");
  const reset = query.has("reset");
  if ((level === null || level === "") && !reset) return current();
  const base = reset ? initial : output.spec;
  const next = level === null || level === "" ? base : mergeLevelSpec(base, level);
  if (typeof next === "string") {
    return { status: 400, body: `invalid level "${level ?? ""}": ${next}\n${HELP}` };
  }
  output.setSpec(next);
  return current();
}
