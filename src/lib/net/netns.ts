/**
 * Sockets inside network namespaces, and telling namespaces apart.
 *
 * ztunnel runs in the node's namespace but serves each enrolled pod from inside the pod's own
 * namespace: its listeners (15001, 15006, 15008, 15053) and its outbound connections are sockets
 * created there. A socket belongs for life to the namespace it was created in, so one synchronous
 * native call enters the pod namespace, creates and sets up the socket, and returns (setns is
 * per thread; the JS thread is never left elsewhere). Node then adopts the fd:
 *
 *   net.createServer(handler).listen({ fd })          listeners (Node calls listen again: harmless)
 *   new net.Socket({ fd }).connect(port, ip)          outbound; connect to IP addresses only, since
 *                                                     dns.lookup runs on the thread pool, in the
 *                                                     node's namespace
 *   dgram.createSocket("udp4").bind({ fd })           UDP (the DNS proxy)
 *
 * Once adopted, Node owns the fd and closes it; until then the caller does (closeFd).
 */
import { fstatSync, openSync, statSync } from "node:fs";
import { isIP } from "node:net";
import {
  checkFd,
  checkInt,
  invalidArg,
  native,
  nativeError,
  type IpFamily,
  type RawSocketOptions,
} from "./native.ts";

/** The calling thread's network namespace. (/proc/self would be the main thread's.) */
export const CURRENT_NETNS_PATH = "/proc/thread-self/ns/net";

/** IP_TRANSPARENT: not set; set if permitted; set or fail with EPERM. */
export type TransparentMode = "off" | "try" | "require";

export interface NetnsSocketOptions {
  /** fd of the namespace to create the socket in (openNetns); omitted: the caller's own. */
  netns?: number | undefined;
  protocol: "tcp" | "udp";
  family: IpFamily;
  /** SO_MARK, e.g. 1337 (0x539) so the pod's redirection rules let ztunnel's own traffic pass. */
  mark?: number | undefined;
  reuseAddr?: boolean | undefined;
  reusePort?: boolean | undefined;
  /** IP_TRANSPARENT / IPV6_TRANSPARENT, for TPROXY listeners and spoofed-source connects. */
  transparent?: TransparentMode | undefined;
  /** IP_FREEBIND: bind to an address the namespace does not (yet) have. */
  freebind?: boolean | undefined;
  /** IPV6_V6ONLY, family 6 only; omitted: the kernel default (dual-stack here). */
  v6Only?: boolean | undefined;
  /** Bind to this address and port (port 0: the kernel picks one). */
  bind?: { address: string; port: number } | undefined;
  /** listen(2) with this backlog (TCP only, needs `bind`). */
  listen?: { backlog: number } | undefined;
}

export interface NetnsSocket {
  /** Non-blocking, close-on-exec; owned by the caller until Node adopts it. */
  fd: number;
  /** Whether IP_TRANSPARENT is set (false with "try" when the capability was missing). */
  transparent: boolean;
}

/** Checks options and converts them to the addon's flat form; throws ERR_INVALID_ARG. */
export function netnsSocketSpec(options: NetnsSocketOptions): RawSocketOptions {
  const { protocol, family } = options;
  if (protocol !== "tcp" && protocol !== "udp") {
    throw invalidArg(`protocol must be "tcp" or "udp", got ${String(protocol)}`);
  }
  if (family !== 4 && family !== 6) {
    throw invalidArg(`family must be 4 or 6, got ${String(family)}`);
  }
  const spec: RawSocketOptions = { protocol, family };
  if (options.netns !== undefined) {
    checkFd(options.netns, "netns");
    spec.netnsFd = options.netns;
  }
  if (options.mark !== undefined) {
    checkInt(options.mark, "mark", 0, 0xffffffff);
    spec.mark = options.mark;
  }
  if (options.reuseAddr === true) spec.reuseAddr = true;
  if (options.reusePort === true) spec.reusePort = true;
  if (options.freebind === true) spec.freebind = true;
  if (options.transparent !== undefined) {
    const t = options.transparent;
    if (t !== "off" && t !== "try" && t !== "require") {
      throw invalidArg(`transparent must be "off", "try" or "require", got ${String(t)}`);
    }
    spec.transparent = t;
  }
  if (options.v6Only !== undefined) {
    if (family !== 6) throw invalidArg("v6Only applies to family 6 sockets only");
    spec.v6Only = options.v6Only;
  }
  if (options.bind !== undefined) {
    const { address, port } = options.bind;
    if (isIP(address) !== family) {
      throw invalidArg(`bind address ${JSON.stringify(address)} is not an IPv${family} address`);
    }
    checkInt(port, "bind port", 0, 65535);
    spec.address = address;
    spec.port = port;
  }
  if (options.listen !== undefined) {
    if (protocol !== "tcp") throw invalidArg("listen applies to tcp sockets only");
    if (options.bind === undefined) throw invalidArg("listen needs bind (an address and port)");
    checkInt(options.listen.backlog, "listen backlog", 0, 0x7fffffff);
    spec.backlog = options.listen.backlog;
  }
  return spec;
}

/**
 * Creates a socket, in the namespace `options.netns` when given, with the options applied, bound
 * and listening as asked — one synchronous call that always returns the thread to its own
 * namespace. Errors: EPERM (setns or SO_MARK/IP_TRANSPARENT without CAP_SYS_ADMIN/CAP_NET_ADMIN),
 * EINVAL (netns is not a network namespace fd), EADDRINUSE, EADDRNOTAVAIL (no such local address:
 * see `freebind`).
 */
export function createNetnsSocket(options: NetnsSocketOptions): NetnsSocket {
  const spec = netnsSocketSpec(options);
  try {
    return native().createSocket(spec);
  } catch (err) {
    const where =
      spec.netnsFd === undefined ? "" : ` in the network namespace of fd ${spec.netnsFd}`;
    const what = spec.address === undefined ? "" : ` bound to ${spec.address}:${spec.port ?? 0}`;
    throw nativeError(err, `creating a ${spec.protocol}/IPv${spec.family} socket${what}${where}`);
  }
}

/**
 * Opens a network namespace for createNetnsSocket or for passing to ztunnel: /run/netns/NAME,
 * /proc/PID/ns/net, or CURRENT_NETNS_PATH. The fd is close-on-exec; close it with closeFd.
 */
export function openNetns(path: string): number {
  try {
    return openSync(path, "r");
  } catch (err) {
    throw nativeError(err, `opening network namespace ${path}`);
  }
}

/** The identity of a namespace: nsfs device and inode (what `ip netns identify` compares). */
export interface NetnsId {
  dev: bigint;
  ino: bigint;
}

/** The namespace an fd (from openNetns) or a path refers to. */
export function netnsId(fdOrPath: number | string): NetnsId {
  try {
    const st =
      typeof fdOrPath === "number"
        ? fstatSync(fdOrPath, { bigint: true })
        : statSync(fdOrPath, { bigint: true });
    return { dev: st.dev, ino: st.ino };
  } catch (err) {
    throw nativeError(err, `reading the namespace identity of ${String(fdOrPath)}`);
  }
}

/** The calling thread's current network namespace. */
export function currentNetnsId(): NetnsId {
  return netnsId(CURRENT_NETNS_PATH);
}

/** True when both refer to the same network namespace. */
export function sameNetns(a: number | string | NetnsId, b: number | string | NetnsId): boolean {
  const x = typeof a === "object" ? a : netnsId(a);
  const y = typeof b === "object" ? b : netnsId(b);
  return x.dev === y.dev && x.ino === y.ino;
}
