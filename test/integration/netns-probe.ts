/**
 * A tiny program the local-network tests run inside namespaces.
 *   serve <port> <label>           TCP server answering each connection with its label; prints "ready"
 *   reach <port> <ip> [<ip> ...]   connects to each address and prints {ip: label-or-error} as JSON
 * Clients give up on an address after 3 s.
 */
import { connect, createServer } from "node:net";

const [mode, portText = "0", ...rest] = process.argv.slice(2);
const port = Number(portText);

function reach(ip: string): Promise<string> {
  return new Promise((resolve) => {
    let data = "";
    const s = connect({ port, host: ip, timeout: 3000 });
    s.on("data", (b: Buffer) => (data += b.toString()));
    s.on("end", () => resolve(data.trim()));
    s.on("timeout", () => {
      s.destroy();
      resolve("error: timeout");
    });
    s.on("error", (e: NodeJS.ErrnoException) => resolve(`error: ${e.code ?? e.message}`));
  });
}

if (mode === "serve") {
  const label = rest[0] ?? "";
  createServer((s) => {
    s.on("error", () => {});
    s.end(`${label}\n`);
  }).listen(port, "0.0.0.0", () => process.stdout.write("ready\n"));
} else if (mode === "reach") {
  const results = await Promise.all(rest.map(async (ip) => [ip, await reach(ip)] as const));
  process.stdout.write(JSON.stringify(Object.fromEntries(results)) + "\n");
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
