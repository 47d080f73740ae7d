/**
 * The xDS `Node` both sides agree on. Clients build it (`buildProxyNode`) from values their
 * loadConfig gathered; the server turns what arrives into a typed `ProxyInfo`
 * (`parseProxyInfo`). Layout as Istio's: id `<type>~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`,
 * metadata Struct with `NAME`, `NAMESPACE`, `INSTANCE_IPS`, `NODE_NAME`, then every
 * `ISTIO_META_<K>` as the string `K` and every `ISTIO_METAJSON_<K>` as parsed JSON.
 */
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import type { Result } from "../errors.ts";

export interface ProxyNodeOptions {
  /** The first part of the node id. Default `ztunnel`. */
  readonly type?: string;
  /** `INSTANCE_IP`; ztunnel falls back to `1.1.1.1` when it is unset. */
  readonly instanceIp: string;
  readonly podName: string;
  readonly podNamespace: string;
  /** `NODE_NAME`: the Kubernetes node this proxy serves. */
  readonly nodeName: string;
  /** The id's last part. Default `<podNamespace>.svc.cluster.local`. */
  readonly dnsDomain?: string;
  /** `ISTIO_META_<K>` values keyed by `K`; they override the four base keys. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** `ISTIO_METAJSON_<K>` values keyed by `K`, already parsed; applied last. */
  readonly jsonMetadata?: Readonly<Record<string, JsonValue>>;
}

/** What goes into `DeltaDiscoveryRequest.node`. */
export interface NodeInit {
  readonly id: string;
  readonly metadata: JsonObject;
}

/** `ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local` (or another type's id of the same shape). */
export function proxyNodeId(options: ProxyNodeOptions): string {
  const ns = options.podNamespace;
  const domain = options.dnsDomain ?? `${ns}.svc.cluster.local`;
  return `${options.type ?? "ztunnel"}~${options.instanceIp}~${options.podName}.${ns}~${domain}`;
}

/** The node a proxy announces, built the way ztunnel builds it. */
export function buildProxyNode(options: ProxyNodeOptions): NodeInit {
  const metadata: JsonObject = {
    NAME: options.podName,
    NAMESPACE: options.podNamespace,
    INSTANCE_IPS: options.instanceIp,
    NODE_NAME: options.nodeName,
  };
  for (const [k, v] of Object.entries(options.metadata ?? {})) metadata[k] = v;
  for (const [k, v] of Object.entries(options.jsonMetadata ?? {})) metadata[k] = v;
  return { id: proxyNodeId(options), metadata };
}

const META_PREFIX = "ISTIO_META_";
const METAJSON_PREFIX = "ISTIO_METAJSON_";

/**
 * Collects `ISTIO_META_*` and `ISTIO_METAJSON_*` from an environment object (loadConfig passes
 * `process.env`). Every unparsable JSON value is reported, by variable name.
 */
export function proxyMetadataFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): Result<{ metadata: Record<string, string>; jsonMetadata: Record<string, JsonValue> }, string[]> {
  const metadata: Record<string, string> = {};
  const jsonMetadata: Record<string, JsonValue> = {};
  const problems: string[] = [];
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (key.startsWith(METAJSON_PREFIX)) {
      const k = key.slice(METAJSON_PREFIX.length);
      if (k === "") continue;
      try {
        jsonMetadata[k] = JSON.parse(value) as JsonValue;
      } catch (err) {
        problems.push(
          `${key}: not valid JSON (${err instanceof Error ? err.message : String(err)})`,
        );
      }
    } else if (key.startsWith(META_PREFIX)) {
      const k = key.slice(META_PREFIX.length);
      if (k !== "") metadata[k] = value;
    }
  }
  return problems.length > 0
    ? { ok: false, reason: problems }
    : { ok: true, value: { metadata, jsonMetadata } };
}

/** What the server knows about a connected proxy, from its `Node`. */
export interface ProxyInfo {
  /** `Node.id` as sent. */
  readonly id: string;
  /** First id part (`ztunnel`, `router`, `sidecar`, ...); empty when the id is not Istio-shaped. */
  readonly type: string;
  /** `INSTANCE_IPS` (comma-separated), else the id's IP part. */
  readonly ipAddresses: readonly string[];
  /** `NAME`, else the pod part of the id. */
  readonly podName: string;
  /** `NAMESPACE`, else the namespace part of the id. */
  readonly namespace: string;
  /** `NODE_NAME` (empty when absent). */
  readonly nodeName: string;
  /** `CLUSTER_ID` (empty when absent; the call's `clusterid` header is the caller's business). */
  readonly clusterId: string;
  /** `NETWORK` (empty = default network). */
  readonly network: string;
  /** `SERVICE_ACCOUNT` (empty when absent). */
  readonly serviceAccount: string;
  /** `LABELS` when it is an object of strings. */
  readonly labels: Readonly<Record<string, string>>;
  /** The id's last part, e.g. `istio-system.svc.cluster.local`. */
  readonly dnsDomain: string;
  /** The whole metadata Struct as JSON. */
  readonly metadata: Readonly<JsonObject>;
}

function str(metadata: JsonObject, key: string): string | undefined {
  const v = metadata[key];
  return typeof v === "string" ? v : undefined;
}

/** Reads a `Node` (id + metadata Struct as JSON). Never fails: absent values are empty. */
export function parseProxyInfo(node: { id: string; metadata?: JsonObject | undefined }): ProxyInfo {
  const metadata = node.metadata ?? {};
  const parts = node.id.split("~");
  const istioShaped = parts.length === 4;
  const [type = "", ip = "", podDotNs = "", dnsDomain = ""] = istioShaped ? parts : [];
  const dot = podDotNs.indexOf(".");
  const idPod = dot === -1 ? podDotNs : podDotNs.slice(0, dot);
  const idNs = dot === -1 ? "" : podDotNs.slice(dot + 1);

  const ipsMeta = str(metadata, "INSTANCE_IPS");
  const ipAddresses =
    ipsMeta !== undefined && ipsMeta !== ""
      ? ipsMeta
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s !== "")
      : ip !== ""
        ? [ip]
        : [];

  const labels: Record<string, string> = {};
  const rawLabels = metadata["LABELS"];
  if (typeof rawLabels === "object" && rawLabels !== null && !Array.isArray(rawLabels)) {
    for (const [k, v] of Object.entries(rawLabels)) if (typeof v === "string") labels[k] = v;
  }

  return {
    id: node.id,
    type,
    ipAddresses,
    podName: str(metadata, "NAME") ?? idPod,
    namespace: str(metadata, "NAMESPACE") ?? idNs,
    nodeName: str(metadata, "NODE_NAME") ?? "",
    clusterId: str(metadata, "CLUSTER_ID") ?? "",
    network: str(metadata, "NETWORK") ?? "",
    serviceAccount: str(metadata, "SERVICE_ACCOUNT") ?? "",
    labels,
    dnsDomain,
    metadata,
  };
}
