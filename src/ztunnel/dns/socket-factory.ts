/**
 * How the DNS proxy makes its upstream sockets. ztunnel creates them through the pod's socket
 * factory: in in-pod mode inside the pod's network namespace with SO_MARK 1337 (0x539), so the
 * pod's redirect rules (which skip marked packets, and put marked UDP/53 in conntrack zone 1)
 * let them out instead of sending them back to the proxy on 15053 (INTEROP §5.4).
 */
import { createSocket } from "node:dgram";
import type { Socket as UdpSocket } from "node:dgram";
import { Socket } from "node:net";
import { closeFd, createNetnsSocket } from "../../lib/net/index.ts";
import type { IpFamily } from "../../lib/net/index.ts";

export interface UpstreamSocketFactory {
  /** A UDP socket of `family`, bound or not (send binds it to an ephemeral port). */
  udp(family: IpFamily): UdpSocket;
  /** An unconnected TCP socket of `family`; the caller connects it to an IP address. */
  tcp(family: IpFamily): Socket;
}

/** Plain sockets in ztunnel's own namespace (dedicated mode, tests). */
export const hostSocketFactory: UpstreamSocketFactory = {
  udp: (family) => createSocket(family === 4 ? "udp4" : "udp6"),
  tcp: () => new Socket(),
};

/** ztunnel's packet mark (`PACKET_MARK`), matched by the pod's redirect rules. */
export const ZTUNNEL_MARK = 1337;

export interface NetnsSocketFactoryOptions {
  /** fd of the pod's network namespace (kept open by the caller for the pod's lifetime). */
  readonly netns: number;
  /** SO_MARK on every socket; default 1337. */
  readonly mark?: number | undefined;
}

/**
 * Sockets created inside a pod's network namespace with ztunnel's mark (in-pod mode). Needs the
 * native addon and CAP_SYS_ADMIN + CAP_NET_ADMIN; creation errors are thrown (AmbientError with
 * the errno as code) and the forwarder turns them into SERVFAIL.
 */
export function netnsSocketFactory(options: NetnsSocketFactoryOptions): UpstreamSocketFactory {
  const mark = options.mark ?? ZTUNNEL_MARK;
  return {
    udp(family) {
      const s = createNetnsSocket({
        netns: options.netns,
        protocol: "udp",
        family,
        mark,
        bind: { address: family === 4 ? "0.0.0.0" : "::", port: 0 },
      });
      try {
        const sock = createSocket(family === 4 ? "udp4" : "udp6");
        sock.bind({ fd: s.fd });
        return sock;
      } catch (err) {
        closeFd(s.fd);
        throw err;
      }
    },
    tcp(family) {
      const s = createNetnsSocket({ netns: options.netns, protocol: "tcp", family, mark });
      try {
        return new Socket({ fd: s.fd });
      } catch (err) {
        closeFd(s.fd);
        throw err;
      }
    },
  };
}
