/** One CLI command: a name, a one-line summary for `ambient help`, and what it runs. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  /** Resolves to the process exit code. */
  run(args: readonly string[]): Promise<number>;
}
