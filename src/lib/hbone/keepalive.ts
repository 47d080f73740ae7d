/**
 * HTTP/2 PING keepalive, as ztunnel does on both ends of an HBONE connection: a PING every
 * interval (the first one interval after the start); a PING left unanswered for the timeout tears
 * the connection down, so a peer that vanished without a FIN (node died, network cut) does not
 * hold streams forever.
 */
import type { Http2Session } from "node:http2";

export interface KeepaliveOptions {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Called once when a PING went unanswered for `timeoutMs`; the caller destroys the session. */
  readonly onTimeout: () => void;
}

/** Starts the keepalive; it stops by itself when the session closes. Returns a stop function. */
export function startKeepalive(session: Http2Session, opts: KeepaliveOptions): () => void {
  let outstandingSince = 0;
  let stopped = false;
  const onPong = (err: Error | null): void => {
    // An error here means the session is going away; its own close handling covers that.
    if (err === null) outstandingSince = 0;
  };
  const timer = setInterval(() => {
    if (stopped || session.destroyed || session.closed) return stop();
    const now = Date.now();
    if (outstandingSince !== 0) {
      if (now - outstandingSince >= opts.timeoutMs) {
        stop();
        opts.onTimeout();
      }
      return;
    }
    outstandingSince = now;
    try {
      if (!session.ping(onPong)) outstandingSince = 0; // too many PINGs in flight already
    } catch {
      // ping() throws once the session is closing; nothing to keep alive then.
      stop();
    }
  }, opts.intervalMs);
  // Keepalive alone must not keep the process running.
  timer.unref();
  function stop(): void {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
  }
  session.once("close", stop);
  return stop;
}
