import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { createServer, Socket, type AddressInfo } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { closeFd } from "./native.ts";
import {
  CURRENT_NETNS_PATH,
  createNetnsSocket,
  currentNetnsId,
  netnsId,
  netnsSocketSpec,
  openNetns,
  sameNetns,
  type NetnsSocketOptions,
} from "./netns.ts";

describe("netnsSocketSpec", () => {
  it("converts a listener spec to the addon's flat form", () => {
    assert.deepEqual(
      netnsSocketSpec({
        netns: 7,
        protocol: "tcp",
        family: 4,
        mark: 1337,
        reusePort: true,
        reuseAddr: false,
        transparent: "try",
        bind: { address: "198.18.0.1", port: 15001 },
        listen: { backlog: 128 },
      }),
      {
        netnsFd: 7,
        protocol: "tcp",
        family: 4,
        mark: 1337,
        reusePort: true,
        transparent: "try",
        address: "198.18.0.1",
        port: 15001,
        backlog: 128,
      },
    );
  });

  it("leaves out what was not asked for", () => {
    assert.deepEqual(netnsSocketSpec({ protocol: "udp", family: 6, v6Only: false }), {
      protocol: "udp",
      family: 6,
      v6Only: false,
    });
  });

  const bad: [string, NetnsSocketOptions, RegExp][] = [
    ["an unknown protocol", { protocol: "sctp" as "tcp", family: 4 }, /protocol/],
    ["family 5", { protocol: "tcp", family: 5 as 4 }, /family/],
    ["a negative netns fd", { protocol: "tcp", family: 4, netns: -1 }, /netns/],
    ["a mark over 32 bits", { protocol: "tcp", family: 4, mark: 2 ** 32 }, /mark/],
    [
      "transparent maybe",
      { protocol: "tcp", family: 4, transparent: "maybe" as "try" },
      /transparent/,
    ],
    ["v6Only on IPv4", { protocol: "tcp", family: 4, v6Only: true }, /v6Only/],
    [
      "an IPv6 bind address on IPv4",
      { protocol: "tcp", family: 4, bind: { address: "::1", port: 1 } },
      /not an IPv4 address/,
    ],
    [
      "a host name as bind address",
      { protocol: "tcp", family: 4, bind: { address: "localhost", port: 1 } },
      /not an IPv4 address/,
    ],
    [
      "port 65536",
      { protocol: "tcp", family: 4, bind: { address: "198.18.0.1", port: 65536 } },
      /port/,
    ],
    ["listen without bind", { protocol: "tcp", family: 4, listen: { backlog: 1 } }, /needs bind/],
    [
      "listen on udp",
      { protocol: "udp", family: 4, bind: { address: "0.0.0.0", port: 0 }, listen: { backlog: 1 } },
      /tcp sockets only/,
    ],
  ];
  for (const [name, options, message] of bad) {
    it(`rejects ${name}`, () => {
      assert.throws(() => netnsSocketSpec(options), { code: "ERR_INVALID_ARG", message });
      assert.throws(() => createNetnsSocket(options), { code: "ERR_INVALID_ARG" });
    });
  }
});

describe("createNetnsSocket in the current namespace", () => {
  it("makes a listener that net.Server adopts and serves", async () => {
    const { fd, transparent } = createNetnsSocket({
      protocol: "tcp",
      family: 4,
      reuseAddr: true,
      bind: { address: "127.0.0.1", port: 0 },
      listen: { backlog: 16 },
    });
    assert.equal(transparent, false);
    const server = createServer((s) => s.end("adopted"));
    await new Promise<void>((resolve) => server.listen({ fd }, resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const got = await new Promise<string>((resolve, reject) => {
        let text = "";
        new Socket()
          .connect(port, "127.0.0.1")
          .on("data", (d: Buffer) => (text += d.toString()))
          .on("end", () => resolve(text))
          .on("error", reject);
      });
      assert.equal(got, "adopted");
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("reports bind failures with the errno and what was being bound", () => {
    // An address this namespace does not have: binding to it needs freebind.
    const local = new Set(
      Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address)),
    );
    const address = ["198.19.255.254", "198.19.255.253", "198.19.255.252"].find(
      (a) => !local.has(a),
    );
    assert.ok(address !== undefined);
    assert.throws(
      () => createNetnsSocket({ protocol: "tcp", family: 4, bind: { address, port: 0 } }),
      {
        code: "EADDRNOTAVAIL",
        message: new RegExp(`bound to ${address.replaceAll(".", "\\.")}:0: bind:`),
      },
    );
    const { fd } = createNetnsSocket({
      protocol: "tcp",
      family: 4,
      freebind: true,
      bind: { address, port: 0 },
    });
    closeFd(fd);
  });

  it("refuses a namespace fd that is not a network namespace and stays home", () => {
    const dir = mkdtempSync(join(tmpdir(), "amb-native-netns-"));
    const home = currentNetnsId();
    try {
      writeFileSync(join(dir, "f"), "");
      const fd = openSync(join(dir, "f"), "r");
      try {
        assert.throws(() => createNetnsSocket({ netns: fd, protocol: "tcp", family: 4 }), {
          code: "EINVAL",
          message: /in the network namespace of fd \d+: setns:/,
        });
      } finally {
        closeSync(fd);
      }
      assert.ok(sameNetns(currentNetnsId(), home));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("namespace identity", () => {
  it("sees the thread's namespace the same by path, by fd and by id", () => {
    const fd = openNetns(CURRENT_NETNS_PATH);
    try {
      assert.ok(sameNetns(fd, CURRENT_NETNS_PATH));
      assert.ok(sameNetns(netnsId(fd), currentNetnsId()));
      assert.ok(sameNetns("/proc/self/ns/net", fd));
      // A different kind of namespace never compares equal to a network namespace.
      assert.ok(!sameNetns("/proc/self/ns/mnt", fd));
    } finally {
      closeFd(fd);
    }
  });

  it("reports ENOENT for a namespace that does not exist", () => {
    assert.throws(() => openNetns("/run/netns/amb-nat-does-not-exist"), { code: "ENOENT" });
  });
});
