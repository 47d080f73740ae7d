/**
 * Log lines of the sample apps, in the same plain layout as the mesh components
 * (`time<TAB>level<TAB>scope<TAB>message key=value...`), written to stdout as container logs are.
 * Lines are gathered and written once per event-loop turn, so a busy server makes one write
 * syscall per turn instead of one per request.
 */
export type LogValue = string | number | boolean | null | undefined;
export type LogFields = Readonly<Record<string, LogValue>>;

export interface LogSink {
  write(text: string): unknown;
}

function quote(v: string): string {
  return v !== "" && /^[^\s"=]*$/.test(v) ? v : JSON.stringify(v);
}

export function formatLine(
  time: Date,
  level: "info" | "warn" | "error",
  scope: string,
  message: string,
  fields?: LogFields,
): string {
  let line = `${time.toISOString()}\t${level}\t${scope}\t${message}`;
  if (fields) {
    for (const k in fields) {
      const v = fields[k];
      if (v === undefined) continue;
      line += ` ${k}=${typeof v === "string" ? quote(v) : String(v)}`;
    }
  }
  return line + "\n";
}

export class AppLog {
  readonly app: string;
  readonly accessEnabled: boolean;
  readonly #sink: LogSink;
  #pending = "";
  #scheduled = false;

  constructor(app: string, opts: { sink?: LogSink; access?: boolean } = {}) {
    this.app = app;
    this.#sink = opts.sink ?? process.stdout;
    this.accessEnabled = opts.access ?? true;
  }

  info(message: string, fields?: LogFields): void {
    this.#push(formatLine(new Date(), "info", this.app, message, fields));
  }

  warn(message: string, fields?: LogFields): void {
    this.#push(formatLine(new Date(), "warn", this.app, message, fields));
  }

  error(message: string, fields?: LogFields): void {
    this.#push(formatLine(new Date(), "error", this.app, message, fields));
  }

  /** One line per request or connection, under the `access` scope; off when ACCESS_LOG=false. */
  access(message: string, fields: LogFields): void {
    if (this.accessEnabled) this.#push(formatLine(new Date(), "info", "access", message, fields));
  }

  /** Writes whatever is pending now (before exiting). */
  flush(): void {
    if (this.#pending !== "") {
      const text = this.#pending;
      this.#pending = "";
      this.#sink.write(text);
    }
  }

  #push(line: string): void {
    this.#pending += line;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.flush();
      });
    }
  }
}
