/**
 * The outbound decision (INTEROP.md §2.2, ztunnel's `build_request`): given the source pod, the
 * original destination and the state, decide where a captured connection goes. A pure function
 * returning a value; the outbound proxy carries it out.
 *
 * Steps: (1) refuse loopback + ztunnel port; (2) a source is required; (3) service-addressed?
 * (workload owning the IP first, else a visible service VIP); (4) service waypoint; (5) pick the
 * upstream (PASSTHROUGH, endpoints + locality + capacity, target port, IP family, DNS), or
 * passthrough for unknown IPs; (6) another network -> double HBONE via its network gateway;
 * (7) workload waypoint when not service-addressed and not coming from that waypoint;
 * (8) HBONE to `ip:15008` or plain TCP.
 */
import type { Identity } from "../../../lib/identity/index.ts";
import { identitiesEqual } from "../../../lib/identity/index.ts";
import { canonicalIp, formatSocketAddr, isLoopback } from "../../../lib/net/index.ts";
import type {
  GatewayAddress,
  ProxyState,
  Service,
  ServiceDescription,
  Workload,
} from "../../state/index.ts";
import { describeService } from "../../state/index.ts";
import { HBONE_PORT, formatAddr } from "./common.ts";
import type { ResponseFlag, Rng, SocketAddr } from "./common.ts";
import { finalizeUpstream, findUpstream, isFromGateway, resolveGateway } from "./upstream.ts";
import type { DnsLookup, PlanContext, Upstream } from "./upstream.ts";

export interface OutboundConfig {
  /** This ztunnel's network (`NETWORK`); the network the original destination is looked up in. */
  readonly network: string;
  /** Ports a loopback destination may not use: 15001, 15006, 15008 (+15080 with SOCKS5). */
  readonly illegalPorts: ReadonlySet<number>;
  /** The HBONE port of destinations (default 15008). */
  readonly hbonePort?: number;
}

export interface OutboundInput {
  /** The pod this proxy serves (undefined if xDS has not delivered it). */
  readonly source: Workload | undefined;
  /** The connection's source IP as seen by ztunnel (for the "from its own waypoint" check). */
  readonly sourceIp?: string | undefined;
  /** The original destination (SO_ORIGINAL_DST, or the SOCKS5 target). */
  readonly destination: SocketAddr;
  readonly state: ProxyState;
  readonly config: OutboundConfig;
  readonly rng: Rng;
  /** Cached DNS answers for hostname-only workloads; a miss yields a `needs-dns` plan. */
  readonly dns?: DnsLookup | undefined;
}

export type OutboundRefusalCode =
  | "self-call"
  | "unknown-source"
  | "no-healthy-upstream"
  | "unknown-waypoint"
  | "unknown-network-gateway"
  | "no-valid-destination"
  | "bad-destination";

export interface OutboundRefused {
  readonly kind: "refused";
  readonly code: OutboundRefusalCode;
  /** For operators: what is wrong and what to check. */
  readonly message: string;
  readonly responseFlag: ResponseFlag;
  readonly service: ServiceDescription | undefined;
}

/** Plain TCP to the original destination, untouched. */
export interface OutboundPassthrough {
  readonly kind: "passthrough";
  readonly destination: SocketAddr;
  /** `unknown-destination`: not a mesh address; `passthrough-service`: a PASSTHROUGH service. */
  readonly reason: "unknown-destination" | "passthrough-service";
  readonly service: ServiceDescription | undefined;
}

/** A hostname-only workload was chosen; resolve `hostname`, cache it, and plan again. */
export interface OutboundNeedsDns {
  readonly kind: "needs-dns";
  readonly hostname: string;
  readonly workload: Workload;
  /** Prefer AAAA answers (the request was IPv6). */
  readonly preferIpv6: boolean;
}

/** The inner tunnel of double HBONE (through an east-west gateway). */
export interface DoubleHboneInner {
  readonly authority: string;
  /** The final destination service's SANs (checked by the inner TLS). */
  readonly expectedIdentities: readonly Identity[];
  /** `x-forwarded-network` header value: our network. */
  readonly forwardedNetwork: string;
}

export interface OutboundConnect {
  readonly kind: "connect";
  /** How the destination is reached. */
  readonly via: "direct" | "service-waypoint" | "workload-waypoint";
  readonly protocol: "HBONE" | "TCP" | "DOUBLE_HBONE";
  /** The TCP connection to open: `ip:15008` (HBONE), the waypoint/gateway HBONE address, or `ip:port` (TCP). */
  readonly destination: SocketAddr;
  /** CONNECT `:authority` (outer one for double HBONE); undefined for TCP. */
  readonly authority: string | undefined;
  /** Identities the next hop's certificate may present (any one of them). */
  readonly expectedIdentities: readonly Identity[];
  readonly inner: DoubleHboneInner | undefined;
  /** The workload receiving the connection: the waypoint, or the chosen endpoint. */
  readonly upstream: Upstream;
  /** The waypoint used, if any (same as `upstream` then). */
  readonly waypoint: Upstream | undefined;
  /** The east-west gateway used for double HBONE. */
  readonly gateway: Upstream | undefined;
  /** The intended destination service (telemetry, `forwarded` host). */
  readonly service: ServiceDescription | undefined;
  /** `host=` of the `forwarded` header: the service hostname when known. */
  readonly forwardedHost: string | undefined;
  /** Telemetry's destination workload: waypoint, gateway, or endpoint. */
  readonly destinationWorkload: Workload;
  readonly originalDestination: SocketAddr;
}

export type OutboundPlan =
  OutboundRefused | OutboundPassthrough | OutboundNeedsDns | OutboundConnect;

function refused(code: OutboundRefusalCode, message: string, service?: Service): OutboundRefused {
  return {
    kind: "refused",
    code,
    message,
    responseFlag: code === "self-call" || code === "unknown-source" ? "DENY" : "CONNECT",
    service: service === undefined ? undefined : describeService(service),
  };
}

/** Service SANs (that are SPIFFE ids) plus the workload's identity, without duplicates. */
function expectedIdentities(u: Upstream): Identity[] {
  const sans = u.service?.sanIdentities;
  const id = u.workload.identity;
  if (sans === undefined || sans.length === 0) return [id];
  const out = [...sans];
  if (!sans.some((s) => identitiesEqual(s, id))) out.push(id);
  return out;
}

/** The service's waypoint: a `weighted_waypoints` entry sampled by weight, else `waypoint`. */
function pickServiceWaypoint(svc: Service, rng: Rng): GatewayAddress | undefined {
  const ws = svc.weightedWaypoints;
  if (ws.length === 0) return svc.waypoint;
  let total = 0;
  for (const w of ws) total += w.weight;
  if (total <= 0) {
    // All weights zero: treat them as equal rather than sending nowhere.
    return ws[Math.min(ws.length - 1, Math.floor(rng() * ws.length))]?.destination;
  }
  let r = rng() * total;
  for (const w of ws) {
    r -= w.weight;
    if (r < 0 && w.weight > 0) return w.destination;
  }
  return ws.findLast((w) => w.weight > 0)?.destination;
}

function allServiceWaypoints(svc: Service): GatewayAddress[] {
  const out = svc.weightedWaypoints.map((w) => w.destination);
  if (svc.waypoint !== undefined) out.push(svc.waypoint);
  return out;
}

export function planOutbound(input: OutboundInput): OutboundPlan {
  const { state, config, rng } = input;
  const hbonePort = config.hbonePort ?? HBONE_PORT;
  const ip = canonicalIp(input.destination.ip);
  if (ip === undefined) {
    return refused(
      "bad-destination",
      `original destination "${input.destination.ip}" is not an IP address`,
    );
  }
  const dst: SocketAddr = { ip, port: input.destination.port };

  // 1. Loopback to one of our own ports would loop through ztunnel.
  if (isLoopback(dst.ip) && config.illegalPorts.has(dst.port)) {
    return refused(
      "self-call",
      `refusing connection to ${formatAddr(dst)}: it is one of ztunnel's own ports (a call to itself would loop)`,
    );
  }
  // 2. The source pod.
  const source = input.source;
  if (source === undefined) {
    return refused(
      "unknown-source",
      `source workload for the connection to ${formatAddr(dst)} is not known from xDS yet; check that the control plane sends this pod's Workload`,
    );
  }
  const ctx: PlanContext = { state, source, rng, dns: input.dns };
  const sourceIps =
    input.sourceIp !== undefined
      ? [canonicalIp(input.sourceIp) ?? input.sourceIp]
      : source.workloadIps;
  const original = dst;

  // 3. Service-addressed? (a workload owning the IP wins)
  const addressed = state.findAddress(config.network, dst.ip, source.namespace);
  const service = addressed?.kind === "service" ? addressed.service : undefined;

  // 4. Service waypoint. A waypoint's own traffic to the service never loops back to it.
  if (service !== undefined) {
    const fromOwnWaypoint = allServiceWaypoints(service).some((g) =>
      isFromGateway(state, g, source.identity, sourceIps),
    );
    const gw = fromOwnWaypoint ? undefined : pickServiceWaypoint(service, rng);
    if (gw !== undefined) {
      const wp = resolveGateway(ctx, gw, original, "waypoint");
      if (wp.kind === "needs-dns") return needsDns(wp.hostname, wp.workload, dst);
      if (wp.kind === "not-found") {
        return refused(
          "unknown-waypoint",
          `service ${service.namespace}/${service.hostname} uses waypoint ${wp.why}; check that the waypoint is deployed and ready`,
          service,
        );
      }
      const u = wp.upstream;
      if (u.workload.network !== source.network) {
        return throughGateway(ctx, u, service, dst, config.network, "service-waypoint");
      }
      if (u.ip === undefined) {
        return refused(
          "no-valid-destination",
          `waypoint workload ${u.workload.uid} has no usable IP`,
          service,
        );
      }
      return connect({
        via: "service-waypoint",
        protocol: "HBONE",
        destination: { ip: u.ip, port: u.port },
        authority: formatAddr(original),
        expectedIdentities: expectedIdentities(u),
        inner: undefined,
        upstream: u,
        waypoint: u,
        gateway: undefined,
        service: describeService(service),
        forwardedHost: service.hostname,
        destinationWorkload: u.workload,
        originalDestination: original,
      });
    }
  }

  // 5. The upstream.
  const found = findUpstream(ctx, source.network, dst, "standard");
  if (found.kind === "original-destination") {
    return {
      kind: "passthrough",
      destination: dst,
      reason: "passthrough-service",
      service: describeService(found.service),
    };
  }
  if (found.kind === "none") {
    if (service !== undefined && service.loadBalancing?.mode !== "PASSTHROUGH") {
      return refused(
        "no-healthy-upstream",
        `no healthy upstream for ${formatAddr(dst)}: ${found.why}`,
        service,
      );
    }
    return {
      kind: "passthrough",
      destination: dst,
      reason: "unknown-destination",
      service: undefined,
    };
  }
  const fin = finalizeUpstream(ctx, found, dst);
  if (fin.kind === "needs-dns") return needsDns(fin.hostname, fin.workload, dst);
  if (fin.kind === "error") return refused("no-valid-destination", fin.why, found.service);
  const us = fin.upstream;

  // 6. Another network: double HBONE through its east-west gateway.
  if (us.workload.network !== source.network) {
    if (service === undefined) {
      return refused(
        "no-valid-destination",
        `workload ${us.workload.uid} is on network "${us.workload.network}" but was not addressed through a service; cross-network traffic must use a service`,
      );
    }
    return throughGateway(ctx, us, service, dst, config.network, "direct");
  }

  // 7. Workload waypoint: only for workload-addressed traffic, and not for the waypoint itself.
  if (service === undefined && us.workload.waypoint !== undefined) {
    const fromWaypoint = isFromGateway(state, us.workload.waypoint, source.identity, sourceIps);
    if (!fromWaypoint) {
      const wp = resolveGateway(ctx, us.workload.waypoint, original, "waypoint");
      if (wp.kind === "needs-dns") return needsDns(wp.hostname, wp.workload, dst);
      if (wp.kind === "not-found") {
        return refused(
          "unknown-waypoint",
          `workload ${us.workload.uid} uses waypoint ${wp.why}; check that the waypoint is deployed and ready`,
        );
      }
      const w = wp.upstream;
      if (w.ip === undefined) {
        return refused(
          "no-valid-destination",
          `waypoint workload ${w.workload.uid} has no usable IP`,
        );
      }
      const svcDesc = us.service === undefined ? undefined : describeService(us.service);
      return connect({
        via: "workload-waypoint",
        protocol: "HBONE",
        destination: { ip: w.ip, port: w.port },
        authority: formatAddr(original),
        expectedIdentities: expectedIdentities(w),
        inner: undefined,
        upstream: w,
        waypoint: w,
        gateway: undefined,
        service: svcDesc,
        forwardedHost: svcDesc?.hostname,
        destinationWorkload: w.workload,
        originalDestination: original,
      });
    }
  }

  // 8. Direct.
  if (us.ip === undefined) {
    return refused(
      "no-valid-destination",
      `workload ${us.workload.uid} has no usable IP`,
      us.service,
    );
  }
  const svcDesc = us.service === undefined ? undefined : describeService(us.service);
  const hbone = us.workload.protocol === "HBONE";
  return connect({
    via: "direct",
    protocol: hbone ? "HBONE" : "TCP",
    destination: { ip: us.ip, port: hbone ? hbonePort : us.port },
    authority: hbone ? formatSocketAddr(us.ip, us.port) : undefined,
    expectedIdentities: expectedIdentities(us),
    inner: undefined,
    upstream: us,
    waypoint: undefined,
    gateway: undefined,
    service: svcDesc,
    forwardedHost: svcDesc?.hostname,
    destinationWorkload: us.workload,
    originalDestination: original,
  });
}

function connect(p: Omit<OutboundConnect, "kind">): OutboundConnect {
  return { kind: "connect", ...p };
}

function needsDns(hostname: string, workload: Workload, dst: SocketAddr): OutboundNeedsDns {
  return { kind: "needs-dns", hostname, workload, preferIpv6: dst.ip.includes(":") };
}

/**
 * Double HBONE: outer HBONE to the east-west gateway, inner HBONE to the destination (or its
 * waypoint), both with `:authority` `<service hostname>:<service port>`.
 */
function throughGateway(
  ctx: PlanContext,
  next: Upstream,
  service: Service,
  dst: SocketAddr,
  network: string,
  via: OutboundConnect["via"],
): OutboundPlan {
  const gwRef = next.workload.networkGateway;
  if (gwRef === undefined) {
    return refused(
      "no-valid-destination",
      `workload ${next.workload.uid} is on network "${next.workload.network}" but has no network gateway; check the east-west gateway configuration`,
      service,
    );
  }
  const gw = resolveGateway(ctx, gwRef, dst, "standard");
  if (gw.kind === "needs-dns") return needsDns(gw.hostname, gw.workload, dst);
  if (gw.kind === "not-found") {
    return refused("unknown-network-gateway", `network gateway ${gw.why}`, service);
  }
  const g = gw.upstream;
  if (g.ip === undefined) {
    return refused(
      "unknown-network-gateway",
      `network gateway workload ${g.workload.uid} has no usable IP`,
      service,
    );
  }
  const authority = `${service.hostname}:${dst.port}`;
  const isWaypoint = via === "service-waypoint";
  return connect({
    via,
    protocol: "DOUBLE_HBONE",
    destination: { ip: g.ip, port: g.port },
    authority,
    expectedIdentities: expectedIdentities(g),
    inner: {
      authority,
      expectedIdentities: [...(next.service?.sanIdentities ?? [])],
      forwardedNetwork: network,
    },
    upstream: next,
    waypoint: isWaypoint ? next : undefined,
    gateway: g,
    service: describeService(service),
    forwardedHost: service.hostname,
    destinationWorkload: g.workload,
    originalDestination: dst,
  });
}
