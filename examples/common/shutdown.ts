/**
 * SIGTERM/SIGINT handling for the sample apps, as a kubelet (or `ambient down`) expects: stop
 * accepting, let in-flight work finish within a grace period, then exit 0. A second signal exits
 * at once.
 */
import type { AppLog } from "./log.ts";

export function onShutdown(log: AppLog, graceMs: number, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn("second signal, exiting now", { signal });
      log.flush();
      process.exit(1);
    }
    stopping = true;
    log.info("shutting down", { signal, grace_ms: graceMs });
    // The grace timer is a backstop: stop() itself force-closes what is left at the deadline.
    const backstop = setTimeout(() => {
      log.warn("shutdown did not finish in time, exiting");
      log.flush();
      process.exit(1);
    }, graceMs + 1000);
    backstop.unref();
    stop().then(
      () => {
        // One more turn, so 'close' handlers of the last requests write their access lines.
        setImmediate(() => {
          log.info("stopped");
          log.flush();
          process.exit(0);
        });
      },
      (err: unknown) => {
        log.error("shutdown failed", { error: String(err) });
        log.flush();
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
}
