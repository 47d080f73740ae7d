/**
 * The local API server's admission rules:
 *
 * - objects defined by manifest files are read-only through the API, except their status, a
 *   pod's annotations, and a pod's binding to a node (the kubelet, the node agent and the
 *   scheduler need those); everything else is changed by editing the files (`ambient apply`);
 * - objects written through the API are validated like files (unknown fields allowed);
 * - Services get a VIP from the service range unless they are headless or ExternalName; a
 *   Service's clusterIP never changes;
 * - pods start `Pending`; deleting a pod that runs on a node marks it terminating for its grace
 *   period and leaves the final removal to the kubelet (or to a delete with grace 0).
 */
import { KINDS, formatFieldPath, isKind, validateObject } from "../../lib/config/index.ts";
import type { Result } from "../../lib/errors.ts";
import {
  failure,
  isObject,
  jsonEqual,
  metaOf,
  preferredApiVersion,
  str,
  success,
  type AdmissionPlugin,
  type ApiFailure,
  type ApiResource,
  type Json,
  type WriteAttempt,
} from "../../lib/kube-api/index.ts";

export interface AdmissionContext {
  /** Whether a manifest file defines this object. */
  isFileBacked(res: ApiResource, namespace: string, name: string): boolean;
  /** The config directory (for messages). */
  readonly configDir: string;
  /** The VIP of a Service (allocating one), or a specific one it asks for. */
  allocateClusterIp(key: string, requested: string | undefined): Result<string, string>;
  now(): Date;
}

const DEFAULT_GRACE_SECONDS = 30;

function specOf(o: Json | undefined): Json {
  return o !== undefined && isObject(o["spec"]) ? o["spec"] : {};
}

/** The object without what a pod's annotation patch may change. */
function withoutAnnotations(o: Json): Json {
  const m = { ...metaOf(o) };
  for (const k of ["annotations", "resourceVersion", "managedFields"]) delete m[k];
  const out: Json = { ...o, metadata: m };
  delete out["apiVersion"];
  delete out["kind"];
  delete out["status"];
  return out;
}

export function readOnlyFiles(ctx: AdmissionContext): AdmissionPlugin {
  const refuse = (a: WriteAttempt, what: string): ApiFailure =>
    failure(
      405,
      "MethodNotAllowed",
      `${a.resource.kind} ${a.namespace === "" ? "" : `${a.namespace}/`}${a.name} is defined by a manifest in ${ctx.configDir}; ${what} (edit the file or use "ambient apply"/"ambient delete")`,
    );
  return {
    admit(a) {
      if (a.verb === "create" || !ctx.isFileBacked(a.resource, a.namespace, a.name))
        return undefined;
      if (a.user === "system:apiserver") return undefined;
      if (a.verb === "delete") return refuse(a, "it cannot be deleted through the API");
      if (a.subresource === "binding") return undefined;
      const isPod = a.resource.group === "" && a.resource.plural === "pods";
      if (a.subresource === "status") {
        if (!isPod) return undefined;
        const before = metaOf(a.old!);
        const after = metaOf(a.object!);
        const same = ["labels", "ownerReferences", "finalizers"].every((k) =>
          jsonEqual(
            before[k] ?? (k === "labels" ? {} : []),
            after[k] ?? (k === "labels" ? {} : []),
          ),
        );
        return same ? undefined : refuse(a, "only its status and annotations may change");
      }
      if (isPod && jsonEqual(withoutAnnotations(a.old!), withoutAnnotations(a.object!))) {
        return undefined;
      }
      return refuse(
        a,
        isPod ? "only its status and annotations may change" : "only its status may change",
      );
    },
  };
}

export function validation(): AdmissionPlugin {
  return {
    admit(a) {
      if (a.verb === "delete" || a.subresource !== "" || a.object === undefined) return undefined;
      const kind = a.resource.kind;
      if (kind === "ReplicaSet") return checkReplicaSet(a.object);
      if (!isKind(kind) || KINDS[kind].group !== a.resource.group) return undefined;
      const full: Json = {
        ...a.object,
        apiVersion: str(a.object["apiVersion"]) || preferredApiVersion(a.resource),
        kind,
      };
      // Server-set metadata is not the client's to get right.
      const m = { ...metaOf(full) };
      delete m["generateName"];
      if (str(m["name"]) === "" && str(metaOf(a.object)["generateName"]) !== "") {
        m["name"] = `${str(metaOf(a.object)["generateName"])}x`;
      }
      full["metadata"] = m;
      const r = validateObject(full, { unknownFields: "ignore" });
      if (r.issues.length === 0) return undefined;
      const causes = r.issues.map((i) => ({ field: formatFieldPath(i.path), message: i.reason }));
      const f = failure(
        422,
        "Invalid",
        `${kind} "${str(m["name"])}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join("; ")}`,
      );
      return { ...f, status: { ...f.status, details: { name: str(m["name"]), kind, causes } } };
    },
  };
}

function checkReplicaSet(o: Json): ApiFailure | undefined {
  const spec = specOf(o);
  const sel = isObject(spec["selector"]) ? spec["selector"] : undefined;
  const match = sel && isObject(sel["matchLabels"]) ? sel["matchLabels"] : undefined;
  const tmpl = isObject(spec["template"]) ? spec["template"] : undefined;
  const labels = tmpl ? metaOf(tmpl)["labels"] : undefined;
  if (match === undefined || Object.keys(match).length === 0) {
    return failure(422, "Invalid", "ReplicaSet: spec.selector.matchLabels: Required value");
  }
  if (!isObject(labels) || !Object.entries(match).every(([k, v]) => labels[k] === v)) {
    return failure(
      422,
      "Invalid",
      "ReplicaSet: spec.template.metadata.labels: does not match the selector",
    );
  }
  return undefined;
}

export function services(ctx: AdmissionContext): AdmissionPlugin {
  return {
    admit(a) {
      if (a.resource.group !== "" || a.resource.plural !== "services") return undefined;
      if (a.verb === "delete" || a.subresource !== "" || a.object === undefined) return undefined;
      const spec = { ...specOf(a.object) };
      const key = `${a.namespace}/${str(metaOf(a.object)["name"]) || a.name}`;
      if (spec["type"] === "ExternalName") return undefined;
      const old = a.old === undefined ? undefined : str(specOf(a.old)["clusterIP"]);
      const asked = str(spec["clusterIP"]);
      if (old !== undefined && old !== "") {
        if (asked !== "" && asked !== old) {
          return failure(
            422,
            "Invalid",
            `Service "${a.name}": spec.clusterIP: field is immutable (${old})`,
          );
        }
        spec["clusterIP"] = old;
        spec["clusterIPs"] = [old];
      } else if (asked === "None") {
        spec["clusterIPs"] = ["None"];
      } else {
        const r = ctx.allocateClusterIp(key, asked === "" ? undefined : asked);
        if (!r.ok) return failure(422, "Invalid", `Service "${a.name}": ${r.reason}`);
        spec["clusterIP"] = r.value;
        spec["clusterIPs"] = [r.value];
      }
      spec["type"] ??= "ClusterIP";
      a.object["spec"] = spec;
      return undefined;
    },
  };
}

export function pods(ctx: AdmissionContext): AdmissionPlugin {
  return {
    admit(a) {
      if (a.resource.group !== "" || a.resource.plural !== "pods") return undefined;
      if (a.verb === "create" && a.object !== undefined && !isObject(a.object["status"])) {
        a.object["status"] = { phase: "Pending" };
      }
      return undefined;
    },
    delete(a, options, registry) {
      if (a.resource.group !== "" || a.resource.plural !== "pods") return undefined;
      const pod = a.old!;
      const m = metaOf(pod);
      const spec = specOf(pod);
      const phase = isObject(pod["status"]) ? str(pod["status"]["phase"]) : "";
      const requested =
        options.gracePeriodSeconds ??
        (typeof spec["terminationGracePeriodSeconds"] === "number"
          ? spec["terminationGracePeriodSeconds"]
          : DEFAULT_GRACE_SECONDS);
      // Nothing runs it: remove at once, as Kubernetes does for unscheduled and finished pods.
      if (
        requested <= 0 ||
        str(spec["nodeName"]) === "" ||
        phase === "Succeeded" ||
        phase === "Failed"
      ) {
        return undefined;
      }
      const pre = options.preconditions;
      if (pre?.uid !== undefined && pre.uid !== m["uid"]) {
        return failure(409, "Conflict", `Precondition failed for pods "${a.name}": uid`);
      }
      if (str(m["deletionTimestamp"]) !== "") {
        // Already terminating; a shorter grace period may only shorten it.
        const cur =
          typeof m["deletionGracePeriodSeconds"] === "number"
            ? m["deletionGracePeriodSeconds"]
            : requested;
        if (requested >= cur) return success(200, pod);
      }
      const next = structuredClone(pod);
      const nm = next["metadata"] as Json;
      nm["deletionTimestamp"] = new Date(ctx.now().getTime() + requested * 1000)
        .toISOString()
        .replace(/\.\d+Z$/, "Z");
      nm["deletionGracePeriodSeconds"] = requested;
      return registry.writeSystem({ user: a.user }, a.resource, a.namespace, a.name, next, "");
    },
  };
}
