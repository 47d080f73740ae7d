/** `ambient` — the command-line entry point. Each command lives in its own file under commands/. */
import { commands } from "./commands/index.ts";

function help(): void {
  console.log("usage: ambient <command> [options]\n\ncommands:");
  const width = Math.max(...commands.map((c) => c.name.length));
  for (const c of commands) console.log(`  ${c.name.padEnd(width)}  ${c.summary}`);
  console.log("\nrun 'ambient <command> --help' for a command's options");
}

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    help();
    return name === undefined ? 2 : 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    console.error(`ambient: unknown command "${name}"; run 'ambient help' for the list`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    const usage = typeof cmd.usage === "string" ? cmd.usage : await cmd.usage();
    console.log(`usage: ${usage}\n\n${cmd.summary}`);
    return 0;
  }
  return cmd.run(rest);
}

process.exitCode = await main(process.argv.slice(2));
