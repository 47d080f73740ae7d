/** Is a component ready? One check per call, bounded; the answer says why not. */
import { existsSync } from "node:fs";
import { ApiClient } from "./api.ts";
import type { ReadinessProbe } from "./components.ts";
import { netnsHttp, unixHttp } from "./netns-http.ts";

export interface ReadinessResult {
  readonly ready: boolean;
  /** Why not (or what answered). */
  readonly detail: string;
}

export interface ProbeContext {
  /** The API server's socket (for node-ready). */
  readonly apiSocket: string;
  /** When the component's process started (node-ready must be reported after it). */
  readonly startedAt: string;
}

function firstLine(text: string): string {
  return text.trim().split("\n").slice(0, 3).join(" | ").slice(0, 200);
}

export async function checkReadiness(
  probe: ReadinessProbe,
  ctx: ProbeContext,
): Promise<ReadinessResult> {
  try {
    switch (probe.type) {
      case "unix-http": {
        const r = await unixHttp({ socket: probe.socket, path: probe.path, timeoutMs: 2000 });
        return r.status === 200
          ? { ready: true, detail: "ready" }
          : { ready: false, detail: `${probe.path} answered ${r.status}: ${firstLine(r.body)}` };
      }
      case "netns-http": {
        const missing = (probe.files ?? []).filter((f) => !existsSync(f));
        if (missing.length > 0) {
          return { ready: false, detail: `waiting for ${missing.join(", ")}` };
        }
        const r = await netnsHttp({
          netns: probe.netns,
          host: probe.host,
          port: probe.port,
          path: probe.path,
          timeoutMs: 2000,
        });
        return r.status === 200
          ? { ready: true, detail: "ready" }
          : {
              ready: false,
              detail: `http://${probe.host}:${probe.port}${probe.path} answered ${r.status}: ${firstLine(r.body)}`,
            };
      }
      case "node-ready": {
        const node = await new ApiClient(ctx.apiSocket).node(probe.node);
        const cond = node?.status?.conditions?.find((c) => c.type === "Ready");
        if (cond?.status !== "True") {
          return {
            ready: false,
            detail: `Node ${probe.node} is not Ready (${cond?.reason ?? "not reported"})`,
          };
        }
        // Heartbeats have a 1 s resolution.
        const beat = Date.parse(cond.lastHeartbeatTime ?? "");
        if (!(beat >= Date.parse(ctx.startedAt) - 2000)) {
          return {
            ready: false,
            detail: `Node ${probe.node} not reported since the kubelet started`,
          };
        }
        return { ready: true, detail: "ready" };
      }
    }
  } catch (err) {
    return { ready: false, detail: err instanceof Error ? err.message : String(err) };
  }
}
