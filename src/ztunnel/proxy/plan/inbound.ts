/**
 * The inbound decisions: HBONE on 15008 (INTEROP.md §2.3 steps 2-5) and plaintext on 15006
 * (§2.4). Pure functions returning values; the inbound proxies carry them out and map a refusal
 * to its HBONE status (400/401/503) or a TCP reset.
 */
import type { Identity } from "../../../lib/identity/index.ts";
import { authorize, describeDecision } from "../../../lib/rbac/index.ts";
import { canonicalIp, parsePort, parseSocketAddr } from "../../../lib/net/index.ts";
import type { AuthorizationDecision } from "../../../lib/rbac/index.ts";
import type { ProxyState, Service, ServiceDescription, Workload } from "../../state/index.ts";
import { checkHostname, describeService, serviceKey } from "../../state/index.ts";
import { formatAddr } from "./common.ts";
import type { ResponseFlag, SocketAddr } from "./common.ts";

export interface InboundConfig {
  /** This ztunnel's network (`NETWORK`). */
  readonly network: string;
  /** Ports a final destination may never be: 15001, 15006, 15008 (+15080 with SOCKS5). */
  readonly illegalPorts: ReadonlySet<number>;
  /** Deliver to PROXY application tunnels over loopback (`LOCALHOST_APP_TUNNEL`, default true). */
  readonly localhostAppTunnel?: boolean;
}

/** The CONNECT target: an IP socket address or a service hostname and port. */
export type HboneTarget =
  | { readonly kind: "address"; readonly ip: string; readonly port: number }
  | { readonly kind: "hostname"; readonly hostname: string; readonly port: number };

export interface InboundInput {
  /** The pod this listener serves; undefined if xDS has not delivered it. */
  readonly localWorkload: Workload | undefined;
  /** Where the HBONE connection arrived (`podIP:15008`). */
  readonly localAddress: SocketAddr;
  /** The request method; anything but CONNECT is refused with 400. Defaults to CONNECT. */
  readonly method?: string | undefined;
  /** The CONNECT `:authority`. */
  readonly authority: string;
  /** The mTLS peer identity. */
  readonly peerIdentity: Identity | undefined;
  /** The TCP peer address. */
  readonly peerAddress: SocketAddr;
  /** `host=` of the `forwarded` header (helps pick the service for telemetry). */
  readonly forwardedHost?: string | undefined;
  /** The `x-forwarded-network` header, if present. */
  readonly forwardedNetwork?: string | undefined;
  readonly state: ProxyState;
  readonly config: InboundConfig;
}

export type InboundRefusalCode =
  | "method-not-connect"
  | "bad-authority"
  | "unknown-local-workload"
  | "ip-mismatch"
  | "unknown-service-hostname"
  | "no-port-for-service"
  | "no-ip-for-service"
  | "illegal-port"
  | "denied";

export interface InboundRefused {
  readonly kind: "refused";
  /** The HBONE response status. */
  readonly status: 400 | 401 | 503;
  readonly code: InboundRefusalCode;
  readonly message: string;
  readonly responseFlag: ResponseFlag;
  /** Present when a policy decided (`denied`). */
  readonly authorization: AuthorizationDecision | undefined;
}

/** How to deliver to an application tunnel (waypoint "sandwich"). */
export interface TunnelRequest {
  readonly protocol: "PROXY" | "NONE";
  /** The destination written into the PROXY header: the CONNECT target (a VIP for hostnames). */
  readonly proxyDestination: SocketAddr;
}

export interface InboundAccept {
  readonly kind: "accept";
  readonly target: HboneTarget;
  /** Local pod IP + final port: the policy's destination and the app's address. */
  readonly upstream: SocketAddr;
  /** Where to connect: `upstream`, or loopback for a localhost application tunnel. */
  readonly connectTo: SocketAddr;
  /** Connect from the original client IP (when transparent is available) or from loopback. */
  readonly connectFrom: "original-source" | "loopback";
  readonly tunnel: TunnelRequest | undefined;
  readonly authorization: AuthorizationDecision;
  /** The request came through an east-west gateway (`x-forwarded-network` differs). */
  readonly fromGateway: boolean;
  /** The peer's workload by IP (not looked up for gateway traffic); telemetry only. */
  readonly sourceWorkload: Workload | undefined;
  /** The best guess of the service reached (telemetry). */
  readonly destinationService: ServiceDescription | undefined;
  readonly destinationWorkload: Workload;
}

export type InboundPlan = InboundRefused | InboundAccept;

function refuse(
  status: 400 | 401 | 503,
  code: InboundRefusalCode,
  message: string,
  authorization?: AuthorizationDecision,
): InboundRefused {
  return {
    kind: "refused",
    status,
    code,
    message,
    responseFlag: code === "denied" ? "DENY" : "CONNECT",
    authorization,
  };
}

/** Parses a CONNECT authority: `ip:port`, `[v6]:port`, or `hostname:port`. */
export function parseAuthority(authority: string): HboneTarget | undefined {
  const sa = parseSocketAddr(authority);
  if (sa !== undefined) return { kind: "address", ip: sa.ip, port: sa.port };
  const colon = authority.lastIndexOf(":");
  if (colon <= 0) return undefined;
  const host = authority.slice(0, colon);
  const port = parsePort(authority.slice(colon + 1));
  if (port === undefined || host.includes(":") || host.includes("[")) return undefined;
  if (checkHostname(host) !== undefined) return undefined;
  return { kind: "hostname", hostname: host, port };
}

/** Among services sharing a hostname, the local workload's namespace first, then canonical. */
function serviceForHostname(state: ProxyState, local: Workload, host: string): Service | undefined {
  let best: Service | undefined;
  const score = (s: Service) => (s.namespace === local.namespace ? 2 : 0) + (s.canonical ? 1 : 0);
  for (const s of state.servicesByHostname(host)) {
    if (
      best === undefined ||
      score(s) > score(best) ||
      (score(s) === score(best) && serviceKey(s) < serviceKey(best))
    ) {
      best = s;
    }
  }
  return best;
}

/**
 * Authority IP differs from the local IP: allowed when the local workload has an application
 * tunnel, or when the target (service or workload) names a waypoint that is this workload.
 */
function destinationAllowed(input: InboundInput, local: Workload, targetIp: string): boolean {
  const { state, config, localAddress } = input;
  if (targetIp === localAddress.ip) return true;
  if (local.applicationTunnel !== undefined) return true;
  const target = state.findAddress(config.network, targetIp, input.peerIdentity?.namespace);
  if (target === undefined) return false;
  const refs =
    target.kind === "service"
      ? [
          ...target.service.weightedWaypoints.map((w) => w.destination),
          ...(target.service.waypoint ? [target.service.waypoint] : []),
        ]
      : target.workload.waypoint
        ? [target.workload.waypoint]
        : [];
  for (const ref of refs) {
    const wp = state.findDestination(ref.destination);
    if (wp === undefined) continue;
    if (wp.kind === "service" && state.endpoints(serviceKey(wp.service)).has(local.uid))
      return true;
    if (wp.kind === "workload" && wp.workload.workloadIps.includes(localAddress.ip)) return true;
  }
  return false;
}

/**
 * Which service a connection reached, for telemetry: the one the client named in `forwarded`
 * if it is among the candidates, else the first whose target port (or this endpoint's mapped
 * port) equals the destination port.
 */
export function guessInboundService(
  state: ProxyState,
  services: readonly Service[],
  local: Workload,
  port: number,
  forwardedHost: string | undefined,
): ServiceDescription | undefined {
  if (forwardedHost !== undefined) {
    const named = services.find((s) => s.hostname === forwardedHost);
    if (named !== undefined) return describeService(named);
  }
  for (const s of services) {
    const ep = state.endpoints(serviceKey(s)).get(local.uid);
    for (const [sp, tp] of s.ports) {
      if (tp === port || ep?.ports.get(sp) === port) return describeService(s);
    }
  }
  return undefined;
}

function loopbackFor(ip: string): string {
  return ip.includes(":") ? "::1" : "127.0.0.1";
}

export function planInbound(input: InboundInput): InboundPlan {
  const { state, config } = input;
  if ((input.method ?? "CONNECT") !== "CONNECT") {
    return refuse(
      400,
      "method-not-connect",
      `method ${input.method} is not allowed; HBONE only accepts CONNECT`,
    );
  }
  const target = parseAuthority(input.authority);
  if (target === undefined) {
    return refuse(
      400,
      "bad-authority",
      `CONNECT authority "${input.authority}" is not "ip:port" or "host:port"`,
    );
  }
  const local = input.localWorkload;
  if (local === undefined) {
    return refuse(
      503,
      "unknown-local-workload",
      `the destination pod at ${formatAddr(input.localAddress)} is not known from xDS yet`,
    );
  }
  const localIp = canonicalIp(input.localAddress.ip) ?? input.localAddress.ip;
  const normalized: InboundInput = {
    ...input,
    localAddress: { ip: localIp, port: input.localAddress.port },
  };
  if (target.kind === "address" && !destinationAllowed(normalized, local, target.ip)) {
    return refuse(
      400,
      "ip-mismatch",
      `CONNECT target ${target.ip} is not this pod (${localIp}) and this pod is not its waypoint`,
    );
  }

  // The final port, and the services the connection may be for.
  let port: number;
  let services: Service[];
  if (target.kind === "hostname") {
    const svc = serviceForHostname(state, local, target.hostname);
    if (svc === undefined) {
      return refuse(
        503,
        "unknown-service-hostname",
        `no service named ${target.hostname} is known`,
      );
    }
    const epPort = state.endpoints(serviceKey(svc)).get(local.uid)?.ports.get(target.port);
    const svcTarget = svc.ports.get(target.port) ?? 0;
    if (epPort !== undefined) port = epPort;
    else if (svcTarget > 0) port = svcTarget;
    else {
      return refuse(
        503,
        "no-port-for-service",
        `service ${serviceKey(svc)} port ${target.port} has no target port for ${local.uid}`,
      );
    }
    services = [svc];
  } else {
    port = target.port;
    services = state.servicesOf(local);
  }
  if (config.illegalPorts.has(port)) {
    return refuse(503, "illegal-port", `destination port ${port} is one of ztunnel's own ports`);
  }

  // Application tunnel: may override the port; carries the original target in a PROXY header.
  let tunnel: TunnelRequest | undefined;
  let finalPort = port;
  const at = local.applicationTunnel;
  if (at !== undefined) {
    finalPort = at.port ?? port;
    let proxyDestination: SocketAddr;
    if (target.kind === "address") proxyDestination = { ip: target.ip, port: target.port };
    else {
      // PROXY headers carry IPs only: use a VIP of our network, IPv4 preferred.
      const vips = (services[0]?.vips ?? []).filter(
        (v) => v.network === config.network && v.prefixLength === (v.family === 4 ? 32 : 128),
      );
      const vip = vips.find((v) => v.family === 4) ?? vips[0];
      if (vip === undefined) {
        return refuse(
          503,
          "no-ip-for-service",
          `service ${target.hostname} has no VIP on network "${config.network}" to put in the PROXY header`,
        );
      }
      proxyDestination = { ip: vip.address, port: target.port };
    }
    tunnel = { protocol: at.protocol, proxyDestination };
  }
  const upstream: SocketAddr = { ip: localIp, port: finalPort };

  const peerIp = canonicalIp(input.peerAddress.ip) ?? input.peerAddress.ip;
  const authorization = authorize(state, local, {
    srcIp: peerIp,
    srcIdentity: input.peerIdentity,
    dstIp: upstream.ip,
    dstPort: upstream.port,
  });
  if (!authorization.allowed) {
    return refuse(
      401,
      "denied",
      `connection to ${formatAddr(upstream)} ${describeDecision(authorization)}`,
      authorization,
    );
  }

  const localhost = (config.localhostAppTunnel ?? true) && tunnel?.protocol === "PROXY";
  const fromGateway =
    input.forwardedNetwork !== undefined &&
    input.forwardedNetwork.toLowerCase() !== config.network.toLowerCase();
  return {
    kind: "accept",
    target,
    upstream,
    connectTo: localhost ? { ip: loopbackFor(upstream.ip), port: upstream.port } : upstream,
    connectFrom: localhost ? "loopback" : "original-source",
    tunnel,
    authorization,
    fromGateway,
    sourceWorkload: fromGateway ? undefined : state.workloadByAddress(config.network, peerIp),
    destinationService: guessInboundService(
      state,
      services,
      local,
      upstream.port,
      input.forwardedHost,
    ),
    destinationWorkload: local,
  };
}

export interface InboundPlaintextInput {
  readonly localWorkload: Workload | undefined;
  /** The original destination (SO_ORIGINAL_DST). */
  readonly originalDestination: SocketAddr;
  readonly peerAddress: SocketAddr;
  readonly state: ProxyState;
  readonly config: InboundConfig;
}

export interface InboundPlaintextRefused {
  readonly kind: "refused";
  readonly code: "illegal-port" | "unknown-local-workload" | "denied";
  readonly message: string;
  readonly responseFlag: ResponseFlag;
  readonly authorization: AuthorizationDecision | undefined;
}

export interface InboundPlaintextAccept {
  readonly kind: "accept";
  readonly upstream: SocketAddr;
  readonly authorization: AuthorizationDecision;
  readonly sourceWorkload: Workload | undefined;
  readonly destinationService: ServiceDescription | undefined;
  readonly destinationWorkload: Workload;
}

export type InboundPlaintextPlan = InboundPlaintextRefused | InboundPlaintextAccept;

/**
 * Plaintext inbound (15006): no peer identity, so positive principal/namespace/service-account
 * conditions never match and STRICT mTLS (a DENY `not_principals: presence`) refuses it.
 */
export function planInboundPlaintext(input: InboundPlaintextInput): InboundPlaintextPlan {
  const { state, config } = input;
  const dst: SocketAddr = {
    ip: canonicalIp(input.originalDestination.ip) ?? input.originalDestination.ip,
    port: input.originalDestination.port,
  };
  if (config.illegalPorts.has(dst.port)) {
    return {
      kind: "refused",
      code: "illegal-port",
      message: `destination port ${dst.port} is one of ztunnel's own ports`,
      responseFlag: "CONNECT",
      authorization: undefined,
    };
  }
  const local = input.localWorkload;
  if (local === undefined) {
    return {
      kind: "refused",
      code: "unknown-local-workload",
      message: `the destination pod at ${formatAddr(dst)} is not known from xDS yet`,
      responseFlag: "CONNECT",
      authorization: undefined,
    };
  }
  const peerIp = canonicalIp(input.peerAddress.ip) ?? input.peerAddress.ip;
  const authorization = authorize(state, local, {
    srcIp: peerIp,
    srcIdentity: undefined,
    dstIp: dst.ip,
    dstPort: dst.port,
  });
  if (!authorization.allowed) {
    return {
      kind: "refused",
      code: "denied",
      message: `plaintext connection to ${formatAddr(dst)} ${describeDecision(authorization)}`,
      responseFlag: "DENY",
      authorization,
    };
  }
  return {
    kind: "accept",
    upstream: dst,
    authorization,
    sourceWorkload: state.workloadByAddress(config.network, peerIp),
    destinationService: guessInboundService(
      state,
      state.servicesOf(local),
      local,
      dst.port,
      undefined,
    ),
    destinationWorkload: local,
  };
}
