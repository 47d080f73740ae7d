/**
 * The control plane's HTTP port (istiod's 15014): `/metrics`, `/ready`, and debug endpoints that
 * answer pretty-printed JSON — readable by a person, parseable by a script:
 *
 *   /debug                      the list of endpoints
 *   /debug/config-errors        every configuration problem (file, line, path, reason) and
 *                               conversion warnings per object
 *   /debug/connections          connected proxies: node, since, subscriptions, last ACK/NACK
 *   /debug/connections/<id>     one proxy, with every resource it was sent (name -> version)
 *   /debug/enforcement          who enforces each AuthorizationPolicy, and why
 *   /debug/resources            current resources (?type=address|authorization, ?name=, ?full=1)
 *   /debug/stats                pushes, resources, ACKs and NACKs per type
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { toJson } from "@bufbuild/protobuf";
import type { ConfigProblem } from "../../lib/config/index.ts";
import { formatProblem } from "../../lib/config/index.ts";
import { AuthorizationSchema } from "../../lib/gen/istio/security/authorization_pb.ts";
import { AddressSchema } from "../../lib/gen/istio/workload/workload_pb.ts";
import type { Logger } from "../../lib/log/index.ts";
import type { ConnectionDebug, XdsServerStats } from "../../lib/xds/index.ts";
import type {
  AddressResource,
  AuthorizationResource,
  PolicyEnforcement,
  Report,
} from "../ambient/index.ts";
import { shortType } from "./metrics.ts";

export interface DebugSources {
  ready(): { ready: boolean; reason: string };
  configErrors(): readonly ConfigProblem[];
  reports(): readonly Report[];
  connections(versions: boolean): ConnectionDebug[];
  connection(id: string): ConnectionDebug | undefined;
  enforcement(): PolicyEnforcement[];
  addresses(): AddressResource[];
  authorizations(): AuthorizationResource[];
  xdsStats(): XdsServerStats;
  metrics(): Promise<{ contentType: string; body: string }>;
}

const ENDPOINTS: Record<string, string> = {
  "/metrics": "Prometheus metrics",
  "/ready": "200 once the configuration is loaded and xDS is serving, else 503",
  "/debug/config-errors":
    "configuration problems (file, line, path, reason) and conversion warnings",
  "/debug/connections": "connected proxies: node, since, subscriptions, last ACK/NACK",
  "/debug/connections/<id>": "one proxy and every resource it holds (name -> version)",
  "/debug/enforcement": "who enforces each AuthorizationPolicy (ztunnel, waypoint, nobody) and why",
  "/debug/resources":
    "current resources; ?type=address|authorization, ?name=<name>, ?full=1 for contents",
  "/debug/stats": "pushes, resources, ACKs and NACKs per resource type",
};

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/** A connection as JSON: dates readable, types short, versions only when asked for. */
export function connectionJson(c: ConnectionDebug, versions: boolean): Record<string, unknown> {
  return {
    id: c.connectionId,
    peer: c.peer,
    connectedAt: iso(c.connectedAt),
    proxy:
      c.proxy === undefined
        ? undefined
        : {
            id: c.proxy.id,
            type: c.proxy.type,
            node: c.proxy.nodeName,
            pod: `${c.proxy.namespace}/${c.proxy.podName}`,
            ips: c.proxy.ipAddresses,
          },
    types: c.types.map((t) => ({
      type: shortType(t.typeUrl),
      typeUrl: t.typeUrl,
      wildcard: t.wildcard,
      subscriptions: t.subscriptions,
      sentCount: t.sentCount,
      ...(versions ? { sent: t.sent } : {}),
      responses: t.responses,
      acks: t.acks,
      nacks: t.nacks,
      pending: t.pending,
      inFlight:
        t.inFlight === undefined
          ? undefined
          : { nonce: t.inFlight.nonce, since: iso(t.inFlight.since) },
      lastAck:
        t.lastAck === undefined ? undefined : { nonce: t.lastAck.nonce, at: iso(t.lastAck.at) },
      lastNack:
        t.lastNack === undefined
          ? undefined
          : { nonce: t.lastNack.nonce, at: iso(t.lastNack.at), message: t.lastNack.message },
      rejected: Object.fromEntries(
        Object.entries(t.rejected).map(([n, r]) => [
          n,
          { version: r.version, reason: r.reason, at: iso(r.at) },
        ]),
      ),
    })),
  };
}

function resourceJson(
  r: AddressResource | AuthorizationResource,
  kind: "address" | "authorization",
  full: boolean,
): Record<string, unknown> {
  const base: Record<string, unknown> = { name: r.name, version: r.version };
  if (r.aliases.length > 0) base["aliases"] = r.aliases;
  if (full) {
    base["resource"] =
      kind === "address"
        ? toJson(AddressSchema, (r as AddressResource).message)
        : toJson(AuthorizationSchema, (r as AuthorizationResource).message);
  }
  return base;
}

export class DebugServer {
  readonly #sources: DebugSources;
  readonly #log: Logger;
  readonly #server: Server;

  constructor(sources: DebugSources, log: Logger) {
    this.#sources = sources;
    this.#log = log;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        this.#log.error("debug endpoint failed", {
          path: req.url ?? "",
          error: err instanceof Error ? err.message : String(err),
        });
        if (!res.headersSent)
          this.#json(res, 500, { error: "internal error; see the control plane log" });
        else res.destroy();
      });
    });
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        const a = this.#server.address();
        resolve(typeof a === "object" && a !== null ? a.port : port);
      });
    });
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body, null, 2) + "\n";
    res.writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(text),
    });
    res.end(text);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://control-plane");
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const q = url.searchParams;
    const s = this.#sources;
    if (req.method !== "GET" && req.method !== "HEAD") {
      return this.#json(res, 405, {
        error: `${req.method ?? ""} not allowed; these endpoints are read-only`,
      });
    }
    if (path === "/metrics") {
      const m = await s.metrics();
      res.writeHead(200, { "content-type": m.contentType });
      res.end(m.body);
      return;
    }
    if (path === "/ready" || path === "/healthz/ready") {
      const r = s.ready();
      res.writeHead(r.ready ? 200 : 503, { "content-type": "text/plain; charset=utf-8" });
      res.end(r.ready ? "ready\n" : `not ready: ${r.reason}\n`);
      return;
    }
    if (path === "/" || path === "/debug") return this.#json(res, 200, { endpoints: ENDPOINTS });
    if (path === "/debug/config-errors") {
      const errors = s.configErrors().map((p) => ({ ...p, message: formatProblem(p) }));
      const reports = s.reports();
      return this.#json(res, 200, {
        count: errors.length,
        errors,
        conversion: reports,
      });
    }
    if (path === "/debug/connections") {
      const versions = q.get("versions") === "1" || q.get("versions") === "true";
      const conns = s.connections(versions).map((c) => connectionJson(c, versions));
      return this.#json(res, 200, { count: conns.length, connections: conns });
    }
    if (path.startsWith("/debug/connections/")) {
      const id = decodeURIComponent(path.slice("/debug/connections/".length));
      const c = s.connection(id);
      if (c === undefined) {
        return this.#json(res, 404, {
          error: `no connection ${id}; see /debug/connections for the ids`,
        });
      }
      return this.#json(res, 200, connectionJson(c, true));
    }
    if (path === "/debug/enforcement") {
      const e = s.enforcement();
      return this.#json(res, 200, { count: e.length, policies: e });
    }
    if (path === "/debug/resources") {
      const type = q.get("type");
      const name = q.get("name");
      const full = q.get("full") === "1" || q.get("full") === "true" || name !== null;
      if (type !== null && type !== "address" && type !== "authorization") {
        return this.#json(res, 400, {
          error: `type must be address or authorization, not "${type}"`,
        });
      }
      const out: Record<string, unknown> = {};
      const pick = <R extends { name: string; aliases: readonly string[] }>(list: R[]) =>
        name === null ? list : list.filter((r) => r.name === name || r.aliases.includes(name));
      if (type === null || type === "address") {
        const list = pick(s.addresses());
        out["addresses"] = {
          count: list.length,
          resources: list.map((r) => resourceJson(r, "address", full)),
        };
      }
      if (type === null || type === "authorization") {
        const list = pick(s.authorizations());
        out["authorizations"] = {
          count: list.length,
          resources: list.map((r) => resourceJson(r, "authorization", full)),
        };
      }
      return this.#json(res, 200, out);
    }
    if (path === "/debug/stats") {
      const st = s.xdsStats();
      return this.#json(res, 200, {
        connections: st.connections,
        refused: st.refused,
        byType: Object.fromEntries(Object.entries(st.byType).map(([t, v]) => [shortType(t), v])),
      });
    }
    return this.#json(res, 404, { error: `no endpoint ${path}`, endpoints: ENDPOINTS });
  }
}
