/**
 * Every socket a per-pod proxy opens towards the network, created inside the pod's network
 * namespace with ztunnel's mark (1337) so the pod's redirection rules let it through
 * (INTEROP §2.1, §5.4): HBONE connections, plain TCP to endpoints and passthrough destinations,
 * connections to the pod's own app (from the original client address when IP_TRANSPARENT works),
 * and the DNS proxy's upstream sockets.
 *
 * After `close()` nothing more is created, so the namespace fd can be released safely.
 */
import type { Socket } from "node:net";
import { AmbientError } from "../../lib/errors.ts";
import type { Dialer } from "../../lib/hbone/index.ts";
import { ipFamilyOf, type TransparentMode } from "../../lib/net/index.ts";
import { netnsSocketFactory, type UpstreamSocketFactory } from "../dns/index.ts";
import { connectFromPod } from "../inpod/index.ts";

/** TCP keepalive on ztunnel's connections (ztunnel: idle 180 s). */
const KEEPALIVE_MS = 180_000;

export interface ConnectFrom {
  /** Source IP to bind (the original client, or loopback for application tunnels). */
  readonly ip: string;
  /** Needs IP_TRANSPARENT (the pod does not own the address). */
  readonly transparent: boolean;
}

export class PodSockets {
  readonly netnsFd: number;
  readonly mark: number;
  readonly dnsSocketFactory: UpstreamSocketFactory;
  #closed = false;

  constructor(netnsFd: number, mark: number) {
    this.netnsFd = netnsFd;
    this.mark = mark;
    const inner = netnsSocketFactory({ netns: netnsFd, mark });
    this.dnsSocketFactory = {
      udp: (family) => {
        this.#check();
        return inner.udp(family);
      },
      tcp: (family) => {
        this.#check();
        return inner.tcp(family);
      },
    };
  }

  #check(): void {
    if (this.#closed) {
      throw new AmbientError("EPROXYSTOPPED", "the pod's proxy is stopped; no new connections");
    }
  }

  /**
   * A TCP connection from the pod to `ip:port` (connecting; errors arrive as 'error'). Throws if
   * the socket cannot be made (proxy stopped, EPERM for a transparent bind, ...).
   */
  connect(ip: string, port: number, from?: ConnectFrom, allowHalfOpen = true): Socket {
    this.#check();
    const spoof = from !== undefined && ipFamilyOf(from.ip) === ipFamilyOf(ip);
    const transparent: TransparentMode = spoof && from.transparent ? "require" : "off";
    const s = connectFromPod(this.netnsFd, ip, port, {
      mark: this.mark,
      allowHalfOpen,
      ...(spoof ? { localAddress: from.ip, transparent } : {}),
    });
    s.setKeepAlive(true, KEEPALIVE_MS);
    return s;
  }

  /**
   * HBONE dialer: the pool's connections start in the pod, like the app's own would. Not
   * half-open: TLS and HTTP/2 need the socket to close when the peer's FIN arrives, or a peer
   * that goes away leaves the session (and every tunnel on it) hanging.
   */
  readonly dial: Dialer = (t) => this.connect(t.ip, t.port, undefined, false);

  close(): void {
    this.#closed = true;
  }
}
