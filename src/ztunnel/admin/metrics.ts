/**
 * The Prometheus side (`:15020/metrics` and `/stats/prometheus`): one prom-client Registry
 * shared with the data path, holding `istio_build`, the xDS and in-pod metrics, the traffic
 * metrics the proxies register, and Node's process metrics.
 */
import { Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { HttpAnswer, HttpHandler } from "./http.ts";

/** A registry with process metrics and `istio_build{component="ztunnel",tag}` 1. */
export function createZtunnelRegistry(tag: string): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const build = new Gauge({
    name: "istio_build",
    help: "Istio component build info",
    labelNames: ["component", "tag"] as const,
    registers: [registry],
  });
  build.set({ component: "ztunnel", tag }, 1);
  return registry;
}

export function metricsHandler(registry: Registry): HttpHandler {
  return async ({ method, path }): Promise<HttpAnswer> => {
    if (path !== "/metrics" && path !== "/stats/prometheus")
      return { status: 404, body: "not found\n" };
    if (method !== "GET" && method !== "HEAD") return { status: 405, body: "method not allowed\n" };
    return { status: 200, body: await registry.metrics(), contentType: registry.contentType };
  };
}
