/**
 * The node agent's end of ZDS: the server ztunnel connects to, and the API the agent enrolls pods
 * through (`addPod` resolves once ztunnel Acked, deciding `ambient.istio.io/redirection`:
 * `enabled` on ok, `pending` otherwise).
 */
export {
  ZdsServer,
  type EnrolledPod,
  type SnapshotResult,
  type ZdsServerEvents,
  type ZdsServerOptions,
} from "./server.ts";
export type { AckOutcome, ZdsFailure, ZdsFailureKind } from "./connection.ts";
