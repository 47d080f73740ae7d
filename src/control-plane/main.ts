/**
 * `ambient control-plane`: reads the settings, starts the control plane, and stops it cleanly on
 * SIGINT/SIGTERM. Resolves to the process exit code.
 */
import { AmbientError } from "../lib/errors.ts";
import { ControlPlane } from "./app.ts";
import { loadConfig } from "./config.ts";

export async function runControlPlane(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  let config;
  try {
    config = loadConfig(argv, env);
  } catch (err) {
    if (err instanceof AmbientError) {
      process.stderr.write(`ambient control-plane: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  let plane: ControlPlane;
  try {
    plane = await ControlPlane.start(config);
  } catch (err) {
    process.stderr.write(
      `ambient control-plane: cannot start: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  await plane.stop();
  return 0;
}
