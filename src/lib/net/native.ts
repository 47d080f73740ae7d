/**
 * The native addon (native/, plain N-API C) for the Linux calls Node lacks, and the small socket
 * helpers built directly on it. The addon is loaded on first use, so importing this module never
 * fails on a machine without it; the first call then throws ENATIVE saying how to build it.
 *
 * Errors: a failed syscall becomes an AmbientError whose `code` is the errno name (ECONNREFUSED,
 * EPERM, ...) and whose `cause` is the addon's error (with `errno` and `syscall`). A bad argument is
 * ERR_INVALID_ARG. "Would block" is never an error; callers get it as a value.
 */
import { closeSync } from "node:fs";
import { createRequire } from "node:module";
import type { Server, Socket } from "node:net";
import { join } from "node:path";
import { AmbientError, errnoCode } from "../errors.ts";

export type IpFamily = 4 | 6;

/** An IP socket address. */
export interface SocketAddress {
  address: string;
  port: number;
  family: IpFamily;
}

/** SO_PEERCRED: the process at the other end of a unix socket, as of connect()/listen(). */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** Opaque handle of a native fd poller. */
export type PollerHandle = { readonly __brand: "AmbientPoller" };

/** What the addon's createSocket takes; see native/src/netns_socket.c. */
export interface RawSocketOptions {
  netnsFd?: number;
  protocol: "tcp" | "udp";
  family: IpFamily;
  mark?: number;
  reuseAddr?: boolean;
  reusePort?: boolean;
  freebind?: boolean;
  v6Only?: boolean;
  transparent?: "off" | "try" | "require";
  address?: string;
  port?: number;
  backlog?: number;
}

export type RawMessage =
  | { eof: true }
  | {
      eof: false;
      data: Buffer;
      size: number;
      fds: number[];
      truncated: boolean;
      fdsTruncated: boolean;
    };

/** The addon's exports, exactly as native/src/addon.c defines them. */
export interface NativeBinding {
  getOriginalDst(fd: number): SocketAddress;
  setMark(fd: number, mark: number): void;
  getMark(fd: number): number;
  peerCredentials(fd: number): PeerCredentials;
  createSocket(options: RawSocketOptions): { fd: number; transparent: boolean };
  seqpacketListen(path: string, backlog: number): number;
  seqpacketAccept(fd: number): number | null;
  seqpacketConnect(path: string): number;
  seqpacketSend(fd: number, data: Uint8Array, fds: readonly number[]): boolean;
  seqpacketReceive(fd: number, maxBytes: number, maxFds: number): RawMessage | null;
  pollerCreate(fd: number, callback: (errno: number, events: number) => void): PollerHandle;
  pollerUpdate(handle: PollerHandle, events: number): void;
  pollerClose(handle: PollerHandle): void;
}

/** Where the build step puts the addon (scripts/build-native.ts). */
export const NATIVE_ADDON_PATH = join(
  import.meta.dirname,
  "..",
  "..",
  "..",
  "native",
  "build",
  "Release",
  "ambient_native.node",
);

const EXPORTS: readonly (keyof NativeBinding)[] = [
  "getOriginalDst",
  "setMark",
  "getMark",
  "peerCredentials",
  "createSocket",
  "seqpacketListen",
  "seqpacketAccept",
  "seqpacketConnect",
  "seqpacketSend",
  "seqpacketReceive",
  "pollerCreate",
  "pollerUpdate",
  "pollerClose",
];

/**
 * Loads the addon from `path`. Throws AmbientError ENATIVE (with the loader's error as cause)
 * when the file is missing, cannot be loaded, or lacks a function this module expects.
 */
export function loadNativeFrom(path: string): NativeBinding {
  const help =
    "Build it with `npm ci` or `node scripts/build-native.ts` (needs Linux, gcc, make and python3).";
  if (process.platform !== "linux") {
    throw new AmbientError(
      "ENATIVE",
      `the ambient native addon is Linux-only (it wraps setns, SO_ORIGINAL_DST, SO_MARK); this is ${process.platform}`,
    );
  }
  let mod: unknown;
  try {
    mod = createRequire(import.meta.url)(path);
  } catch (err) {
    const why = errnoCode(err) === "MODULE_NOT_FOUND" ? "it is not built" : String(err);
    throw new AmbientError("ENATIVE", `cannot load the native addon ${path}: ${why}. ${help}`, {
      cause: err,
    });
  }
  const missing = EXPORTS.filter(
    (name) => typeof (mod as Record<string, unknown> | null)?.[name] !== "function",
  );
  if (missing.length > 0) {
    throw new AmbientError(
      "ENATIVE",
      `the native addon ${path} is stale (missing ${missing.join(", ")}). ${help}`,
    );
  }
  return mod as NativeBinding;
}

let binding: NativeBinding | undefined;

/** The addon, loaded on first use (see loadNativeFrom for the errors). */
export function native(): NativeBinding {
  binding ??= loadNativeFrom(NATIVE_ADDON_PATH);
  return binding;
}

/** True when the addon loads here; for callers that want to degrade instead of fail. */
export function nativeAvailable(): boolean {
  try {
    native();
    return true;
  } catch {
    return false;
  }
}

/** An addon error as an AmbientError: errno name as code, `what` as context, the original as cause. */
export function nativeError(err: unknown, what: string): AmbientError {
  if (err instanceof AmbientError) return err;
  const code = errnoCode(err) ?? "ENATIVE";
  const detail = err instanceof Error ? err.message : String(err);
  return new AmbientError(code, `${what}: ${detail}`, { cause: err });
}

function describe(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

export function invalidArg(message: string): AmbientError {
  return new AmbientError("ERR_INVALID_ARG", message);
}

/** Throws ERR_INVALID_ARG unless `fd` is a file descriptor number. */
export function checkFd(fd: unknown, what = "fd"): asserts fd is number {
  if (typeof fd !== "number" || !Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
    throw invalidArg(`${what} must be a file descriptor (an integer >= 0), got ${describe(fd)}`);
  }
}

/** Throws ERR_INVALID_ARG unless `v` is an integer in [min, max]. */
export function checkInt(v: unknown, what: string, min: number, max: number): asserts v is number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw invalidArg(`${what} must be an integer in [${min}, ${max}], got ${describe(v)}`);
  }
}

/**
 * The fd under a connected net.Socket or a listening net.Server. Node keeps it on the libuv handle
 * (`_handle.fd`), which exists on Linux for TCP and pipe handles; EBADF when there is none (not yet
 * connected, already closed, or an HTTP/2 or TLS wrapper with no handle of its own).
 */
export function socketFd(socket: Socket | Server): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  if (typeof fd !== "number" || fd < 0) {
    throw new AmbientError(
      "EBADF",
      "the socket has no file descriptor (not connected yet, already closed, or not a TCP/pipe socket)",
    );
  }
  return fd;
}

/**
 * The destination a redirected connection was originally sent to (SO_ORIGINAL_DST for IPv4 and
 * IPv4-on-dual-stack sockets, IP6T_SO_ORIGINAL_DST for IPv6), from conntrack. For a connection
 * that was not NATed this is simply the socket's local address, so a caller that must refuse
 * direct connections to its redirect port compares the two. ENOENT: conntrack knows no such flow.
 */
export function getOriginalDst(fd: number): SocketAddress {
  checkFd(fd);
  try {
    return native().getOriginalDst(fd);
  } catch (err) {
    throw nativeError(err, `reading the original destination of fd ${fd}`);
  }
}

/** Sets SO_MARK (needs CAP_NET_ADMIN); packets of the socket carry `mark` as their fwmark. */
export function setMark(fd: number, mark: number): void {
  checkFd(fd);
  checkInt(mark, "mark", 0, 0xffffffff);
  try {
    native().setMark(fd, mark);
  } catch (err) {
    throw nativeError(err, `setting SO_MARK ${mark} on fd ${fd}`);
  }
}

/** Reads SO_MARK. */
export function getMark(fd: number): number {
  checkFd(fd);
  try {
    return native().getMark(fd);
  } catch (err) {
    throw nativeError(err, `reading SO_MARK of fd ${fd}`);
  }
}

/** SO_PEERCRED of a unix socket: who is at the other end. */
export function peerCredentials(fd: number): PeerCredentials {
  checkFd(fd);
  try {
    return native().peerCredentials(fd);
  } catch (err) {
    throw nativeError(err, `reading SO_PEERCRED of fd ${fd}`);
  }
}

/** Closes an fd that was never handed to Node (Node closes the fds it adopted itself). */
export function closeFd(fd: number): void {
  checkFd(fd);
  try {
    closeSync(fd);
  } catch (err) {
    throw nativeError(err, `closing fd ${fd}`);
  }
}
