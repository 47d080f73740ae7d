/**
 * Inbound HBONE (port 15008), INTEROP §2.3: the HboneServer's hook for each CONNECT stream. It
 * plans (`planInbound`: method, authority, destination check, port, policy with the peer's mTLS
 * identity), registers the connection for policy re-evaluation, connects to the app — from the
 * original client address when the listeners are transparent, from loopback for application
 * tunnels — and only then lets the server answer 200 (with the destination's `baggage`), after
 * writing a PROXY v2 header for PROXY application tunnels (§1.8).
 *
 * Status codes (§1.5): 400 bad request or target, 503 unknown workload / service / port or the app
 * unreachable, 401 policy denial. Refusals before the request is understood are logged as
 * `connection failed`; denials and connect failures count as connections (flags DENY, CONNECT).
 */
import type { OutgoingHttpHeaders } from "node:http2";
import type { InboundDecision, InboundRequest } from "../../lib/hbone/index.ts";
import type { CopyResult } from "../../lib/net/copy.ts";
import { canonicalIp, formatSocketAddr } from "../../lib/net/index.ts";
import type { Workload } from "../state/index.ts";
import { ConnectionResult, logConnectionFailed, type DerivedWorkload } from "../telemetry/index.ts";
import { derivedFromBaggage, workloadBaggage } from "./baggage.ts";
import { message, type ProxyContext } from "./context.ts";
import { guessInboundService, planInbound, type SocketAddr } from "./plan/index.ts";
import { encodeProxyHeaderV2 } from "./proxy-protocol.ts";
import { tcpConnect } from "./tcp-connect.ts";

const NO_BYTES = { clientToServer: 0, serverToClient: 0 } as const;

export class Inbound {
  readonly #ctx: ProxyContext;

  constructor(ctx: ProxyContext) {
    this.#ctx = ctx;
  }

  readonly hook = (req: InboundRequest): InboundDecision | Promise<InboundDecision> => {
    const local = this.#ctx.local.get();
    if (local !== undefined) return this.#handle(req, local);
    return this.#ctx.local
      .wait(this.#ctx.inputs.config.sourceWaitMs, req.signal)
      .then((w) => this.#handle(req, w));
  };

  #handle(
    req: InboundRequest,
    local: Workload | undefined,
  ): InboundDecision | Promise<InboundDecision> {
    const ctx = this.#ctx;
    const { inputs } = ctx;
    const cfg = inputs.config;
    const peer: SocketAddr = {
      ip: canonicalIp(req.peerAddress.ip) ?? req.peerAddress.ip,
      port: req.peerAddress.port,
    };
    const localAddr: SocketAddr = {
      ip: canonicalIp(req.localAddress.ip) ?? req.localAddress.ip,
      port: req.localAddress.port,
    };
    const plan = planInbound({
      localWorkload: local,
      localAddress: localAddr,
      authority: req.rawAuthority,
      peerIdentity: req.peerIdentity,
      peerAddress: peer,
      forwardedHost: req.forwarded.host,
      forwardedNetwork: req.forwardedNetwork,
      state: inputs.state,
      config: cfg,
    });
    const src = formatSocketAddr(peer.ip, peer.port);
    // For consistency with outbound, dst.addr is where the HBONE connection arrived (podIP:15008).
    const dst = formatSocketAddr(localAddr.ip, localAddr.port);
    if (plan.kind === "refused" && plan.code !== "denied") {
      logConnectionFailed(inputs.accessLog, src, dst, "destination", plan.message);
      return { kind: "refuse", status: plan.status, reason: plan.message };
    }
    // From here on local is known (the planner refuses an unknown one above).
    const destination = local as Workload;
    const fromGateway =
      req.forwardedNetwork !== undefined &&
      req.forwardedNetwork.toLowerCase() !== cfg.network.toLowerCase();
    const derived: DerivedWorkload = cfg.responseBaggage
      ? { ...derivedFromBaggage(req.baggage), identity: req.peerIdentity }
      : { identity: req.peerIdentity };
    const result = new ConnectionResult(ctx.metrics, inputs.accessLog, {
      src,
      dst,
      hboneTarget: req.rawAuthority,
      open: {
        reporter: "destination",
        source:
          plan.kind === "accept"
            ? plan.sourceWorkload
            : fromGateway
              ? undefined
              : inputs.state.workloadByAddress(cfg.network, peer.ip),
        derivedSource: derived,
        destination,
        destinationService:
          plan.kind === "accept"
            ? plan.destinationService
            : req.authority.kind === "ip"
              ? guessInboundService(
                  inputs.state,
                  inputs.state.servicesOf(destination),
                  destination,
                  req.authority.port,
                  req.forwarded.host,
                )
              : undefined,
        securityPolicy: "mutual_tls",
      },
    });
    if (plan.kind === "refused") {
      result.record(NO_BYTES, `connection closed due to policy rejection: ${plan.message}`, "DENY");
      return { kind: "refuse", status: 401, reason: plan.message };
    }

    const tracked = ctx.tracker.trackInbound({
      protocol: "HBONE",
      src: peer,
      srcIdentity: req.peerIdentity,
      dst: plan.upstream,
      originalDst: req.rawAuthority,
    });
    const from =
      plan.connectFrom === "loopback"
        ? { ip: plan.connectTo.ip, transparent: false }
        : ctx.transparent()
          ? { ip: peer.ip, transparent: true }
          : undefined;
    const connectTo = plan.connectTo;
    const tunnel = plan.tunnel;
    return tcpConnect(ctx.sockets, connectTo, {
      from,
      timeoutMs: cfg.connectTimeoutMs,
      signal: AbortSignal.any([req.signal, ctx.stopped]),
    }).then(
      (upstream): InboundDecision => {
        if (req.signal.aborted || tracked.revoked) {
          // The client reset the stream, or a policy change revoked it, while we connected.
          upstream.destroy();
          tracked.release();
          const why = tracked.revoked
            ? "connection closed due to policy change"
            : "the client closed the stream before the upstream connected";
          result.record(NO_BYTES, why);
          return { kind: "refuse", status: tracked.revoked ? 401 : 503, reason: why };
        }
        if (tunnel?.protocol === "PROXY") {
          upstream.write(encodeProxyHeaderV2(peer, tunnel.proxyDestination, req.peerIdentity));
        }
        let lateReason: Error | undefined;
        tracked.setCloser((reason) => {
          lateReason = reason;
          upstream.resetAndDestroy();
        });
        const responseHeaders: OutgoingHttpHeaders | undefined = cfg.responseBaggage
          ? { baggage: workloadBaggage(destination, destination.clusterId) }
          : undefined;
        const onComplete = (r: CopyResult): void => {
          tracked.release();
          result.record(
            { clientToServer: r.sent, serverToClient: r.received },
            lateReason?.message ?? r.error?.message,
          );
        };
        return responseHeaders === undefined
          ? { kind: "accept", upstream, onComplete }
          : { kind: "accept", upstream, responseHeaders, onComplete };
      },
      (err: unknown): InboundDecision => {
        tracked.release();
        const aborted = req.signal.aborted || ctx.stopped.aborted;
        result.record(NO_BYTES, `connection failed: ${message(err)}`, aborted ? "-" : "CONNECT");
        return { kind: "refuse", status: 503, reason: message(err) };
      },
    );
  }
}
