/**
 * Flag parsing for the local runtime's process commands: `--name value` or `--name=value`,
 * booleans as `--name` / `--no-name`. Every unknown or malformed flag is reported at once.
 */
export interface FlagSpec {
  readonly [name: string]: "string" | "boolean";
}

export type Flags = Readonly<Record<string, string | boolean | undefined>>;

export function parseFlags(
  args: readonly string[],
  spec: FlagSpec,
): { flags: Flags; problems: string[] } {
  const flags: Record<string, string | boolean> = {};
  const problems: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith("--")) {
      problems.push(`unexpected argument "${a}"`);
      continue;
    }
    const eq = a.indexOf("=");
    let name = eq === -1 ? a.slice(2) : a.slice(2, eq);
    let value: string | boolean | undefined = eq === -1 ? undefined : a.slice(eq + 1);
    if (spec[name] === undefined && name.startsWith("no-") && spec[name.slice(3)] === "boolean") {
      name = name.slice(3);
      value = false;
    }
    const kind = spec[name];
    if (kind === undefined) {
      problems.push(`unknown flag --${name}`);
      continue;
    }
    if (kind === "boolean") {
      flags[name] = value === undefined ? true : value === false ? false : value !== "false";
      continue;
    }
    if (value === undefined) {
      const next = args[i + 1];
      if (next === undefined || next.startsWith("--")) {
        problems.push(`flag --${name} needs a value`);
        continue;
      }
      value = next;
      i++;
    }
    flags[name] = value;
  }
  return { flags, problems };
}

/** `host:port` → parts; undefined when malformed. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const i = text.lastIndexOf(":");
  if (i <= 0) return undefined;
  const port = Number(text.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) return undefined;
  return { host: text.slice(0, i), port };
}
