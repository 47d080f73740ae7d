/**
 * The native addon against real network namespaces (root): listeners and outbound sockets created
 * inside a namespace and adopted by Node, SO_MARK, SO_ORIGINAL_DST behind iptables REDIRECT (IPv4,
 * IPv6 and IPv4 on a dual-stack listener), UDP, a netns fd passed over SEQPACKET, and no fd leaks.
 *
 * Each test namespace is private to this process (amb-nat-<pid>-<n>) and uses 198.18.100.0/24 on
 * a veth pair inside it; nothing is routed outside the namespace.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createSocket as createDgram, type Socket as DgramSocket } from "node:dgram";
import { fstatSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer, Socket, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import {
  closeFd,
  createNetnsSocket,
  currentNetnsId,
  getMark,
  getOriginalDst,
  netnsId,
  openNetns,
  sameNetns,
  SeqpacketServer,
  SeqpacketSocket,
  socketFd,
  type NetnsId,
  type NetnsSocketOptions,
  type SocketAddress,
} from "../../src/lib/net/index.ts";

const run = promisify(execFile);
const MARK = 1337; // ztunnel's mark (0x539), as Istio's in-pod rules expect
const POD_IP = "198.18.100.1";
const REDIRECTED_IP = "198.18.100.80"; // a "service" the client calls; REDIRECTed to 15001
const DUAL_STACK_IP = "198.18.100.81"; // REDIRECTed to the dual-stack listener on 15002

async function sh(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await run(cmd, args, { timeout: 20_000 });
  return stdout;
}

let nsSeq = 0;

/** A network namespace of this test process, with its fd open. */
class TestNetns {
  readonly name: string;
  readonly fd: number;

  private constructor(name: string, fd: number) {
    this.name = name;
    this.fd = fd;
  }

  static async create(): Promise<TestNetns> {
    const name = `amb-nat-${process.pid}-${nsSeq++}`;
    await sh("ip", ["netns", "add", name]);
    try {
      await sh("ip", ["-n", name, "link", "set", "lo", "up"]);
      // A veth pair kept inside the namespace stands in for the pod's eth0.
      await sh("ip", ["-n", name, "link", "add", "amb0", "type", "veth", "peer", "name", "amb1"]);
      await sh("ip", ["-n", name, "link", "set", "amb1", "up"]);
      await sh("ip", ["-n", name, "addr", "add", `${POD_IP}/24`, "dev", "amb0"]);
      await sh("ip", ["-n", name, "addr", "add", `${REDIRECTED_IP}/32`, "dev", "amb0"]);
      await sh("ip", ["-n", name, "link", "set", "amb0", "up"]);
      return new TestNetns(name, openNetns(`/run/netns/${name}`));
    } catch (err) {
      await sh("ip", ["netns", "del", name]).catch(() => "");
      throw err;
    }
  }

  exec(cmd: string, args: string[]): Promise<string> {
    return sh("ip", ["netns", "exec", this.name, cmd, ...args]);
  }

  async destroy(): Promise<void> {
    closeFd(this.fd);
    await sh("ip", ["netns", "del", this.name]);
  }
}

function countFds(): number {
  return readdirSync("/proc/self/fd").length;
}

/** A TCP server adopted from a socket made in `ns`; handler gets each accepted connection. */
async function listenIn(
  ns: TestNetns,
  options: Omit<NetnsSocketOptions, "netns" | "protocol">,
  handler: (socket: Socket) => void,
): Promise<Server> {
  const { fd } = createNetnsSocket({ ...options, netns: ns.fd, protocol: "tcp" });
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ fd }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A minimal HTTP/1.1 responder: answers the request with `body(socket)` and closes. */
function httpResponder(body: (socket: Socket, requestLine: string) => string) {
  return (socket: Socket): void => {
    let head = "";
    socket.on("data", (chunk: Buffer) => {
      head += chunk.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end === -1) return;
      const text = body(socket, head.slice(0, head.indexOf("\r\n")));
      socket.end(
        `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
      );
    });
    socket.on("error", () => socket.destroy());
  };
}

/** Connects an adopted outbound socket and collects what the server sends until it closes. */
function exchange(fd: number, port: number, host: string, send: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    const s = new Socket({ fd });
    s.on("error", reject);
    s.on("data", (d: Buffer) => (got += d.toString()));
    s.on("end", () => resolve(got));
    s.connect(port, host, () => s.end(send));
  });
}

describe("native addon in network namespaces", { concurrency: false }, () => {
  let ns: TestNetns;
  let home: NetnsId;

  before(async () => {
    assert.equal(process.getuid?.(), 0, "these tests need root (network namespaces, SO_MARK)");
    home = currentNetnsId();
    ns = await TestNetns.create();
  });

  after(async () => {
    await ns?.destroy();
  });

  it("serves a listener made inside the namespace, visible only there, marked 1337", async () => {
    const seen: { requestLine: string; mark: number; local: string }[] = [];
    const server = await listenIn(
      ns,
      {
        family: 4,
        mark: MARK,
        reusePort: true,
        reuseAddr: true,
        bind: { address: POD_IP, port: 15001 },
        listen: { backlog: 128 },
      },
      httpResponder((socket, requestLine) => {
        seen.push({
          requestLine,
          mark: getMark(socketFd(socket)),
          local: `${socket.localAddress}:${socket.localPort}`,
        });
        return "hello from inside the pod namespace";
      }),
    );
    try {
      assert.ok(sameNetns(currentNetnsId(), home), "the JS thread is back in its own namespace");
      const listenerFd = socketFd(server);
      assert.equal(getMark(listenerFd), MARK);

      const body = await ns.exec("curl", ["-sS", "--max-time", "5", `http://${POD_IP}:15001/x`]);
      assert.equal(body, "hello from inside the pod namespace");
      assert.deepEqual(seen, [
        { requestLine: "GET /x HTTP/1.1", mark: MARK, local: `${POD_IP}:15001` },
      ]);

      // ss shows the listener, its mark and its inode inside the namespace, and not outside it.
      const ino = fstatSync(listenerFd).ino;
      const inside = await ns.exec("ss", ["-ltne"]);
      const line = inside.split("\n").find((l) => l.includes(`ino:${ino} `));
      assert.ok(
        line !== undefined,
        `listener inode ${ino} not in the namespace's ss output:\n${inside}`,
      );
      assert.match(line, new RegExp(`${POD_IP.replaceAll(".", "\\.")}:15001`));
      assert.match(line, /fwmark:0x539/);
      const outside = await sh("ss", ["-ltne"]);
      assert.ok(
        !outside.includes(`ino:${ino} `),
        "the listener must not be visible in the host namespace",
      );
    } finally {
      await closeServer(server);
    }
  });

  it("two reuseport listeners share a port inside the namespace", async () => {
    const options = {
      family: 4 as const,
      mark: MARK,
      reusePort: true,
      bind: { address: POD_IP, port: 15021 },
      listen: { backlog: 16 },
    };
    const a = await listenIn(
      ns,
      options,
      httpResponder(() => "a"),
    );
    const b = await listenIn(
      ns,
      options,
      httpResponder(() => "b"),
    );
    try {
      const body = await ns.exec("curl", ["-sS", "--max-time", "5", `http://${POD_IP}:15021/`]);
      assert.ok(body === "a" || body === "b", body);
      // Without SO_REUSEPORT the same bind is refused.
      assert.throws(
        () =>
          createNetnsSocket({
            netns: ns.fd,
            protocol: "tcp",
            family: 4,
            bind: { address: POD_IP, port: 15021 },
          }),
        { code: "EADDRINUSE" },
      );
      assert.ok(sameNetns(currentNetnsId(), home), "back home after a failure too");
    } finally {
      await closeServer(a);
      await closeServer(b);
    }
  });

  describe("behind iptables REDIRECT", { concurrency: false }, () => {
    before(async () => {
      // Istio's in-pod shape: ztunnel's own traffic (mark 0x539) passes, the rest is redirected.
      await ns.exec("iptables", [
        "-t",
        "nat",
        "-A",
        "OUTPUT",
        "-m",
        "mark",
        "--mark",
        "0x539/0xfff",
        "-j",
        "RETURN",
      ]);
      for (const [ip, port] of [
        [REDIRECTED_IP, "15001"],
        [DUAL_STACK_IP, "15002"],
      ] as const) {
        await ns.exec("iptables", [
          "-t",
          "nat",
          "-A",
          "OUTPUT",
          "-p",
          "tcp",
          "-d",
          ip,
          "--dport",
          "80",
          "-j",
          "REDIRECT",
          "--to-ports",
          port,
        ]);
      }
    });

    it("getOriginalDst returns the address the client dialled (IPv4)", async () => {
      const dsts: SocketAddress[] = [];
      const locals: string[] = [];
      const server = await listenIn(
        ns,
        {
          family: 4,
          mark: MARK,
          reuseAddr: true,
          bind: { address: "127.0.0.1", port: 15001 },
          listen: { backlog: 16 },
        },
        httpResponder((socket) => {
          dsts.push(getOriginalDst(socketFd(socket)));
          locals.push(`${socket.localAddress}:${socket.localPort}`);
          return "redirected";
        }),
      );
      try {
        const body = await ns.exec("curl", [
          "-sS",
          "--max-time",
          "5",
          `http://${REDIRECTED_IP}:80/`,
        ]);
        assert.equal(body, "redirected");
        assert.deepEqual(locals, ["127.0.0.1:15001"]);
        assert.deepEqual(dsts, [{ address: REDIRECTED_IP, port: 80, family: 4 }]);
      } finally {
        await closeServer(server);
      }
    });

    it("getOriginalDst reads IPv4 connections on a dual-stack IPv6 listener", async () => {
      const dsts: SocketAddress[] = [];
      const server = await listenIn(
        ns,
        {
          family: 6,
          v6Only: false,
          mark: MARK,
          bind: { address: "::", port: 15002 },
          listen: { backlog: 16 },
        },
        httpResponder((socket) => {
          dsts.push(getOriginalDst(socketFd(socket)));
          return `local ${socket.localAddress}`;
        }),
      );
      try {
        const body = await ns.exec("curl", [
          "-sS",
          "--max-time",
          "5",
          `http://${DUAL_STACK_IP}:80/`,
        ]);
        assert.equal(body, "local ::ffff:127.0.0.1");
        assert.deepEqual(dsts, [{ address: DUAL_STACK_IP, port: 80, family: 4 }]);
      } finally {
        await closeServer(server);
      }
    });

    it("getOriginalDst returns the address the client dialled (IPv6, ip6tables nat)", async () => {
      await ns.exec("ip6tables", [
        "-t",
        "nat",
        "-A",
        "OUTPUT",
        "-p",
        "tcp",
        "-d",
        "::1",
        "--dport",
        "80",
        "-j",
        "REDIRECT",
        "--to-ports",
        "15003",
      ]);
      const dsts: SocketAddress[] = [];
      const server = await listenIn(
        ns,
        {
          family: 6,
          v6Only: true,
          mark: MARK,
          bind: { address: "::1", port: 15003 },
          listen: { backlog: 16 },
        },
        httpResponder((socket) => {
          dsts.push(getOriginalDst(socketFd(socket)));
          return `local [${socket.localAddress}]:${socket.localPort}`;
        }),
      );
      try {
        const body = await ns.exec("curl", ["-sS", "-g", "--max-time", "5", "http://[::1]:80/"]);
        assert.equal(body, "local [::1]:15003");
        assert.deepEqual(dsts, [{ address: "::1", port: 80, family: 6 }]);
      } finally {
        await closeServer(server);
      }
    });

    it("an outbound socket made in the namespace connects; its mark 1337 skips the redirect", async () => {
      // The real "service" on REDIRECTED_IP:80, and the redirect target on 15001.
      const direct = await listenIn(
        ns,
        { family: 4, bind: { address: REDIRECTED_IP, port: 80 }, listen: { backlog: 16 } },
        (s) => {
          const dst = getOriginalDst(socketFd(s));
          s.resume(); // read the client's bytes so its FIN is seen and the socket closes
          s.end(`direct ${dst.address}:${dst.port}`);
        },
      );
      const redirect = await listenIn(
        ns,
        {
          family: 4,
          reuseAddr: true,
          bind: { address: "127.0.0.1", port: 15001 },
          listen: { backlog: 16 },
        },
        (s) => {
          const dst = getOriginalDst(socketFd(s));
          s.resume();
          s.end(`redirected ${dst.address}:${dst.port}`);
        },
      );
      try {
        const marked = createNetnsSocket({ netns: ns.fd, protocol: "tcp", family: 4, mark: MARK });
        assert.ok(sameNetns(currentNetnsId(), home));
        // Not NATed, so the "original" destination is the socket's own local address.
        assert.equal(
          await exchange(marked.fd, 80, REDIRECTED_IP, "hi"),
          `direct ${REDIRECTED_IP}:80`,
        );

        const plain = createNetnsSocket({ netns: ns.fd, protocol: "tcp", family: 4 });
        assert.equal(
          await exchange(plain.fd, 80, REDIRECTED_IP, "hi"),
          `redirected ${REDIRECTED_IP}:80`,
        );
      } finally {
        await closeServer(direct);
        await closeServer(redirect);
      }
    });
  });

  it("getOriginalDst reports ENOENT where conntrack has no entry (namespace without NAT)", async () => {
    const bare = await TestNetns.create();
    try {
      const server = await listenIn(
        bare,
        { family: 4, bind: { address: POD_IP, port: 15006 }, listen: { backlog: 4 } },
        () => undefined,
      );
      const accepted = new Promise<Socket>((resolve) => server.once("connection", resolve));
      const client = createNetnsSocket({ netns: bare.fd, protocol: "tcp", family: 4 });
      const socket = new Socket({ fd: client.fd });
      socket.on("error", () => undefined);
      socket.connect(15006, POD_IP);
      const conn = await accepted;
      assert.throws(() => getOriginalDst(socketFd(conn)), {
        code: "ENOENT",
        message: /getsockopt\(SO_ORIGINAL_DST\)/,
      });
      socket.destroy();
      conn.destroy();
      await closeServer(server);
    } finally {
      await bare.destroy();
    }
  });

  it("UDP sockets made in the namespace work through dgram's { fd }", async () => {
    const serverSock = createNetnsSocket({
      netns: ns.fd,
      protocol: "udp",
      family: 4,
      mark: MARK,
      reuseAddr: true,
      bind: { address: POD_IP, port: 15053 },
    });
    const clientSock = createNetnsSocket({ netns: ns.fd, protocol: "udp", family: 4, mark: MARK });
    const server = createDgram("udp4");
    const client = createDgram("udp4");
    const bind = (s: DgramSocket, fd: number) =>
      new Promise<void>((resolve) => s.bind({ fd }, () => resolve()));
    try {
      await bind(server, serverSock.fd);
      await bind(client, clientSock.fd);
      assert.deepEqual(server.address(), { address: POD_IP, family: "IPv4", port: 15053 });
      server.on("message", (msg, rinfo) => {
        server.send(`answer to ${msg.toString()} from ${rinfo.address}`, rinfo.port, rinfo.address);
      });
      const reply = new Promise<string>((resolve) =>
        client.once("message", (m) => resolve(m.toString())),
      );
      client.send("query", 15053, POD_IP);
      assert.equal(await reply, `answer to query from ${POD_IP}`);
      const inside = await ns.exec("ss", ["-lun"]);
      assert.match(inside, new RegExp(`${POD_IP.replaceAll(".", "\\.")}:15053`));
    } finally {
      server.close();
      client.close();
    }
  });

  it("a netns fd passed over SEQPACKET is the same namespace and works for setns", async () => {
    const dir = mkdtempSync(join(tmpdir(), "amb-nat-zds-"));
    const server = SeqpacketServer.listen(join(dir, "zds.sock"), { mode: 0o600 });
    try {
      const accepting = server.accept({ timeoutMs: 5000 });
      const ztunnel = SeqpacketSocket.connect(server.path);
      const agent = await accepting;
      assert.equal(agent.peerCredentials().pid, process.pid);

      assert.ok(agent.trySend(Buffer.from("add pod"), [ns.fd]));
      const msg = await ztunnel.receive({ timeoutMs: 5000 });
      assert.ok(msg !== null);
      assert.equal(msg.data.toString(), "add pod");
      assert.equal(msg.fds.length, 1);
      const podNetns = msg.fds[0]!;
      assert.notEqual(podNetns, ns.fd);
      assert.ok(sameNetns(podNetns, ns.fd));
      assert.ok(!sameNetns(podNetns, home));
      assert.deepEqual(netnsId(podNetns), netnsId(`/run/netns/${ns.name}`));

      // ztunnel's side: a listener in the pod namespace, from the fd it received.
      const fdServer = await new Promise<Server>((resolve) => {
        const { fd } = createNetnsSocket({
          netns: podNetns,
          protocol: "tcp",
          family: 4,
          mark: MARK,
          bind: { address: POD_IP, port: 15008 },
          listen: { backlog: 16 },
        });
        const s = createServer((c) => c.resume().end("via the passed fd"));
        s.listen({ fd }, () => resolve(s));
      });
      try {
        const body = await ns.exec("curl", [
          "-sS",
          "--max-time",
          "5",
          "--http0.9",
          `http://${POD_IP}:15008/`,
        ]);
        assert.equal(body, "via the passed fd");
      } finally {
        await closeServer(fdServer);
        closeFd(podNetns);
      }
      agent.close();
      ztunnel.close();
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("sets IP_TRANSPARENT when required (root has CAP_NET_ADMIN)", () => {
    for (const family of [4, 6] as const) {
      const s = createNetnsSocket({
        netns: ns.fd,
        protocol: "tcp",
        family,
        transparent: "require",
        freebind: true,
        bind: { address: family === 4 ? "198.18.100.200" : "::", port: 0 },
      });
      assert.equal(s.transparent, true);
      closeFd(s.fd);
    }
  });

  it("without CAP_NET_ADMIN: 'try' degrades, 'require', SO_MARK and setns fail with EPERM", async () => {
    // A child whose bounding set lacks the capabilities ztunnel needs, as in a misconfigured pod.
    const script = `
      const n = await import(${JSON.stringify(new URL("../../src/lib/net/index.ts", import.meta.url).href)});
      const out = {};
      const attempt = (name, f) => { try { out[name] = f(); } catch (e) { out[name] = e.code + ": " + e.message; } };
      attempt("try", () => { const s = n.createNetnsSocket({ protocol: "tcp", family: 4, transparent: "try" }); n.closeFd(s.fd); return s.transparent; });
      attempt("require", () => n.createNetnsSocket({ protocol: "tcp", family: 4, transparent: "require" }));
      attempt("mark", () => n.createNetnsSocket({ protocol: "tcp", family: 4, mark: 1337 }));
      attempt("setns", () => n.createNetnsSocket({ netns: n.openNetns(${JSON.stringify(`/run/netns/${ns.name}`)}), protocol: "tcp", family: 4 }));
      process.stdout.write(JSON.stringify(out));
    `;
    const out = JSON.parse(
      await sh("setpriv", [
        "--bounding-set",
        "-net_admin,-net_raw,-sys_admin",
        process.execPath,
        "--input-type=module",
        "-e",
        script,
      ]),
    ) as Record<string, unknown>;
    assert.equal(out["try"], false);
    assert.match(String(out["require"]), /^EPERM: .*setsockopt\(IP_TRANSPARENT\)/);
    assert.match(String(out["mark"]), /^EPERM: .*setsockopt\(SO_MARK\)/);
    assert.match(String(out["setns"]), /^EPERM: .*in the network namespace of fd \d+: setns:/);
  });

  it("leaks no fds over 1,000 create/close cycles, failures included", () => {
    const before = countFds();
    for (let i = 0; i < 1000; i++) {
      const listener = createNetnsSocket({
        netns: ns.fd,
        protocol: i % 2 === 0 ? "tcp" : "udp",
        family: i % 3 === 0 ? 6 : 4,
        mark: MARK,
        reusePort: true,
        transparent: "try",
        bind: { address: i % 3 === 0 ? "::" : POD_IP, port: 15100 },
        ...(i % 2 === 0 ? { listen: { backlog: 8 } } : {}),
      });
      closeFd(listener.fd);
      // A failure after socket() (bind to an address the namespace lacks) must not leak either.
      assert.throws(
        () =>
          createNetnsSocket({
            netns: ns.fd,
            protocol: "tcp",
            family: 4,
            mark: MARK,
            bind: { address: "198.18.101.1", port: 15100 },
          }),
        { code: "EADDRNOTAVAIL" },
      );
    }
    assert.equal(countFds(), before);
    assert.ok(sameNetns(currentNetnsId(), home));
  });
});
