/**
 * ztunnel's L4 telemetry: the Istio traffic metrics (INTEROP §6.1) and access logs (§6.3) of the
 * connections the proxies carry. Labels are computed once per connection, never per chunk.
 */
export {
  TRAFFIC_LABEL_NAMES,
  UNKNOWN,
  trafficLabels,
  withResponseFlag,
  type ConnectionOpen,
  type DerivedWorkload,
  type Reporter,
  type ResponseFlag,
  type SecurityPolicy,
  type TrafficLabelName,
  type TrafficLabels,
} from "./traffic-labels.ts";
export { TRAFFIC_METRIC_NAMES, TrafficMetrics } from "./traffic-metrics.ts";
export {
  ConnectionResult,
  direction,
  logConnectionFailed,
  type ConnectionBytes,
  type ConnectionResultInit,
} from "./connection-result.ts";
