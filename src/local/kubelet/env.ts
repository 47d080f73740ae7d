/**
 * A container's environment, as the kubelet builds it: `HOSTNAME` (the pod name), `PATH` with
 * the project's Node 24 first (so `node` in a manifest's command is the right one), then the
 * container's `env` in order — plain values with `$(VAR)` references to earlier ones expanded,
 * and downward-API `fieldRef`s. Pure; what cannot be resolved is reported, not guessed.
 */
import { isObject, metaOf, str, type Json } from "../../lib/kube-api/index.ts";
import type { Result } from "../../lib/errors.ts";

export interface EnvContext {
  readonly pod: Json;
  /** The pod's IP (status.podIP may not be written yet when containers start). */
  readonly podIP: string;
  readonly hostIP: string;
  readonly nodeName: string;
  /** Directory whose `node` is the project's Node 24 (`<repo>/node_modules/.bin`). */
  readonly nodeBinDir: string;
  /** PATH after the Node directory. */
  readonly basePath: string;
  readonly home: string;
}

/** The value a downward-API field path gives for the pod, or undefined if not supported. */
export function fieldRefValue(path: string, ctx: EnvContext): string | undefined {
  const m = metaOf(ctx.pod);
  const spec = isObject(ctx.pod["spec"]) ? ctx.pod["spec"] : {};
  switch (path) {
    case "metadata.name":
      return str(m["name"]);
    case "metadata.namespace":
      return str(m["namespace"]) || "default";
    case "metadata.uid":
      return str(m["uid"]);
    case "spec.nodeName":
      return ctx.nodeName;
    case "spec.serviceAccountName":
      return str(spec["serviceAccountName"]) || "default";
    case "status.podIP":
    case "status.podIPs":
      return ctx.podIP;
    case "status.hostIP":
    case "status.hostIPs":
      return ctx.hostIP;
  }
  const lm = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(path);
  if (lm) {
    const map = m[lm[1]!];
    return isObject(map) ? str(map[lm[2]!]) : "";
  }
  return undefined;
}

/** Expands `$(VAR)` from earlier variables; `$$(VAR)` stays literal, unknown names stay as written. */
export function expandVars(value: string, vars: ReadonlyMap<string, string>): string {
  return value.replace(
    /\$\$\(([A-Za-z_][A-Za-z0-9_]*)\)|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g,
    (all, esc, name) => {
      if (esc !== undefined) return `$(${esc as string})`;
      return vars.get(name as string) ?? all;
    },
  );
}

export function containerEnv(
  container: Json,
  ctx: EnvContext,
): Result<Record<string, string>, string[]> {
  const env = new Map<string, string>([
    ["PATH", `${ctx.nodeBinDir}:${ctx.basePath}`],
    ["HOME", ctx.home],
    ["HOSTNAME", str(metaOf(ctx.pod)["name"])],
  ]);
  const problems: string[] = [];
  const list = Array.isArray(container["env"]) ? (container["env"] as unknown[]) : [];
  for (const e of list) {
    if (!isObject(e)) continue;
    const name = str(e["name"]);
    if (name === "") continue;
    if (e["value"] !== undefined) {
      env.set(name, expandVars(str(e["value"]), env));
      continue;
    }
    const from = isObject(e["valueFrom"]) ? e["valueFrom"] : undefined;
    const field = from && isObject(from["fieldRef"]) ? from["fieldRef"] : undefined;
    if (field !== undefined) {
      const path = str(field["fieldPath"]);
      const v = fieldRefValue(path, ctx);
      if (v === undefined) problems.push(`env ${name}: fieldRef ${path} is not supported`);
      else env.set(name, v);
      continue;
    }
    if (from !== undefined) {
      const what = Object.keys(from)[0] ?? "valueFrom";
      problems.push(
        `env ${name}: ${what} is not supported by the local runtime (only value and fieldRef)`,
      );
      continue;
    }
    env.set(name, "");
  }
  return problems.length > 0
    ? { ok: false, reason: problems }
    : { ok: true, value: Object.fromEntries(env) };
}

/** The argv a container runs: `command` + `args`, with `$(VAR)` expanded from its environment. */
export function containerArgv(
  container: Json,
  env: Readonly<Record<string, string>>,
): Result<string[], string> {
  const vars = new Map(Object.entries(env));
  const command = Array.isArray(container["command"])
    ? (container["command"] as unknown[]).map(String)
    : [];
  const args = Array.isArray(container["args"]) ? (container["args"] as unknown[]).map(String) : [];
  if (command.length === 0) {
    return {
      ok: false,
      reason: `container ${str(container["name"])} has no command; the local runtime runs no images, so give it a command (e.g. ["node", "examples/..."])`,
    };
  }
  return { ok: true, value: [...command, ...args].map((a) => expandVars(a, vars)) };
}
