/**
 * Running ztunnel as a process: load the configuration, start the app, drain on SIGTERM/SIGINT
 * (a second signal exits at once), resolve with the exit code once everything has stopped.
 */
import { AmbientError } from "../lib/errors.ts";
import { ZtunnelApp, type ProxyFactory } from "./app.ts";
import { loadConfig, type Env } from "./config.ts";
import { startDedicatedProxy, startInpodProxy } from "./proxy/index.ts";

/** The real data path; tests may pass stand-ins. */
const dataPath: ProxyFactory = { startInpodProxy, startDedicatedProxy };

export interface RunOptions {
  /** Variables that win over the environment (the CLI's flags). */
  readonly overrides?: Env;
  /** The data path (default: the real one from `./proxy`). */
  readonly proxies?: ProxyFactory;
}

/** Runs until shut down; resolves with the process exit code. */
export async function runZtunnel(options: RunOptions = {}): Promise<number> {
  let app: ZtunnelApp;
  try {
    const config = loadConfig(
      undefined,
      options.overrides !== undefined ? { overrides: options.overrides } : {},
    );
    app = await ZtunnelApp.start({ config, proxies: options.proxies ?? dataPath });
  } catch (err) {
    process.stderr.write(
      `ztunnel: ${err instanceof AmbientError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return 1;
  }
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      app.log.warn("second signal during drain: exiting now", { signal });
      process.exit(1);
    }
    void app.shutdown(signal);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  await app.closed;
  process.off("SIGTERM", onSignal);
  process.off("SIGINT", onSignal);
  return 0;
}
