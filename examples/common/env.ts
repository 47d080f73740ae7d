/**
 * Reads a sample app's settings from the environment. Every problem is collected and reported at
 * once by `done()`, so an operator fixing a manifest sees all bad keys in one go.
 */
export class EnvReader {
  readonly #env: NodeJS.ProcessEnv;
  readonly #problems: string[] = [];

  constructor(env: NodeJS.ProcessEnv) {
    this.#env = env;
  }

  #raw(name: string): string | undefined {
    const v = this.#env[name];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  }

  string(name: string, fallback: string): string {
    return this.#raw(name) ?? fallback;
  }

  /** Like `string`, but keeps an explicitly empty value (a prefix may legitimately be ""). */
  stringOrEmpty(name: string, fallback: string): string {
    const v = this.#env[name];
    return v === undefined ? fallback : v;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const v = this.#raw(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
      this.#problems.push(`${name}=${JSON.stringify(v)}: expected an integer in ${min}..${max}`);
      return fallback;
    }
    return n;
  }

  port(name: string, fallback: number): number {
    return this.int(name, fallback, 0, 65535);
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.#raw(name)?.toLowerCase();
    if (v === undefined) return fallback;
    if (v === "true" || v === "1" || v === "yes" || v === "on") return true;
    if (v === "false" || v === "0" || v === "no" || v === "off") return false;
    this.#problems.push(`${name}=${JSON.stringify(v)}: expected true or false`);
    return fallback;
  }

  /** An http:// base URL such as `http://details:9080`; any trailing slash is removed. */
  httpUrl(name: string, fallback: string): string {
    const v = this.#raw(name) ?? fallback;
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      this.#problems.push(`${name}=${JSON.stringify(v)}: not a URL (expected e.g. ${fallback})`);
      return fallback;
    }
    if (u.protocol !== "http:") {
      this.#problems.push(
        `${name}=${JSON.stringify(v)}: only http:// is supported (the mesh adds mTLS)`,
      );
      return fallback;
    }
    return v.replace(/\/+$/, "");
  }

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const v = this.#raw(name);
    if (v === undefined) return fallback;
    const found = allowed.find((a) => a === v);
    if (found === undefined) {
      this.#problems.push(`${name}=${JSON.stringify(v)}: expected one of ${allowed.join(", ")}`);
      return fallback;
    }
    return found;
  }

  /** Records a problem found by the caller's own checks. */
  problem(message: string): void {
    this.#problems.push(message);
  }

  /** Throws one error naming every bad setting, if there were any. */
  done(app: string): void {
    if (this.#problems.length > 0) {
      throw new Error(
        `${app}: invalid configuration (check the container env in the manifest):\n  ` +
          this.#problems.join("\n  "),
      );
    }
  }
}

/** Runs an app's main, turning a configuration error into one clear message and exit code 2. */
export function runMain(main: () => unknown): void {
  Promise.resolve()
    .then(main)
    .catch((err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(2);
    });
}

/** Settings every sample server shares. */
export interface ServerSettings {
  /** HOST; unset listens on every address. */
  readonly host: string | undefined;
  /** PORT; 0 picks a free port (tests). */
  readonly port: number;
  /** ACCESS_LOG=false turns off the per-request lines (benchmarks). */
  readonly accessLog: boolean;
  /** SHUTDOWN_GRACE_MS: how long in-flight work may run after SIGTERM. */
  readonly graceMs: number;
}

export function serverSettings(r: EnvReader, defaultPort: number): ServerSettings {
  const host = r.string("HOST", "");
  return {
    host: host === "" ? undefined : host,
    port: r.port("PORT", defaultPort),
    accessLog: r.bool("ACCESS_LOG", true),
    graceMs: r.int("SHUTDOWN_GRACE_MS", 5000, 0, 600_000),
  };
}

/** The pod's name: POD_NAME (downward API in the manifests), else HOSTNAME, else the host name. */
export function podName(env: NodeJS.ProcessEnv, fallback: string): string {
  const v = env["POD_NAME"] ?? env["HOSTNAME"];
  return v !== undefined && v !== "" ? v : fallback;
}
