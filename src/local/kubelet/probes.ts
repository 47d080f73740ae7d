/**
 * Readiness and liveness probes: parsing (pure) and running one attempt. Like the kubelet's,
 * probes run from the node's network namespace (where this process runs) to the pod's IP, so on a
 * mesh node they pass the node agent's probe SNAT; exec probes run inside the pod's namespace.
 */
import { spawn } from "node:child_process";
import { request } from "node:http";
import { connect } from "node:net";
import { isObject, str, type Json } from "../../lib/kube-api/index.ts";
import type { Result } from "../../lib/errors.ts";

export type ProbeAction =
  | {
      readonly kind: "http";
      readonly port: number;
      readonly path: string;
      readonly scheme: "HTTP" | "HTTPS";
      readonly headers: readonly (readonly [string, string])[];
      readonly host?: string;
    }
  | { readonly kind: "tcp"; readonly port: number; readonly host?: string }
  | { readonly kind: "exec"; readonly command: readonly string[] };

export interface Probe {
  readonly action: ProbeAction;
  readonly initialDelaySeconds: number;
  readonly periodSeconds: number;
  readonly timeoutSeconds: number;
  readonly successThreshold: number;
  readonly failureThreshold: number;
}

function num(v: unknown, fallback: number, min: number): number {
  return typeof v === "number" && Number.isFinite(v) && v >= min ? v : fallback;
}

/** A port number, or a container port's name resolved against the container's ports. */
export function resolvePort(port: unknown, container: Json): number | undefined {
  if (typeof port === "number") return port > 0 && port < 65536 ? port : undefined;
  const name = str(port);
  if (/^\d+$/.test(name)) return resolvePort(Number(name), container);
  const ports = Array.isArray(container["ports"]) ? (container["ports"] as unknown[]) : [];
  for (const p of ports) {
    if (isObject(p) && p["name"] === name && typeof p["containerPort"] === "number")
      return p["containerPort"];
  }
  return undefined;
}

/** Parses a probe (`readinessProbe`, `livenessProbe`); undefined when the container has none. */
export function parseProbe(spec: unknown, container: Json): Result<Probe, string> | undefined {
  if (!isObject(spec)) return undefined;
  let action: ProbeAction;
  const where = `container ${str(container["name"])}`;
  if (isObject(spec["httpGet"])) {
    const h = spec["httpGet"];
    const port = resolvePort(h["port"], container);
    if (port === undefined)
      return {
        ok: false,
        reason: `${where}: httpGet port ${JSON.stringify(h["port"])} is not a port number or named container port`,
      };
    const headers = Array.isArray(h["httpHeaders"])
      ? (h["httpHeaders"] as unknown[]).flatMap((x) =>
          isObject(x) ? [[str(x["name"]), str(x["value"])] as const] : [],
        )
      : [];
    action = {
      kind: "http",
      port,
      path: str(h["path"]) || "/",
      scheme: h["scheme"] === "HTTPS" ? "HTTPS" : "HTTP",
      headers,
      ...(str(h["host"]) !== "" ? { host: str(h["host"]) } : {}),
    };
  } else if (isObject(spec["tcpSocket"])) {
    const t = spec["tcpSocket"];
    const port = resolvePort(t["port"], container);
    if (port === undefined)
      return {
        ok: false,
        reason: `${where}: tcpSocket port ${JSON.stringify(t["port"])} is not a port number or named container port`,
      };
    action = { kind: "tcp", port, ...(str(t["host"]) !== "" ? { host: str(t["host"]) } : {}) };
  } else if (isObject(spec["exec"])) {
    const cmd = spec["exec"]["command"];
    if (!Array.isArray(cmd) || cmd.length === 0)
      return { ok: false, reason: `${where}: exec probe needs a command` };
    action = { kind: "exec", command: cmd.map(String) };
  } else if (isObject(spec["grpc"])) {
    return { ok: false, reason: `${where}: grpc probes are not supported by the local runtime` };
  } else {
    return { ok: false, reason: `${where}: a probe needs httpGet, tcpSocket or exec` };
  }
  return {
    ok: true,
    value: {
      action,
      initialDelaySeconds: num(spec["initialDelaySeconds"], 0, 0),
      periodSeconds: num(spec["periodSeconds"], 10, 1),
      timeoutSeconds: num(spec["timeoutSeconds"], 1, 1),
      successThreshold: num(spec["successThreshold"], 1, 1),
      failureThreshold: num(spec["failureThreshold"], 3, 1),
    },
  };
}

export interface ProbeTarget {
  readonly podIP: string;
  /** For exec probes: the pod's namespace name and the container's environment. */
  readonly netns: string;
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
}

/** One attempt; resolves true on success (HTTP 200–399, a TCP connect, exit code 0). */
export function runProbe(probe: Probe, target: ProbeTarget): Promise<boolean> {
  const timeoutMs = probe.timeoutSeconds * 1000;
  const a = probe.action;
  return new Promise((resolve) => {
    if (a.kind === "http") {
      if (a.scheme === "HTTPS") {
        // The samples serve plain HTTP; HTTPS probes would need TLS without verification.
        resolve(false);
        return;
      }
      const req = request(
        {
          host: a.host ?? target.podIP,
          port: a.port,
          path: a.path,
          method: "GET",
          headers: { "user-agent": "kube-probe/1.33", ...Object.fromEntries(a.headers) },
          timeout: timeoutMs,
          agent: false,
        },
        (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          resolve(code >= 200 && code < 400);
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", () => resolve(false));
      req.end();
    } else if (a.kind === "tcp") {
      const s = connect({ host: a.host ?? target.podIP, port: a.port, timeout: timeoutMs });
      s.on("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.on("timeout", () => {
        s.destroy();
        resolve(false);
      });
      s.on("error", () => resolve(false));
    } else {
      const child = spawn("ip", ["netns", "exec", target.netns, ...a.command], {
        env: { ...target.env },
        cwd: target.cwd,
        stdio: "ignore",
        timeout: timeoutMs,
        killSignal: "SIGKILL",
      });
      child.on("error", () => resolve(false));
      child.on("exit", (code) => resolve(code === 0));
    }
  });
}
