/**
 * Structured logging shared by every component. Lines carry a level, a scope (ztunnel's "target":
 * `access`, `xds`, `hbone`, ...), a message and flat key/value fields, and are written as plain
 * text (ztunnel's default layout) or JSON lines. Levels are set per scope at runtime
 * (`info,xds=debug`), which is what the admin `/logging` endpoint changes.
 */
export type Level = "error" | "warn" | "info" | "debug" | "trace";
export type Format = "plain" | "json";
export type Fields = Readonly<
  Record<string, string | number | boolean | bigint | null | undefined>
>;

const rank: Record<Level | "off", number> = {
  off: 0,
  error: 1,
  warn: 2,
  info: 3,
  debug: 4,
  trace: 5,
};

export interface LevelSpec {
  readonly defaultLevel: Level | "off";
  readonly scopes: ReadonlyMap<string, Level | "off">;
}

function isLevel(s: string): s is Level | "off" {
  return Object.hasOwn(rank, s);
}

/**
 * Parses `info`, `debug`, `warn,xds=debug,access=off`. Returns the problems found rather than
 * throwing, so the admin endpoint can answer 400 with the reason.
 */
export function parseLevelSpec(
  spec: string,
): { ok: true; value: LevelSpec } | { ok: false; reason: string } {
  let defaultLevel: Level | "off" = "info";
  const scopes = new Map<string, Level | "off">();
  for (const raw of spec.split(",")) {
    const part = raw.trim();
    if (part === "") continue;
    const eq = part.indexOf("=");
    if (eq === -1) {
      if (!isLevel(part)) return { ok: false, reason: `unknown log level "${part}"` };
      defaultLevel = part;
    } else {
      const scope = part.slice(0, eq).trim();
      const level = part.slice(eq + 1).trim();
      if (scope === "") return { ok: false, reason: `missing scope before "=" in "${part}"` };
      if (!isLevel(level))
        return { ok: false, reason: `unknown log level "${level}" for scope ${scope}` };
      scopes.set(scope, level);
    }
  }
  return { ok: true, value: { defaultLevel, scopes } };
}

export function formatLevelSpec(spec: LevelSpec): string {
  return [spec.defaultLevel, ...[...spec.scopes].map(([s, l]) => `${s}=${l}`)].join(",");
}

export interface Sink {
  write(line: string): void;
}

const stderrSink: Sink = { write: (line) => process.stderr.write(line) };

function quotePlain(v: string): string {
  return /^[^\s"=]*$/.test(v) && v !== "" ? v : JSON.stringify(v);
}

function plainValue(v: Fields[string]): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") return quotePlain(v);
  return String(v);
}

/** Shared output state: one per process, handed to every scope's logger. */
export class LogOutput {
  #spec: LevelSpec;
  #format: Format;
  #sink: Sink;

  constructor(opts: { spec?: LevelSpec; format?: Format; sink?: Sink } = {}) {
    this.#spec = opts.spec ?? { defaultLevel: "info", scopes: new Map() };
    this.#format = opts.format ?? "plain";
    this.#sink = opts.sink ?? stderrSink;
  }

  get spec(): LevelSpec {
    return this.#spec;
  }

  setSpec(spec: LevelSpec): void {
    this.#spec = spec;
  }

  enabled(scope: string, level: Level): boolean {
    const limit = this.#spec.scopes.get(scope) ?? this.#spec.defaultLevel;
    return rank[level] <= rank[limit];
  }

  emit(scope: string, level: Level, message: string, fields?: Fields): void {
    const time = new Date().toISOString();
    let line: string;
    if (this.#format === "json") {
      const obj: Record<string, unknown> = { time, level, scope, message };
      if (fields) {
        for (const k in fields) {
          const v = fields[k];
          if (v !== undefined) obj[k] = typeof v === "bigint" ? v.toString() : v;
        }
      }
      line = JSON.stringify(obj) + "\n";
    } else {
      line = `${time}\t${level}\t${scope}\t${message}`;
      if (fields) {
        for (const k in fields) {
          const v = fields[k];
          if (v !== undefined) line += ` ${k}=${plainValue(v)}`;
        }
      }
      line += "\n";
    }
    this.#sink.write(line);
  }

  logger(scope: string): Logger {
    return new Logger(this, scope);
  }
}

export class Logger {
  readonly #out: LogOutput;
  readonly scope: string;

  constructor(out: LogOutput, scope: string) {
    this.#out = out;
    this.scope = scope;
  }

  enabled(level: Level): boolean {
    return this.#out.enabled(this.scope, level);
  }

  error(message: string, fields?: Fields): void {
    if (this.#out.enabled(this.scope, "error"))
      this.#out.emit(this.scope, "error", message, fields);
  }
  warn(message: string, fields?: Fields): void {
    if (this.#out.enabled(this.scope, "warn")) this.#out.emit(this.scope, "warn", message, fields);
  }
  info(message: string, fields?: Fields): void {
    if (this.#out.enabled(this.scope, "info")) this.#out.emit(this.scope, "info", message, fields);
  }
  debug(message: string, fields?: Fields): void {
    if (this.#out.enabled(this.scope, "debug"))
      this.#out.emit(this.scope, "debug", message, fields);
  }
  trace(message: string, fields?: Fields): void {
    if (this.#out.enabled(this.scope, "trace"))
      this.#out.emit(this.scope, "trace", message, fields);
  }

  child(scope: string): Logger {
    return new Logger(this.#out, scope);
  }
}

/** Collects lines in memory; for tests that assert what was logged. */
export class MemorySink implements Sink {
  readonly lines: string[] = [];
  write(line: string): void {
    this.lines.push(line);
  }
}
