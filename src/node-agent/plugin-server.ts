/**
 * The HTTP server on a unix socket that takes pod events from the CNI plugin (locally, the
 * runtime): `POST /cmdadd` (istio-cni's path and body) and `POST /cmddel` (ours). Like istio-cni
 * it answers 200 when the event was handled, 400 with the reason when the body is not an event,
 * and 500 with the reason when handling failed — the caller then fails the pod start, and retries.
 * Our 200 also carries a small JSON body saying what was done (istio-cni's is empty; callers
 * that only look at the status are unaffected).
 */
import { mkdirSync, statSync, unlinkSync } from "node:fs";
import { chmod } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect } from "node:net";
import { dirname } from "node:path";
import { AmbientError, errnoCode, type Result } from "../lib/errors.ts";
import type { Logger } from "../lib/log/index.ts";
import {
  PLUGIN_ADD_PATH,
  PLUGIN_DEL_PATH,
  parseAddEvent,
  parseDelEvent,
  type PluginAddEvent,
  type PluginDelEvent,
} from "./plugin-event.ts";

/** What the agent reports back: a JSON object (200) or why it failed (500). */
export type PluginAnswer = Result<Readonly<Record<string, unknown>>, string>;

export interface PluginEventHandlers {
  add(event: PluginAddEvent): Promise<PluginAnswer>;
  del(event: PluginDelEvent): Promise<PluginAnswer>;
}

/** Events are small (a pod's identity and a few IPs); anything bigger is not one. */
const MAX_BODY_BYTES = 64 * 1024;

function reply(res: ServerResponse, status: number, body: string, type: string): void {
  res.writeHead(status, {
    "content-type": type,
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

function replyError(res: ServerResponse, status: number, message: string): void {
  // Go's http.Error: the message as plain text, newline-terminated.
  reply(res, status, `${message}\n`, "text/plain; charset=utf-8");
}

/** Resolves whether something accepts connections on the unix socket at `path`. */
function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export class PluginEventServer {
  readonly path: string;
  readonly #server: Server;
  readonly #handlers: PluginEventHandlers;
  readonly #log: Logger;

  private constructor(path: string, handlers: PluginEventHandlers, log: Logger) {
    this.path = path;
    this.#handlers = handlers;
    this.#log = log;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        this.#log.error("plugin event handling failed", { error: String(err) });
        if (!res.headersSent) replyError(res, 500, `internal error: ${String(err)}`);
        else res.destroy();
      });
    });
  }

  /**
   * Listens on `path` (0600), creating its directory and removing a stale socket file. Throws
   * AmbientError EADDRINUSE when another agent answers on the path.
   */
  static async listen(
    path: string,
    handlers: PluginEventHandlers,
    log: Logger,
  ): Promise<PluginEventServer> {
    mkdirSync(dirname(path), { recursive: true });
    let exists = false;
    try {
      statSync(path);
      exists = true;
    } catch (err) {
      if (errnoCode(err) !== "ENOENT") throw err;
    }
    if (exists) {
      if (await socketIsLive(path)) {
        throw new AmbientError(
          "EADDRINUSE",
          `another process is serving plugin events on ${path}; is a second node agent running on this node?`,
        );
      }
      unlinkSync(path);
    }
    const s = new PluginEventServer(path, handlers, log);
    await new Promise<void>((resolve, reject) => {
      s.#server.once("error", reject);
      s.#server.listen(path, () => {
        s.#server.off("error", reject);
        resolve();
      });
    });
    await chmod(path, 0o600);
    return s;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "").split("?")[0];
    if (path !== PLUGIN_ADD_PATH && path !== PLUGIN_DEL_PATH) {
      replyError(
        res,
        404,
        `no such endpoint ${path}; use ${PLUGIN_ADD_PATH} or ${PLUGIN_DEL_PATH}`,
      );
      return;
    }
    if (req.method !== "POST") {
      res.setHeader("allow", "POST");
      replyError(res, 405, `${path} takes POST`);
      return;
    }
    const body = await readBody(req);
    if (body === undefined) {
      replyError(res, 413, `event body larger than ${MAX_BODY_BYTES} bytes`);
      return;
    }
    let answer: PluginAnswer;
    if (path === PLUGIN_ADD_PATH) {
      const ev = parseAddEvent(body);
      if (!ev.ok) {
        this.#log.error("rejecting a malformed plugin ADD event", { error: ev.reason });
        replyError(res, 400, `bad ADD event: ${ev.reason}`);
        return;
      }
      answer = await this.#handlers.add(ev.value);
    } else {
      const ev = parseDelEvent(body);
      if (!ev.ok) {
        this.#log.error("rejecting a malformed plugin DEL event", { error: ev.reason });
        replyError(res, 400, `bad DEL event: ${ev.reason}`);
        return;
      }
      answer = await this.#handlers.del(ev.value);
    }
    if (answer.ok) reply(res, 200, JSON.stringify(answer.value) + "\n", "application/json");
    else replyError(res, 500, answer.reason);
  }
}

/** The body as text, or undefined when it exceeds the limit. */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) tooBig = true;
      else chunks.push(c);
    });
    req.on("end", () => resolve(tooBig ? undefined : Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
