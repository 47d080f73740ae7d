/**
 * The admin endpoint (127.0.0.1:15000, ztunnel's own netns): `/` lists the endpoints,
 * `/config_dump`, `/logging`, `/quitquitquit` (POST: drain and exit).
 */
import type { LevelSpec, LogOutput } from "../../lib/log/index.ts";
import type { HttpAnswer, HttpHandler } from "./http.ts";
import { handleLogging } from "./logging.ts";

export interface AdminDeps {
  readonly configDump: () => unknown;
  readonly logOutput: LogOutput;
  readonly initialLogSpec: LevelSpec;
  /** Starts the graceful shutdown (the response is sent first). */
  readonly quit: () => void;
}

const ENDPOINTS: readonly [string, string][] = [
  ["config_dump", "dump the current ztunnel configuration and state (JSON)"],
  ["logging", "query (GET) or change (POST ?level=) the log level"],
  ["quitquitquit", "drain and shut down (POST)"],
];

function dashboard(): HttpAnswer {
  const rows = ENDPOINTS.map(([p, d]) => `<tr><td><a href="${p}">/${p}</a></td><td>${d}</td></tr>`);
  return {
    status: 200,
    contentType: "text/html; charset=utf-8",
    body: `<!DOCTYPE html>\n<html><head><title>ztunnel admin</title></head><body>\n<h1>ztunnel admin</h1>\n<table>\n${rows.join("\n")}\n</table>\n</body></html>\n`,
  };
}

export function adminHandler(deps: AdminDeps): HttpHandler {
  return ({ method, path, query }) => {
    switch (path) {
      case "/":
        return dashboard();
      case "/config_dump":
        if (method !== "GET") return { status: 405, body: "method not allowed\n" };
        return {
          status: 200,
          contentType: "application/json",
          body: JSON.stringify(deps.configDump(), null, 2) + "\n",
        };
      case "/logging":
        return handleLogging(method, query, deps.logOutput, deps.initialLogSpec);
      case "/quitquitquit":
        if (method !== "POST") return { status: 405, body: "method not allowed (use POST)\n" };
        // Answer first: the shutdown closes this server.
        setImmediate(deps.quit);
        return { status: 200, body: "shutting down\n" };
      default:
        return { status: 404, body: "not found\n" };
    }
  };
}
