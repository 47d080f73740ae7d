/**
 * Settings of the ambient conversion. Defaults are istiod's; the control plane's `loadConfig`
 * maps Istio's env names onto these (noted per field).
 */
export interface AmbientOptions {
  /** `CLUSTER_ID`; workload uids and `cluster_id`. */
  readonly clusterId: string;
  /** `DOMAIN_SUFFIX`; Service hostnames are `<name>.<ns>.svc.<domainSuffix>`. */
  readonly domainSuffix: string;
  /**
   * `NETWORK`: the network of this cluster's workloads and VIPs when the system namespace has no
   * `topology.istio.io/network` label (the label wins, as in istiod).
   */
  readonly network: string;
  /** Mesh config `rootNamespace`: where mesh-wide policies live. */
  readonly rootNamespace: string;
  /** `POD_NAMESPACE` of the control plane: its namespace labels set the network; ztunnel pods run there. */
  readonly systemNamespace: string;
  /** Mesh config `trustDomain`; sent only when not `cluster.local`. */
  readonly trustDomain: string;
  /** `PILOT_AUTO_ALLOW_WAYPOINT_POLICY` (istiod default false): implicit ALLOW-from-waypoint policies. */
  readonly defaultAllowFromWaypoint: boolean;
  /** `PILOT_ENABLE_SERVICEENTRY_SELECT_PODS` (default true): ServiceEntry workloadSelector selects pods. */
  readonly enableServiceEntrySelectPods: boolean;
  /** `PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES` (default true): Services select WorkloadEntries. */
  readonly enableK8sServiceSelectWorkloadEntries: boolean;
  /**
   * istiod always sends `workload_type: POD` for pods ("backwards compatibility") and keeps the
   * owner only in `workload_name`. Set to send the owner's kind (DEPLOYMENT/CRONJOB/JOB) instead.
   */
  readonly workloadTypeFromOwner: boolean;
}

export const defaultAmbientOptions: AmbientOptions = Object.freeze({
  clusterId: "Kubernetes",
  domainSuffix: "cluster.local",
  network: "",
  rootNamespace: "istio-system",
  systemNamespace: "istio-system",
  trustDomain: "cluster.local",
  defaultAllowFromWaypoint: false,
  enableServiceEntrySelectPods: true,
  enableK8sServiceSelectWorkloadEntries: true,
  workloadTypeFromOwner: false,
});

export function ambientOptions(overrides: Partial<AmbientOptions> = {}): AmbientOptions {
  return Object.freeze({ ...defaultAmbientOptions, ...overrides });
}
