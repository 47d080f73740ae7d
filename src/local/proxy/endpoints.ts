/**
 * What kube-proxy programs, pure: for each Service port with a cluster IP, the ready endpoints
 * behind it — pods the Service selects (Ready, not terminating, with an IP; not-ready ones too
 * with `publishNotReadyAddresses`), their target port resolved (a number, or a container port's
 * name looked up per pod) — or, for a Service without a selector, the endpoints of its
 * EndpointSlices (`kubernetes.io/service-name`).
 */
import { isObject, str, type Json } from "../../lib/kube-api/index.ts";

export interface Endpoint {
  readonly ip: string;
  readonly port: number;
}

export interface ServicePort {
  readonly namespace: string;
  readonly service: string;
  /** The port's name ("" when unnamed). */
  readonly portName: string;
  readonly protocol: "TCP" | "UDP";
  readonly vip: string;
  readonly port: number;
  /** Sorted by ip, port. */
  readonly endpoints: readonly Endpoint[];
}

function obj(v: unknown): Json {
  return isObject(v) ? v : {};
}

function list(v: unknown): Json[] {
  return Array.isArray(v) ? v.filter(isObject) : [];
}

function podReady(pod: Json): boolean {
  return list(obj(pod["status"])["conditions"]).some(
    (c) => c["type"] === "Ready" && c["status"] === "True",
  );
}

/** The port a pod serves `targetPort` on, or undefined when a named port is not on it. */
export function resolveTargetPort(
  target: unknown,
  servicePort: number,
  pod: Json,
): number | undefined {
  if (target === undefined || target === null || target === "") return servicePort;
  if (typeof target === "number") return target;
  if (typeof target !== "string") return undefined;
  const name = target;
  if (/^\d+$/.test(name)) return Number(name);
  for (const c of list(obj(pod["spec"])["containers"])) {
    for (const p of list(c["ports"])) {
      if (p["name"] === name && typeof p["containerPort"] === "number") return p["containerPort"];
    }
  }
  return undefined;
}

function sortEndpoints(eps: Endpoint[]): Endpoint[] {
  const seen = new Set<string>();
  return eps
    .filter((e) => {
      const k = `${e.ip}:${e.port}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .sort((a, b) => (a.ip === b.ip ? a.port - b.port : a.ip < b.ip ? -1 : 1));
}

export function servicePorts(
  services: readonly Json[],
  pods: readonly Json[],
  slices: readonly Json[],
): ServicePort[] {
  const out: ServicePort[] = [];
  for (const svc of services) {
    const m = obj(svc["metadata"]);
    const spec = obj(svc["spec"]);
    const ns = str(m["namespace"]);
    const name = str(m["name"]);
    const vip = str(spec["clusterIP"]);
    if (vip === "" || vip === "None" || spec["type"] === "ExternalName") continue;
    const selector = isObject(spec["selector"])
      ? (spec["selector"] as Record<string, string>)
      : undefined;
    const notReadyToo = spec["publishNotReadyAddresses"] === true;
    const selected =
      selector === undefined || Object.keys(selector).length === 0
        ? []
        : pods.filter((p) => {
            const pm = obj(p["metadata"]);
            if (str(pm["namespace"]) !== ns || str(pm["deletionTimestamp"]) !== "") return false;
            const labels = obj(pm["labels"]);
            if (!Object.entries(selector).every(([k, v]) => labels[k] === v)) return false;
            const st = obj(p["status"]);
            if (
              str(st["podIP"]) === "" ||
              str(st["phase"]) === "Succeeded" ||
              str(st["phase"]) === "Failed"
            )
              return false;
            return notReadyToo || podReady(p);
          });
    const mySlices =
      selector === undefined || Object.keys(selector).length === 0
        ? slices.filter((s) => {
            const sm = obj(s["metadata"]);
            return (
              str(sm["namespace"]) === ns &&
              obj(sm["labels"])["kubernetes.io/service-name"] === name
            );
          })
        : [];
    for (const sp of list(spec["ports"])) {
      const port = sp["port"];
      if (typeof port !== "number") continue;
      const protocol =
        sp["protocol"] === "UDP" ? "UDP" : sp["protocol"] === "SCTP" ? undefined : "TCP";
      if (protocol === undefined) continue;
      const portName = str(sp["name"]);
      const eps: Endpoint[] = [];
      for (const p of selected) {
        const tp = resolveTargetPort(sp["targetPort"], port, p);
        if (tp !== undefined) eps.push({ ip: str(obj(p["status"])["podIP"]), port: tp });
      }
      for (const s of mySlices) {
        if (s["addressType"] !== undefined && s["addressType"] !== "IPv4") continue;
        const slicePort = list(s["ports"]).find(
          (x) => str(x["name"]) === portName && (x["protocol"] ?? "TCP") === protocol,
        );
        if (slicePort === undefined || typeof slicePort["port"] !== "number") continue;
        for (const e of list(s["endpoints"])) {
          const cond = obj(e["conditions"]);
          if (cond["ready"] === false && !notReadyToo) continue;
          const addrs = Array.isArray(e["addresses"]) ? (e["addresses"] as unknown[]) : [];
          if (typeof addrs[0] === "string") eps.push({ ip: addrs[0], port: slicePort["port"] });
        }
      }
      out.push({
        namespace: ns,
        service: name,
        portName,
        protocol,
        vip,
        port,
        endpoints: sortEndpoints(eps),
      });
    }
  }
  return out.sort((a, b) => {
    const ka = `${a.namespace}/${a.service}:${a.portName}/${a.protocol}`;
    const kb = `${b.namespace}/${b.service}:${b.portName}/${b.protocol}`;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}
