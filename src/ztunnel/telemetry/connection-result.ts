/**
 * One proxied connection's telemetry, from the moment the proxy knows enough about it (ztunnel's
 * `ConnectionResult`): opening counts `istio_tcp_connections_opened_total` and logs
 * `connection opened` (debug, scope `access`); `record()` — exactly once — counts the close (with
 * the response flag), the failure, the bytes, and logs `connection complete` (info, or error with
 * `error=`), INTEROP §6.3. Connections refused before that point get one `connection failed`
 * warning instead (`logConnectionFailed`) and no metrics, as in ztunnel.
 *
 * Bytes: `clientToServer` is what the client sent towards the server, whichever side reports.
 * The metrics keep Istio's meaning (`received` = client -> server, `sent` = server -> client);
 * the log's `bytes_sent`/`bytes_recv` are from the reporting proxy's point of view (outbound sends
 * the client's bytes, inbound sends the server's), as ztunnel writes them.
 */
import type { Fields, Logger } from "../../lib/log/index.ts";
import {
  UNKNOWN,
  withResponseFlag,
  type ConnectionOpen,
  type Reporter,
  type ResponseFlag,
  type TrafficLabels,
} from "./traffic-labels.ts";
import type { TrafficMetrics } from "./traffic-metrics.ts";

export interface ConnectionResultInit {
  /** The client's address, `ip:port`. */
  readonly src: string;
  /** The TCP destination: the next hop (`ip:15008` for HBONE) or the app (`ip:port`). */
  readonly dst: string;
  /** The CONNECT `:authority`, for HBONE. */
  readonly hboneTarget?: string | undefined;
  readonly open: ConnectionOpen;
}

export interface ConnectionBytes {
  readonly clientToServer: number;
  readonly serverToClient: number;
}

export function direction(r: Reporter): "outbound" | "inbound" {
  return r === "source" ? "outbound" : "inbound";
}

function known(s: string | undefined): string | undefined {
  return s === undefined || s === UNKNOWN ? undefined : s;
}

/** `connection failed` (warn): refused before there was enough context for metrics. */
export function logConnectionFailed(
  accessLog: Logger,
  src: string,
  dst: string,
  reporter: Reporter,
  error: string,
): void {
  accessLog.warn("connection failed", {
    "src.addr": src,
    "dst.addr": dst,
    direction: direction(reporter),
    error,
  });
}

export class ConnectionResult {
  readonly labels: TrafficLabels;
  readonly #metrics: TrafficMetrics;
  readonly #log: Logger;
  readonly #init: ConnectionResultInit;
  readonly #start = performance.now();
  #fields: Fields | undefined;
  #recorded = false;

  constructor(metrics: TrafficMetrics, accessLog: Logger, init: ConnectionResultInit) {
    this.#metrics = metrics;
    this.#log = accessLog;
    this.#init = init;
    this.labels = metrics.labels(init.open);
    metrics.opened.inc(this.labels);
    if (accessLog.enabled("debug")) accessLog.debug("connection opened", this.#baseFields());
  }

  get recorded(): boolean {
    return this.#recorded;
  }

  /** Counts and logs the end of the connection. Later calls do nothing. */
  record(bytes: ConnectionBytes, error?: string, flag: ResponseFlag = "-"): void {
    if (this.#recorded) return;
    this.#recorded = true;
    const m = this.#metrics;
    const closedLabels = withResponseFlag(this.labels, flag);
    m.closed.inc(closedLabels);
    if (flag !== "-") m.failed.inc(closedLabels);
    // Byte series carry the labels the connection opened with, as in ztunnel.
    if (bytes.clientToServer > 0) m.received.inc(this.labels, bytes.clientToServer);
    if (bytes.serverToClient > 0) m.sent.inc(this.labels, bytes.serverToClient);

    const level = error === undefined ? "info" : "error";
    if (!this.#log.enabled(level)) return;
    const outbound = this.#init.open.reporter === "source";
    const fields: Record<string, string | number | undefined> = {
      ...this.#baseFields(),
      bytes_sent: outbound ? bytes.clientToServer : bytes.serverToClient,
      bytes_recv: outbound ? bytes.serverToClient : bytes.clientToServer,
      duration: `${Math.round(performance.now() - this.#start)}ms`,
    };
    if (error === undefined) {
      this.#log.info("connection complete", fields);
    } else {
      fields["error"] = error;
      this.#log.error("connection complete", fields);
    }
  }

  #baseFields(): Fields {
    if (this.#fields !== undefined) return this.#fields;
    const l = this.labels;
    const o = this.#init.open;
    const mtls = o.securityPolicy === "mutual_tls";
    this.#fields = {
      "src.addr": this.#init.src,
      "src.workload": o.source?.name || known(l.source_canonical_service),
      "src.namespace": known(l.source_workload_namespace),
      "src.identity": mtls ? known(l.source_principal) : undefined,
      "src.cluster": known(l.source_cluster),
      "dst.addr": this.#init.dst,
      "dst.hbone_addr": this.#init.hboneTarget,
      "dst.service": known(l.destination_service),
      "dst.workload": o.destination?.name || known(l.destination_canonical_service),
      "dst.namespace": known(l.destination_workload_namespace),
      "dst.identity": mtls ? known(l.destination_principal) : undefined,
      "dst.cluster": known(l.destination_cluster),
      direction: direction(o.reporter),
    };
    return this.#fields;
  }
}
