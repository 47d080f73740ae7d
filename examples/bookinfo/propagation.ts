/**
 * Which request headers a bookinfo service copies onto the requests it makes, as Istio's sample
 * apps do. The mesh creates spans and access-log entries per hop, but only the application can
 * carry a trace or request id from an inbound request to its outbound ones.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";

export const PROPAGATED_HEADERS: readonly string[] = Object.freeze([
  // Request id: ties access-log lines of every hop together (Envoy/waypoint generate it).
  "x-request-id",
  // Zipkin B3, multi- and single-header forms.
  "x-b3-traceid",
  "x-b3-spanid",
  "x-b3-parentspanid",
  "x-b3-sampled",
  "x-b3-flags",
  "b3",
  // W3C trace context.
  "traceparent",
  "tracestate",
  // Other tracers Istio's sample supports.
  "x-ot-span-context",
  "x-cloud-trace-context",
  "grpc-trace-bin",
  "sw8",
  "x-datadog-trace-id",
  "x-datadog-parent-id",
  "x-datadog-sampling-priority",
  // Application headers that routing and policy examples match on.
  "end-user",
  "user-agent",
  "cookie",
  "authorization",
  "jwt",
]);

/**
 * The headers to send upstream: the propagated ones present on the inbound request, and
 * `end-user` set to the signed-in user when there is one (it wins over an inbound `end-user`).
 */
export function forwardHeaders(
  incoming: IncomingHttpHeaders,
  user: string | undefined,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name of PROPAGATED_HEADERS) {
    const v = incoming[name];
    if (v !== undefined) out[name] = v;
  }
  if (user !== undefined) out["end-user"] = user;
  return out;
}
