/** Cluster DNS for the local cluster: Service and pod records from the API, no upstream. */
export { DnsServer, type DnsServerOptions, type DnsSource } from "./server.ts";
export { answer, buildView, type DnsAnswer, type DnsView, type Rcode } from "./records.ts";
