/**
 * ztunnel's xDS metrics (INTEROP §6.1), fed by the XdsClient's observer hooks:
 * `istio_xds_connection_terminations_total{reason}` (ConnectionError, Error, Reconnect, Complete),
 * `istio_xds_message_total{url}` and `istio_xds_message_bytes_total{url}` (url = type URL).
 */
import { Counter, type Registry } from "prom-client";
import type { XdsClientObserver } from "../../lib/xds/index.ts";

export const XDS_METRIC_NAMES = {
  terminations: "istio_xds_connection_terminations_total",
  messages: "istio_xds_message_total",
  messageBytes: "istio_xds_message_bytes_total",
} as const;

/** Registers the three counters and returns the observer hooks that drive them. */
export function createXdsMetrics(
  registry: Registry,
): Required<Pick<XdsClientObserver, "terminated" | "message">> {
  const registers = [registry];
  const terminations = new Counter({
    name: XDS_METRIC_NAMES.terminations,
    help: "The total number of completed connections to xds server (unstable)",
    labelNames: ["reason"] as const,
    registers,
  });
  const messages = new Counter({
    name: XDS_METRIC_NAMES.messages,
    help: "Total number of messages received (unstable)",
    labelNames: ["url"] as const,
    registers,
  });
  const bytes = new Counter({
    name: XDS_METRIC_NAMES.messageBytes,
    help: "Total number of bytes received (unstable)",
    labelNames: ["url"] as const,
    registers,
  });
  return {
    terminated: (e) => terminations.inc({ reason: e.reason }),
    message: (e) => {
      messages.inc({ url: e.typeUrl });
      bytes.inc({ url: e.typeUrl }, e.bytes);
    },
  };
}
