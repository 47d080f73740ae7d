/**
 * Configuration sources for the control plane: one interface (`ConfigStore`), three
 * implementations — a watched directory of YAML (`FileConfigStore`, the embedded default), the
 * Kubernetes API (`KubeConfigStore`), and memory (`MemoryConfigStore`, for tests) — plus the typed
 * object model they share, validation with positioned problems, and the `apply` helpers.
 */
export {
  ALL_KINDS,
  KINDS,
  apiPath,
  apiVersionOf,
  apiVersionsFor,
  isKind,
  resolveKind,
  splitApiVersion,
  type CoreKind,
  type GatewayApiKind,
  type IstioKind,
  type Kind,
  type KindInfo,
} from "./kinds.ts";
export {
  deepFreeze,
  jsonEqual,
  keyOf,
  objectKey,
  parseKey,
  type ConfigObject,
  type DeepReadonly,
  type KindTypes,
  type ObjectKey,
  type ObjectMeta,
  type OwnerReference,
  type SpecOf,
  type StatusOf,
  type StoredObject,
} from "./object.ts";
export type {
  AddedEvent,
  ConfigBatch,
  ConfigEvent,
  ConfigHandler,
  DeletedEvent,
  UpdatedEvent,
} from "./events.ts";
export { formatProblem, type ConfigProblem } from "./problem.ts";
export type {
  ConfigStore,
  SourceType,
  StatusUpdate,
  StatusWriteFailure,
  StatusWriteResult,
  SubscribeOptions,
} from "./store.ts";
export {
  applyChanges,
  cacheGet,
  cacheList,
  cacheSize,
  coalesceEvents,
  deleteObjects,
  emptyCache,
  replaceKind,
  upsertObjects,
  type Cache,
  type CacheChange,
  type KindCache,
} from "./cache.ts";
export { parseManifests, type ParsedDocument, type ParsedFile } from "./parse.ts";
export {
  validateObject,
  type Draft,
  type ValidateOptions,
  type ValidationResult,
} from "./validate.ts";
export { formatFieldPath, type PathSegment } from "./field-path.ts";
export { locate, type Position } from "./yaml-position.ts";
export { mergePatch } from "./merge-patch.ts";
export { FileConfigStore, type FilesSourceOptions } from "./files-source.ts";
export {
  applyManifests,
  deleteManifest,
  type AppliedObject,
  type ApplyInput,
  type ApplyOptions,
} from "./file-apply.ts";
export { KubeConfigStore, type KubeSourceOptions } from "./kube-source.ts";
export {
  MemoryConfigStore,
  type Manifest,
  type MemorySourceOptions,
  type SetResult,
} from "./memory-source.ts";
