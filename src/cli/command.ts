/** One CLI command: a name, a one-line summary for `ambient help`, and what it runs. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Usage text; a function when building it needs the component loaded (kept lazy). */
  readonly usage: string | (() => Promise<string>);
  /** Resolves to the process exit code. */
  run(args: readonly string[]): Promise<number>;
}
