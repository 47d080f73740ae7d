/**
 * A plain TCP connection from the pod, resolved once connected: to an endpoint without HBONE, to a
 * passthrough destination, or to the pod's own application on inbound. Timeout and abort destroy
 * the socket; failures say where the connection was going.
 */
import type { Socket } from "node:net";
import { AmbientError, errnoCode } from "../../lib/errors.ts";
import { formatSocketAddr } from "../../lib/net/index.ts";
import type { SocketAddr } from "./plan/index.ts";
import type { ConnectFrom, PodSockets } from "./pod-sockets.ts";

export interface TcpConnectOptions {
  readonly from?: ConnectFrom | undefined;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

export function tcpConnect(
  sockets: PodSockets,
  dst: SocketAddr,
  opts: TcpConnectOptions,
): Promise<Socket> {
  const where = formatSocketAddr(dst.ip, dst.port);
  let socket: Socket;
  try {
    socket = sockets.connect(dst.ip, dst.port, opts.from);
  } catch (err) {
    return Promise.reject(
      new AmbientError(
        errnoCode(err) ?? "ECONNECT",
        `connecting to ${where} failed: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      ),
    );
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: AmbientError): void => {
      if (settled) return;
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onConnect = (): void => {
      if (settled) return;
      cleanup();
      resolve(socket);
    };
    const onError = (err: Error): void =>
      fail(
        new AmbientError(
          errnoCode(err) ?? "ECONNECT",
          `connecting to ${where} failed: ${err.message}`,
          {
            cause: err,
          },
        ),
      );
    const onClose = (): void =>
      fail(new AmbientError("ECONNECT", `connecting to ${where} failed: socket closed`));
    const onAbort = (): void =>
      fail(new AmbientError("ECONNABORTED", `connecting to ${where} was abandoned`));
    const timer = setTimeout(
      () =>
        fail(
          new AmbientError(
            "ETIMEDOUT",
            `connecting to ${where} timed out after ${opts.timeoutMs} ms`,
          ),
        ),
      opts.timeoutMs,
    );
    function cleanup(): void {
      settled = true;
      clearTimeout(timer);
      socket.off("connect", onConnect);
      // The 'error' listener stays: until the caller attaches its own (a microtask later), an
      // error emitted on the next tick must not go unhandled. After settling it does nothing.
      socket.off("close", onClose);
      opts.signal?.removeEventListener("abort", onAbort);
    }
    socket.once("connect", onConnect);
    socket.on("error", onError);
    socket.once("close", onClose);
    if (opts.signal?.aborted === true) onAbort();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });
  });
}
