/**
 * A Kubernetes-compatible API server core, shared by the local cluster's API server
 * (src/local/apiserver) and the test stand-in (src/testing/fake-kube-api.ts): storage with one
 * resourceVersion counter and watch history (`ObjectStore`), the write verbs with admission
 * (`Registry`), the REST protocol (`KubeApiHandler`), and a small write client (`KubeClient`).
 */
export {
  DEFAULT_RESOURCES,
  ResourceTable,
  apiVersionOf,
  preferredApiVersion,
  splitApiVersion,
  type ApiResource,
} from "./resources.ts";
export {
  ObjectStore,
  isJsonObject,
  randomSuffix,
  type ObjectStoreOptions,
  type StoreEvent,
  type WatchEventType,
  type WriteMode,
  type WriteOptions,
} from "./object-store.ts";
export {
  Registry,
  SYSTEM,
  type AdmissionPlugin,
  type DeleteOptions,
  type Subresource,
  type WriteAttempt,
  type WriteContext,
} from "./registry.ts";
export { KubeApiHandler, type KubeApiHandlerOptions, type RequestRecord } from "./http-handler.ts";
export { applyJsonPatch, applyPatch, patchTypeOf, type PatchType } from "./patch.ts";
export { parseFieldSelector, parseLabelSelector, selectorOf, type Selector } from "./selectors.ts";
export { canonicalJson, deepFreeze, diffMergePatch, jsonEqual } from "./json.ts";
export {
  failure,
  isObject,
  meta,
  metaOf,
  statusBody,
  str,
  success,
  type ApiFailure,
  type ApiOutcome,
  type ApiSuccess,
  type Json,
  type StatusReason,
} from "./status.ts";
export { KubeClient, resourcePath, type ClientFailure, type ClientResult } from "./client.ts";
