/**
 * The sockets a per-pod proxy uses inside the pod's network namespace (INTEROP.md §2.1), as Node
 * objects: the listeners (15001 outbound, 15006 inbound plaintext, 15008 inbound HBONE, 15053 DNS
 * over UDP and TCP, 15080 SOCKS5) and outbound connections made from the pod.
 *
 * Every socket carries SO_MARK 1337 (0x539) so the pod's redirection rules let ztunnel's own
 * traffic through; listeners use SO_REUSEPORT (a restarting ztunnel binds beside the old one) and
 * try IP_TRANSPARENT. 15001/15006/15008 listen on 0.0.0.0 and, when the pod has IPv6, on [::]
 * (IPV6_V6ONLY, so IPv4 peers and SO_ORIGINAL_DST stay plain IPv4); DNS listens on 127.0.0.1
 * (and ::1) unless told otherwise; SOCKS5 only on 127.0.0.1.
 *
 * Sockets are made inside the namespace by one synchronous native call each and adopted by Node,
 * which owns them from then on. Connect pod-side sockets to IP addresses only: name lookups run on
 * libuv's thread pool, in ztunnel's own namespace.
 */
import {
  createSocket as createDgram,
  type RemoteInfo,
  type Socket as DgramSocket,
} from "node:dgram";
import { fstatSync } from "node:fs";
import { isIP, Server, Socket } from "node:net";
import { AmbientError, errnoCode, fail, ok, type Result } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log/index.ts";
import {
  closeFd,
  createNetnsSocket,
  type IpFamily,
  type NetnsSocketOptions,
  type TransparentMode,
} from "../../lib/net/index.ts";

/** ztunnel's packet mark for sockets in pod namespaces (0x539). */
export const INPOD_MARK = 1337;

export const INPOD_PORTS = {
  outbound: 15001,
  inboundPlaintext: 15006,
  inbound: 15008,
  dns: 15053,
  socks5: 15080,
} as const;

/** Where to bind: `localhost` means 127.0.0.1 and, when the pod has IPv6, ::1. */
export type ProxyBindAddress =
  | { readonly kind: "localhost"; readonly port: number }
  | { readonly kind: "ip"; readonly address: string; readonly port: number };

/**
 * Parses a bind address as ztunnel's `ISTIO_META_DNS_PROXY_ADDR` takes it: `localhost:15053`,
 * `127.0.0.1:15053`, `[::1]:15053`, `0.0.0.0:15053`.
 */
export function parseProxyBindAddress(text: string): Result<ProxyBindAddress> {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (m === null || host === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    return fail(`"${text}" is not HOST:PORT (e.g. localhost:15053, 0.0.0.0:15053, [::1]:15053)`);
  }
  if (host === "localhost") return ok({ kind: "localhost", port });
  if (isIP(host) === 0) {
    return fail(`"${text}": the host must be "localhost" or an IP address, got "${host}"`);
  }
  if (m[2] !== undefined && isIP(host) === 6) {
    return fail(`"${text}": write IPv6 addresses in brackets, e.g. [::1]:15053`);
  }
  return ok({ kind: "ip", address: host, port });
}

/** What each listener does with what it accepts; DNS and SOCKS5 listen only when given. */
export interface InpodHandlers {
  readonly outbound: (socket: Socket) => void;
  readonly inboundPlaintext: (socket: Socket) => void;
  /** HBONE: raw TCP; the proxy runs TLS and HTTP/2 on it. */
  readonly inbound: (socket: Socket) => void;
  readonly dns?: {
    readonly tcp: (socket: Socket) => void;
    readonly udp: (message: Buffer, remote: RemoteInfo, socket: DgramSocket) => void;
  };
  /** Given only when SOCKS5 is enabled (UNSTABLE_ENABLE_SOCKS5). */
  readonly socks5?: (socket: Socket) => void;
}

export interface InpodListenerOptions {
  /** SO_MARK. Default 1337. */
  readonly mark?: number;
  /** SO_REUSEPORT on listeners (ztunnel's INPOD_PORT_REUSE). Default true. */
  readonly reusePort?: boolean;
  /** IP_TRANSPARENT on 15001/15006/15008 (ENABLE_ORIG_SRC: unset "try", true "require", false "off"). */
  readonly transparent?: TransparentMode;
  /** The DNS proxy's address. Default localhost:15053. */
  readonly dnsAddress?: ProxyBindAddress;
  /** Other ports (tests). */
  readonly ports?: Partial<Record<keyof typeof INPOD_PORTS, number>>;
  /** Listener errors after start-up (e.g. EMFILE on accept) are reported here. */
  readonly log?: Logger;
}

export interface InpodListeners {
  readonly outbound: readonly Server[];
  readonly inboundPlaintext: readonly Server[];
  readonly inbound: readonly Server[];
  readonly dnsTcp: readonly Server[];
  readonly dnsUdp: readonly DgramSocket[];
  readonly socks5: readonly Server[];
  /** Whether the pod has IPv6 (the [::] / ::1 listeners exist). */
  readonly ipv6: boolean;
  /** Whether IP_TRANSPARENT is set on the capture listeners. */
  readonly transparent: boolean;
  /** Stops listening (accepted connections are the caller's to end). Idempotent. */
  close(): Promise<void>;
}

type Role = "outbound" | "inboundPlaintext" | "inbound" | "dnsTcp" | "dnsUdp" | "socks5";

interface Spec {
  readonly role: Role;
  readonly protocol: "tcp" | "udp";
  readonly family: IpFamily;
  readonly address: string;
  readonly port: number;
  readonly transparent: TransparentMode;
}

/** Whether the namespace has a usable ::1 (ztunnel's ipv6_enabled_localhost). */
export function podHasIpv6(netnsFd: number): boolean {
  try {
    const { fd } = createNetnsSocket({
      netns: netnsFd,
      protocol: "tcp",
      family: 6,
      bind: { address: "::1", port: 0 },
    });
    closeFd(fd);
    return true;
  } catch (err) {
    const code = errnoCode(err);
    if (code === "EADDRNOTAVAIL" || code === "EAFNOSUPPORT") return false;
    throw err;
  }
}

function specs(handlers: InpodHandlers, options: InpodListenerOptions, ipv6: boolean): Spec[] {
  const port = (k: keyof typeof INPOD_PORTS): number => options.ports?.[k] ?? INPOD_PORTS[k];
  const transparent = options.transparent ?? "try";
  const out: Spec[] = [];
  const wildcard = (role: Role, p: number): void => {
    out.push({ role, protocol: "tcp", family: 4, address: "0.0.0.0", port: p, transparent });
    if (ipv6) out.push({ role, protocol: "tcp", family: 6, address: "::", port: p, transparent });
  };
  wildcard("outbound", port("outbound"));
  wildcard("inboundPlaintext", port("inboundPlaintext"));
  wildcard("inbound", port("inbound"));
  if (handlers.dns !== undefined) {
    const dns = options.dnsAddress ?? { kind: "localhost", port: port("dns") };
    const addrs: { family: IpFamily; address: string }[] =
      dns.kind === "localhost"
        ? [
            { family: 4, address: "127.0.0.1" },
            ...(ipv6 ? [{ family: 6 as const, address: "::1" }] : []),
          ]
        : [{ family: isIP(dns.address) === 6 ? 6 : 4, address: dns.address }];
    for (const a of addrs) {
      for (const protocol of ["udp", "tcp"] as const) {
        const role = protocol === "udp" ? "dnsUdp" : "dnsTcp";
        out.push({ role, protocol, ...a, port: dns.port, transparent: "off" });
      }
    }
  }
  if (handlers.socks5 !== undefined) {
    out.push({
      role: "socks5",
      protocol: "tcp",
      family: 4,
      address: "127.0.0.1",
      port: port("socks5"),
      transparent: "off",
    });
  }
  return out;
}

/**
 * Creates the pod's listeners in the namespace of `netnsFd` (which stays the caller's) and starts
 * them, each handing what it accepts to its handler. All or nothing: if one cannot be made
 * (EADDRINUSE, EPERM, ...), those already made are closed and the error thrown (AmbientError with
 * the errno name as code, saying which address failed).
 */
export async function createInpodListeners(
  netnsFd: number,
  handlers: InpodHandlers,
  options: InpodListenerOptions = {},
): Promise<InpodListeners> {
  const ipv6 = podHasIpv6(netnsFd);
  const mark = options.mark ?? INPOD_MARK;
  const reusePort = options.reusePort ?? true;
  // Node listens again on an adopted fd with its own backlog (511), so use that from the start.
  const backlog = 511;
  const list = specs(handlers, options, ipv6);

  // First every socket (synchronous; nothing to undo in Node yet), then adopt them all.
  const made: { spec: Spec; fd: number; transparent: boolean }[] = [];
  try {
    for (const spec of list) {
      const opts: NetnsSocketOptions = {
        netns: netnsFd,
        protocol: spec.protocol,
        family: spec.family,
        mark,
        reusePort,
        transparent: spec.transparent,
        ...(spec.family === 6 ? { v6Only: true } : {}),
        bind: { address: spec.address, port: spec.port },
        ...(spec.protocol === "tcp" ? { listen: { backlog } } : {}),
      };
      const s = createNetnsSocket(opts);
      made.push({ spec, fd: s.fd, transparent: s.transparent });
    }
  } catch (err) {
    for (const m of made) closeFd(m.fd);
    throw err;
  }

  const servers: Record<Exclude<Role, "dnsUdp">, Server[]> = {
    outbound: [],
    inboundPlaintext: [],
    inbound: [],
    dnsTcp: [],
    socks5: [],
  };
  const udp: DgramSocket[] = [];
  const adopted: (Server | DgramSocket)[] = [];
  const log = options.log;
  let next = 0;
  try {
    for (; next < made.length; next++) {
      const { spec, fd } = made[next]!;
      const where = `${spec.family === 6 ? `[${spec.address}]` : spec.address}:${spec.port}`;
      if (spec.role === "dnsUdp") {
        const onMessage = handlers.dns?.udp;
        const sock = createDgram({ type: spec.family === 6 ? "udp6" : "udp4" });
        await adoptFd(sock, fd, where, (done) => sock.bind({ fd }, done));
        adopted.push(sock);
        sock.on("error", (err) => {
          log?.warn("in-pod DNS socket error", { addr: where, error: err.message });
        });
        if (onMessage !== undefined)
          sock.on("message", (msg, rinfo) => onMessage(msg, rinfo, sock));
        udp.push(sock);
      } else {
        const server = new Server({ allowHalfOpen: true }, handlerFor(spec.role, handlers));
        await adoptFd(server, fd, where, (done) => server.listen({ fd }, done));
        adopted.push(server);
        server.on("error", (err) => {
          log?.warn("in-pod listener error", { addr: where, error: err.message });
        });
        servers[spec.role].push(server);
      }
    }
  } catch (err) {
    // adoptFd has dealt with the one that failed; the ones after it are still plain fds.
    for (const m of made.slice(next + 1)) closeFd(m.fd);
    await closeAll(adopted);
    throw err;
  }

  let closing: Promise<void> | undefined;
  const capture = made.filter((m) => m.spec.transparent !== "off");
  return {
    ...servers,
    dnsUdp: udp,
    ipv6,
    transparent: capture.length > 0 && capture.every((m) => m.transparent),
    close: () => (closing ??= closeAll(adopted)),
  };
}

function handlerFor(role: Exclude<Role, "dnsUdp">, handlers: InpodHandlers): (s: Socket) => void {
  switch (role) {
    case "outbound":
      return handlers.outbound;
    case "inboundPlaintext":
      return handlers.inboundPlaintext;
    case "inbound":
      return handlers.inbound;
    case "dnsTcp":
      return handlers.dns?.tcp ?? ((s) => s.destroy());
    case "socks5":
      return handlers.socks5 ?? ((s) => s.destroy());
  }
}

/**
 * Hands `fd` to a Node server or UDP socket. On failure the fd is closed here if Node did not
 * take it (depending on where Node's listen failed, it has or has not closed it already: the
 * socket's inode tells, so a number reused meanwhile is never closed by mistake).
 */
function adoptFd(
  target: Server | DgramSocket,
  fd: number,
  where: string,
  start: (done: () => void) => void,
): Promise<void> {
  const ino = fstatSync(fd, { bigint: true }).ino;
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      let stillOurs = false;
      try {
        stillOurs = fstatSync(fd, { bigint: true }).ino === ino;
      } catch {
        // EBADF: Node closed it.
      }
      if (stillOurs) closeFd(fd);
      reject(
        new AmbientError(
          errnoCode(err) ?? "ELISTEN",
          `starting the listener on ${where} in the pod failed: ${err.message}`,
          { cause: err },
        ),
      );
    };
    target.once("error", onError);
    start(() => {
      target.off("error", onError);
      resolve();
    });
  });
}

async function closeAll(items: readonly (Server | DgramSocket)[]): Promise<void> {
  await Promise.all(
    items.map(
      (item) =>
        new Promise<void>((resolve) => {
          if (item instanceof Server) {
            if (!item.listening) {
              resolve();
              return;
            }
            item.close(() => resolve());
          } else {
            try {
              item.close(() => resolve());
            } catch {
              resolve(); // already closed
            }
          }
        }),
    ),
  );
}

export interface ConnectFromPodOptions {
  /** SO_MARK. Default 1337. */
  readonly mark?: number;
  /** Bind to this source first (e.g. the original client address, with `transparent`). */
  readonly localAddress?: string;
  readonly localPort?: number;
  /** IP_TRANSPARENT (and IP_FREEBIND) for a source address the pod does not own. Default "off". */
  readonly transparent?: TransparentMode;
  /** Default true: a FIN from the peer ends only the read side (HBONE maps it to END_STREAM). */
  readonly allowHalfOpen?: boolean;
  /** TCP_NODELAY. Default true. */
  readonly noDelay?: boolean;
}

/**
 * A TCP connection from inside the pod's namespace to `address:port` (an IP address: see the
 * module comment), marked so the pod's rules do not capture it again. Returns the socket at once,
 * connecting; errors arrive as its 'error' event. Throws (AmbientError) if the socket cannot be made.
 */
export function connectFromPod(
  netnsFd: number,
  address: string,
  port: number,
  options: ConnectFromPodOptions = {},
): Socket {
  const family = isIP(address);
  if (family === 0) {
    throw new AmbientError(
      "ERR_INVALID_ARG",
      `connectFromPod needs an IP address, got "${address}" (names would resolve in ztunnel's namespace, not the pod's)`,
    );
  }
  const transparent = options.transparent ?? "off";
  const { fd } = createNetnsSocket({
    netns: netnsFd,
    protocol: "tcp",
    family: family as IpFamily,
    mark: options.mark ?? INPOD_MARK,
    ...(transparent === "off" ? {} : { transparent, freebind: true }),
    ...(options.localAddress === undefined
      ? {}
      : { bind: { address: options.localAddress, port: options.localPort ?? 0 } }),
  });
  let socket: Socket;
  try {
    socket = new Socket({ fd, allowHalfOpen: options.allowHalfOpen ?? true });
  } catch (err) {
    closeFd(fd);
    throw err;
  }
  socket.setNoDelay(options.noDelay ?? true);
  return socket.connect(port, address);
}
