/**
 * A tiny program the redirection tests run inside network namespaces.
 *   tcp-server <host> <port> <label>   answers each connection with where it landed, then closes
 *   udp-server <host> <port> <label>   answers each datagram the same way
 *   tcp-client <host> <port>           prints the server's answer (or {"error": code})
 *   udp-client <host> <port>           prints the answer and the address it came from
 * Servers print "ready" once listening. Clients give up after 3 s.
 */
import { createSocket } from "node:dgram";
import { connect, createServer } from "node:net";

const [mode, host = "0.0.0.0", portText = "0", label = ""] = process.argv.slice(2);
const port = Number(portText);

function fail(error: string): void {
  process.stdout.write(JSON.stringify({ error }) + "\n");
  process.exit(0);
}

switch (mode ?? "") {
  case "tcp-server": {
    const server = createServer((s) => {
      s.on("error", () => {});
      s.end(
        JSON.stringify({
          label,
          local: `${s.localAddress}:${s.localPort}`,
          remote: `${s.remoteAddress}:${s.remotePort}`,
        }) + "\n",
      );
    });
    server.listen(port, host, () => process.stdout.write("ready\n"));
    break;
  }
  case "udp-server": {
    const sock = createSocket("udp4");
    sock.on("message", (_msg, rinfo) => {
      const answer = JSON.stringify({ label, remote: `${rinfo.address}:${rinfo.port}` });
      sock.send(answer, rinfo.port, rinfo.address);
    });
    sock.bind(port, host, () => process.stdout.write("ready\n"));
    break;
  }
  case "tcp-client": {
    const timer = setTimeout(() => fail("timeout"), 3000);
    let data = "";
    const s = connect(port, host);
    s.on("data", (b: Buffer) => (data += b.toString()));
    s.on("end", () => {
      clearTimeout(timer);
      process.stdout.write(data.trim() + "\n");
      process.exit(0);
    });
    s.on("error", (e: NodeJS.ErrnoException) => fail(e.code ?? e.message));
    break;
  }
  case "udp-client": {
    const timer = setTimeout(() => fail("timeout"), 3000);
    const sock = createSocket("udp4");
    sock.on("message", (msg, rinfo) => {
      clearTimeout(timer);
      const reply = JSON.parse(msg.toString()) as unknown;
      process.stdout.write(
        JSON.stringify({ reply, from: `${rinfo.address}:${rinfo.port}` }) + "\n",
      );
      process.exit(0);
    });
    sock.send("query", port, host);
    break;
  }
  default:
    process.stderr.write(`unknown mode ${mode}\n`);
    process.exit(2);
}
