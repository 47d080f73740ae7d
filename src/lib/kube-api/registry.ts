/**
 * The write verbs of the API server — create, update (PUT), patch, delete, and pod binding — over
 * an ObjectStore, with admission plugins that may change or refuse a write, or take a delete over
 * (graceful deletion). HTTP requests and in-process clients (controllers) both write through it,
 * so the same rules apply to everyone.
 */
import type { ObjectStore, WriteMode } from "./object-store.ts";
import { applyPatch, type PatchType } from "./patch.ts";
import { apiVersionOf, type ApiResource } from "./resources.ts";
import {
  failure,
  isObject,
  meta,
  metaOf,
  str,
  success,
  type ApiFailure,
  type ApiOutcome,
  type Json,
} from "./status.ts";

export type Subresource = "" | "status" | "binding";

/** One write as admission sees it. */
export interface WriteAttempt {
  readonly verb: "create" | "update" | "delete";
  readonly resource: ApiResource;
  readonly namespace: string;
  readonly name: string;
  readonly subresource: Subresource;
  /** create/update: the object about to be stored, a private copy plugins may change in place. */
  readonly object: Json | undefined;
  /** update/delete: the stored object. */
  readonly old: Json | undefined;
  /** Who asks (from authentication); "system:..." for the API server's own writes. */
  readonly user: string;
}

export interface DeleteOptions {
  /** 0 deletes at once; otherwise a resource may delete gracefully (pods). */
  readonly gracePeriodSeconds?: number;
  readonly preconditions?: { readonly uid?: string; readonly resourceVersion?: string };
}

export interface AdmissionPlugin {
  /** Refuses a write (the returned failure is the answer), or lets it through (undefined). */
  admit?(attempt: WriteAttempt): ApiFailure | undefined;
  /**
   * Takes over a delete (e.g. marks a pod terminating instead of removing it). Undefined lets
   * the next plugin, and finally plain removal, handle it.
   */
  delete?(
    attempt: WriteAttempt,
    options: DeleteOptions,
    registry: Registry,
  ): ApiOutcome | undefined;
}

export interface WriteContext {
  readonly user: string;
}

export const SYSTEM: WriteContext = Object.freeze({ user: "system:apiserver" });

function withType(res: ApiResource, apiVersion: string, o: Json): Json {
  return { ...o, apiVersion, kind: res.kind };
}

export class Registry {
  readonly store: ObjectStore;
  readonly #plugins: AdmissionPlugin[];

  constructor(store: ObjectStore, plugins: readonly AdmissionPlugin[] = []) {
    this.store = store;
    this.#plugins = [...plugins];
  }

  addPlugin(p: AdmissionPlugin): void {
    this.#plugins.push(p);
  }

  #admit(a: WriteAttempt): ApiFailure | undefined {
    for (const p of this.#plugins) {
      const refused = p.admit?.(a);
      if (refused !== undefined) return refused;
    }
    return undefined;
  }

  /** Checks a body names the resource and namespace of the request. */
  #checkBody(res: ApiResource, namespace: string | undefined, body: Json): ApiFailure | undefined {
    if (body["kind"] !== undefined && body["kind"] !== res.kind) {
      return failure(
        400,
        "BadRequest",
        `the body is a ${JSON.stringify(body["kind"])}, the request is for ${res.plural}`,
      );
    }
    if (body["apiVersion"] !== undefined) {
      const ok = res.versions.some((v) => apiVersionOf(res, v) === body["apiVersion"]);
      if (!ok)
        return failure(
          400,
          "BadRequest",
          `${res.kind} is not served as ${JSON.stringify(body["apiVersion"])}`,
        );
    }
    const m = metaOf(body);
    if (
      res.namespaced &&
      namespace !== undefined &&
      str(m["namespace"]) !== "" &&
      m["namespace"] !== namespace
    ) {
      return failure(
        400,
        "BadRequest",
        "the namespace of the provided object does not match the namespace sent on the request",
      );
    }
    return undefined;
  }

  create(
    ctx: WriteContext,
    res: ApiResource,
    namespace: string | undefined,
    body: Json,
  ): ApiOutcome {
    const bad = this.#checkBody(res, namespace, body);
    if (bad) return bad;
    const obj: Json = structuredClone(body);
    const m = meta(obj);
    if (res.namespaced) m["namespace"] = namespace ?? (str(m["namespace"]) || "default");
    // Server-owned fields are the server's.
    for (const k of [
      "uid",
      "resourceVersion",
      "generation",
      "creationTimestamp",
      "deletionTimestamp",
    ]) {
      delete m[k];
    }
    const attempt: WriteAttempt = {
      verb: "create",
      resource: res,
      namespace: res.namespaced ? str(m["namespace"]) : "",
      name: str(m["name"]),
      subresource: "",
      object: obj,
      old: undefined,
      user: ctx.user,
    };
    const refused = this.#admit(attempt);
    if (refused) return refused;
    return this.store.create(res, obj);
  }

  /** PUT: replaces the main resource or its status, checking metadata.resourceVersion if given. */
  update(
    ctx: WriteContext,
    res: ApiResource,
    namespace: string,
    name: string,
    body: Json,
    subresource: "" | "status",
  ): ApiOutcome {
    const bad = this.#checkBody(res, namespace, body);
    if (bad) return bad;
    const m = metaOf(body);
    if (str(m["name"]) !== "" && m["name"] !== name) {
      return failure(
        400,
        "BadRequest",
        `the name of the object (${String(m["name"])}) does not match the name on the URL (${name})`,
      );
    }
    return this.#write(
      ctx,
      res,
      namespace,
      name,
      structuredClone(body),
      subresource,
      str(m["resourceVersion"]),
    );
  }

  patch(
    ctx: WriteContext,
    res: ApiResource,
    namespace: string,
    name: string,
    type: PatchType,
    patch: unknown,
    subresource: "" | "status",
  ): ApiOutcome {
    const cur = this.store.get(res, namespace, name);
    if (cur === undefined) return failure(404, "NotFound", `${res.plural} "${name}" not found`);
    const next = applyPatch(cur, type, patch);
    if (!next.ok) return failure(422, "Invalid", `cannot apply the patch: ${next.reason}`);
    // A patch may carry a resourceVersion: then it must match, as for PUT.
    const rv = isObject(patch) ? str(metaOf(patch)["resourceVersion"]) : "";
    const body = next.value;
    if (isObject(body["metadata"])) {
      const m = body["metadata"];
      m["name"] = name;
      if (res.namespaced) m["namespace"] = namespace;
    }
    return this.#write(ctx, res, namespace, name, body, subresource, rv);
  }

  #write(
    ctx: WriteContext,
    res: ApiResource,
    namespace: string,
    name: string,
    obj: Json,
    subresource: "" | "status",
    expectedRv: string,
  ): ApiOutcome {
    const cur = this.store.get(res, namespace, name);
    if (cur === undefined) return failure(404, "NotFound", `${res.plural} "${name}" not found`);
    if (subresource === "status" && !res.status) {
      return failure(404, "NotFound", `${res.plural} have no status subresource`);
    }
    const attempt: WriteAttempt = {
      verb: "update",
      resource: res,
      namespace,
      name,
      subresource,
      object: obj,
      old: cur,
      user: ctx.user,
    };
    const refused = this.#admit(attempt);
    if (refused) return refused;
    const mode: WriteMode = subresource === "status" ? "status" : "main";
    return this.store.replace(res, namespace, name, obj, mode, {
      expectedResourceVersion: expectedRv,
    });
  }

  /**
   * A write of the API server's own (deletion marks, bindings): admission runs with the given
   * subresource, then everything in `obj` but the identity is stored.
   */
  writeSystem(
    ctx: WriteContext,
    res: ApiResource,
    namespace: string,
    name: string,
    obj: Json,
    subresource: Subresource,
  ): ApiOutcome {
    const cur = this.store.get(res, namespace, name);
    if (cur === undefined) return failure(404, "NotFound", `${res.plural} "${name}" not found`);
    const copy = structuredClone(obj);
    const refused = this.#admit({
      verb: "update",
      resource: res,
      namespace,
      name,
      subresource,
      object: copy,
      old: cur,
      user: ctx.user,
    });
    if (refused) return refused;
    return this.store.replace(res, namespace, name, copy, "system", {
      expectedResourceVersion: str(metaOf(cur)["resourceVersion"]),
    });
  }

  delete(
    ctx: WriteContext,
    res: ApiResource,
    namespace: string,
    name: string,
    options: DeleteOptions = {},
  ): ApiOutcome {
    const cur = this.store.get(res, namespace, name);
    if (cur === undefined) return failure(404, "NotFound", `${res.plural} "${name}" not found`);
    const attempt: WriteAttempt = {
      verb: "delete",
      resource: res,
      namespace,
      name,
      subresource: "",
      object: undefined,
      old: cur,
      user: ctx.user,
    };
    const refused = this.#admit(attempt);
    if (refused) return refused;
    for (const p of this.#plugins) {
      const handled = p.delete?.(attempt, options, this);
      if (handled !== undefined) return handled;
    }
    return this.store.remove(res, namespace, name, options.preconditions ?? {});
  }

  /** `POST pods/<name>/binding`: assigns a pod to a node, once. */
  bind(ctx: WriteContext, namespace: string, name: string, body: Json): ApiOutcome {
    const res = this.store.resources.forKind("", "Pod");
    if (res === undefined) return failure(404, "NotFound", "pods are not served");
    const target = isObject(body["target"]) ? body["target"] : {};
    const node = str(target["name"]);
    if (node === "") return failure(422, "Invalid", "Binding: target.name: Required value");
    const cur = this.store.get(res, namespace, name);
    if (cur === undefined) return failure(404, "NotFound", `pods "${name}" not found`);
    const spec = isObject(cur["spec"]) ? cur["spec"] : {};
    if (str(spec["nodeName"]) !== "") {
      return failure(
        409,
        "Conflict",
        `pod ${name} is already assigned to node "${str(spec["nodeName"])}"`,
      );
    }
    if (str(metaOf(cur)["deletionTimestamp"]) !== "") {
      return failure(409, "Conflict", `pod ${name} is being deleted, cannot be assigned to a host`);
    }
    const next = structuredClone<Json>(cur);
    next["spec"] = { ...spec, nodeName: node };
    const r = this.writeSystem(ctx, res, namespace, name, next, "binding");
    if (!r.ok) return r;
    return success(201, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Success",
      code: 201,
    });
  }

  /** A stored object with apiVersion and kind, for answers. */
  typed(res: ApiResource, version: string, o: Json): Json {
    return withType(res, apiVersionOf(res, version), o);
  }
}
