/**
 * The local cluster's controllers: Deployment → ReplicaSet → Pod, the scheduler and garbage
 * collection. Pure planners (tested alone) and a manager that runs them against the API server's
 * Registry in its own process.
 */
export { ControllerManager, type ControllerManagerOptions } from "./manager.ts";
export {
  planDeployment,
  newReplicaSet,
  intOrPercent,
  POD_TEMPLATE_HASH,
  type DeploymentPlan,
} from "./deployment.ts";
export { planReplicaSet, podFromTemplate, ownedPods, type ReplicaSetPlan } from "./replicaset.ts";
export { chooseNode, schedulableNodes } from "./scheduler.ts";
export { podTemplateHash, fnv1a32, safeEncode } from "./pod-template-hash.ts";
