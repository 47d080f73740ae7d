/**
 * ztunnel's workload certificates: the manager the proxies get as their CertificateSource, the
 * CA client that feeds it, and the local CA of static mode.
 */
export {
  CertificateManager,
  DEFAULT_IDLE_DROP_MS,
  dumpCertificate,
  type CertificateDump,
  type CertificateManagerOptions,
  type CertificatesDump,
} from "./manager.ts";
export { DEFAULT_MAX_CONCURRENT_FETCHES, FetchQueue, type FetchPriority } from "./fetch-queue.ts";
export {
  DEFAULT_CA_DEADLINE_MS,
  createCaClient,
  type CaClient,
  type CaClientOptions,
} from "./ca-client.ts";
export { certificateFromCaResponse } from "./chain.ts";
export { createLocalCa, type LocalCa } from "./local-ca.ts";
