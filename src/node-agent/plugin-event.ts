/**
 * The pod events the CNI plugin (locally: the runtime, when it creates or removes a pod sandbox)
 * posts to the agent, as istio-cni's `pluginevent` endpoint takes them: JSON of Go's
 * `CNIPluginAddEvent` — `Netns`, the pod's name and namespace, and the IPs the CNI chain assigned
 * (`net.IPNet` marshals as `{"IP": "198.18.0.5", "Mask": "////AA=="}`). Older istio-cni sent the
 * whole CNI `skel.CmdArgs` as `CmdAddEvent` (`ContainerID`, `Netns`, `Args`, ...) instead of the
 * top-level `Netns`; both are accepted. istio-cni has no DEL event (its
 * plugin ignores DEL; pod deletes come from the watch); `/cmddel` is ours, same shape.
 *
 * Parsing is pure and tolerant of what Go would also accept (absent fields, extra fields), and
 * strict about what we need: pod name, namespace, an absolute netns path on ADD.
 */
import { isIP } from "node:net";
import { fail, ok, type Result } from "../lib/errors.ts";

/** istio-cni's `CNIAddEventPath`. */
export const PLUGIN_ADD_PATH = "/cmdadd";
/** Ours: the sandbox of a pod was torn down. */
export const PLUGIN_DEL_PATH = "/cmddel";

export interface PluginAddEvent {
  readonly podName: string;
  readonly podNamespace: string;
  /** `K8S_POD_UID` from the CNI args, when the runtime passes it. */
  readonly podUid: string | undefined;
  readonly containerId: string;
  readonly netns: string;
  readonly ips: readonly string[];
}

export interface PluginDelEvent {
  readonly podName: string;
  readonly podNamespace: string;
  readonly podUid: string | undefined;
  readonly containerId: string;
}

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Json) : undefined;
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

/** CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=name;K8S_POD_UID=...`. */
export function parseCniArgs(args: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of args.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

/** One entry of `IPs`: Go's `IPConfig` (`Address` a `net.IPNet`), or a plain "ip[/len]" string. */
function ipOf(entry: unknown): string | undefined {
  if (typeof entry === "string") return entry.split("/")[0];
  const e = obj(entry);
  if (e === undefined) return undefined;
  const address = e["Address"] ?? e["address"];
  if (typeof address === "string") return address.split("/")[0];
  const ip = obj(address)?.["IP"];
  return typeof ip === "string" ? ip : undefined;
}

function podIdentity(
  body: Json,
  cmd: Json,
): Result<{ podName: string; podNamespace: string; podUid: string | undefined }, string> {
  const args = parseCniArgs(str(cmd["Args"]));
  const podName = str(body["PodName"]) || (args.get("K8S_POD_NAME") ?? "");
  const podNamespace = str(body["PodNamespace"]) || (args.get("K8S_POD_NAMESPACE") ?? "");
  const problems: string[] = [];
  if (podName === "") problems.push("PodName is missing (nor K8S_POD_NAME in Args)");
  if (podNamespace === "") {
    problems.push("PodNamespace is missing (nor K8S_POD_NAMESPACE in Args)");
  }
  if (problems.length > 0) return fail(problems.join("; "));
  const uid = args.get("K8S_POD_UID");
  return ok({ podName, podNamespace, podUid: uid === undefined || uid === "" ? undefined : uid });
}

function parseBody(text: string): Result<Json, string> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return fail(`the body is not JSON: ${(err as Error).message}`);
  }
  const body = obj(doc);
  return body === undefined ? fail("the body is not a JSON object") : ok(body);
}

export function parseAddEvent(text: string): Result<PluginAddEvent, string> {
  const body = parseBody(text);
  if (!body.ok) return body;
  const cmd = obj(body.value["CmdAddEvent"]) ?? {};
  const who = podIdentity(body.value, cmd);
  const problems: string[] = who.ok ? [] : [who.reason];
  const netns = str(body.value["Netns"]) || str(cmd["Netns"]);
  if (netns === "") problems.push("Netns is missing (nor CmdAddEvent.Netns)");
  else if (!netns.startsWith("/")) problems.push(`Netns "${netns}" is not a path`);
  const rawIps = body.value["IPs"];
  const ips: string[] = [];
  if (rawIps !== undefined && rawIps !== null) {
    if (!Array.isArray(rawIps)) {
      problems.push("IPs is not a list");
    } else {
      rawIps.forEach((entry: unknown, i) => {
        const ip = ipOf(entry);
        if (ip === undefined || isIP(ip) === 0) problems.push(`IPs[${i}] has no valid IP address`);
        else if (!ips.includes(ip)) ips.push(ip);
      });
    }
  }
  if (problems.length > 0 || !who.ok) return fail(problems.join("; "));
  return ok({ ...who.value, containerId: str(cmd["ContainerID"]), netns, ips });
}

export function parseDelEvent(text: string): Result<PluginDelEvent, string> {
  const body = parseBody(text);
  if (!body.ok) return body;
  const cmd = obj(body.value["CmdDelEvent"]) ?? obj(body.value["CmdAddEvent"]) ?? {};
  const who = podIdentity(body.value, cmd);
  if (!who.ok) return who;
  return ok({ ...who.value, containerId: str(cmd["ContainerID"]) });
}
