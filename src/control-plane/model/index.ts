/**
 * The control plane's view of user configuration: Kubernetes-shaped objects, snapshots and
 * changes of them, and the small pure helpers every consumer needs (selectors, IPs, well-known
 * labels, workload metadata, ambient enrollment).
 */
export {
  annotationsOf,
  apiGroup,
  endpointSliceFields,
  formatRef,
  isClusterScoped,
  labelsOf,
  objectKey,
  refOf,
  resourceKindOf,
  resourceKinds,
} from "./objects.ts";
export type * from "./objects.ts";
export { diffSnapshots, snapshotOf } from "./snapshot.ts";
export { changesFromBatch, fromConfigObject, snapshotFromStore } from "./config-source.ts";
export type { ConfigChange, Snapshot } from "./snapshot.ts";
export { annotation, label, value } from "../../lib/ambient/index.ts";
export type { TrafficType } from "../../lib/ambient/index.ts";
export {
  formatLabels,
  isEmpty,
  isSubset,
  labelSelectorMatches,
  selectsNonEmpty,
} from "./selector.ts";
export { formatIp, parseCidr, parseIp } from "./ip.ts";
export type { AddressPrefix } from "./ip.ts";
export {
  canonicalService,
  deployMetaFromPod,
  podServiceAccount,
  workloadNameOfWorkloadEntry,
  workloadOwnerOfPod,
} from "./workload-meta.ts";
export type { WorkloadOwner } from "./workload-meta.ts";
export { ambientEnrollment } from "../../lib/ambient/index.ts";
export type { Enrollment, EnrollmentReason } from "../../lib/ambient/index.ts";
