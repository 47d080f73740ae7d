import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { createServer, Socket, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { AmbientError } from "../errors.ts";
import {
  checkFd,
  closeFd,
  getMark,
  getOriginalDst,
  loadNativeFrom,
  native,
  nativeError,
  peerCredentials,
  setMark,
  socketFd,
} from "./native.ts";

const dir = mkdtempSync(join(tmpdir(), "amb-native-unit-"));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** An fd of a regular file: a valid fd that is not a socket. */
function fileFd(): number {
  const path = join(dir, "plain.txt");
  writeFileSync(path, "x");
  return openSync(path, "r");
}

function code(err: unknown): string | undefined {
  return err instanceof AmbientError ? err.code : (err as { code?: string }).code;
}

describe("loading the addon", () => {
  it("reports ENATIVE with the build command when the addon is missing", () => {
    const err = (() => {
      try {
        loadNativeFrom(join(dir, "missing", "ambient_native.node"));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof AmbientError);
    assert.equal(err.code, "ENATIVE");
    assert.match(err.message, /not built/);
    assert.match(err.message, /npm ci/);
    assert.match(err.message, /node scripts\/build-native\.ts/);
    assert.match(err.message, /gcc, make and python3/);
    assert.ok(err.cause !== undefined);
  });

  it("reports ENATIVE when the file is not a loadable addon", () => {
    const bogus = join(dir, "bogus.node");
    writeFileSync(bogus, "not an ELF object");
    assert.throws(() => loadNativeFrom(bogus), { name: "AmbientError", code: "ENATIVE" });
  });

  it("reports ENATIVE naming the missing functions of a stale addon", () => {
    const stale = join(dir, "stale.cjs");
    writeFileSync(stale, "module.exports = { getOriginalDst() {} };");
    assert.throws(
      () => loadNativeFrom(stale),
      (err: unknown) => {
        assert.ok(err instanceof AmbientError);
        assert.equal(err.code, "ENATIVE");
        assert.match(err.message, /stale \(missing setMark, getMark, /);
        return true;
      },
    );
  });

  it("loads the built addon", () => {
    assert.equal(typeof native().createSocket, "function");
  });
});

describe("error mapping", () => {
  it("turns an addon error into an AmbientError with the errno name as code", () => {
    const raw = Object.assign(new Error("connect: Connection refused (ECONNREFUSED)"), {
      code: "ECONNREFUSED",
      errno: 111,
      syscall: "connect",
    });
    const err = nativeError(raw, "connecting to /run/ztunnel.sock");
    assert.equal(err.code, "ECONNREFUSED");
    assert.equal(
      err.message,
      "connecting to /run/ztunnel.sock: connect: Connection refused (ECONNREFUSED)",
    );
    assert.equal(err.cause, raw);
  });

  it("passes AmbientErrors through and gives code-less errors ENATIVE", () => {
    const mine = new AmbientError("ETIMEDOUT", "late");
    assert.equal(nativeError(mine, "x"), mine);
    assert.equal(nativeError(new Error("odd"), "x").code, "ENATIVE");
  });

  it("carries errno and syscall on the cause of a real failure", () => {
    const fd = fileFd();
    try {
      assert.throws(
        () => getMark(fd),
        (err: unknown) => {
          assert.ok(err instanceof AmbientError);
          assert.equal(err.code, "ENOTSOCK");
          assert.match(
            err.message,
            new RegExp(`reading SO_MARK of fd ${fd}: getsockopt\\(SO_MARK\\)`),
          );
          const cause = err.cause as { errno: number; syscall: string };
          assert.equal(cause.syscall, "getsockopt(SO_MARK)");
          assert.equal(cause.errno, 88);
          return true;
        },
      );
    } finally {
      closeSync(fd);
    }
  });
});

describe("argument checks", () => {
  for (const bad of [-1, 1.5, Number.NaN, 2 ** 31, "3", null, undefined]) {
    it(`rejects fd ${String(bad)} before calling the addon`, () => {
      assert.throws(() => getOriginalDst(bad as number), { code: "ERR_INVALID_ARG" });
      assert.throws(() => checkFd(bad), { code: "ERR_INVALID_ARG" });
    });
  }

  for (const bad of [-1, 2 ** 32, 0.5, "1337"]) {
    it(`rejects mark ${String(bad)}`, () => {
      assert.throws(() => setMark(0, bad as number), { code: "ERR_INVALID_ARG", message: /mark/ });
    });
  }

  // The C side checks again, so a caller bypassing the wrapper gets an exception, not a crash.
  const addonCases: [string, () => unknown][] = [
    ["setMark with a string fd", () => native().setMark("3" as unknown as number, 1)],
    ["setMark with a mark over 32 bits", () => native().setMark(0, 2 ** 32)],
    ["getOriginalDst with no argument", () => (native().getOriginalDst as () => unknown)()],
    ["createSocket with null", () => native().createSocket(null as never)],
    [
      "createSocket with protocol sctp",
      () => native().createSocket({ protocol: "sctp" as "tcp", family: 4 }),
    ],
    [
      "createSocket with family 5",
      () => native().createSocket({ protocol: "tcp", family: 5 as 4 }),
    ],
    [
      "createSocket with an address but no port",
      () => native().createSocket({ protocol: "tcp", family: 4, address: "198.18.0.1" }),
    ],
    [
      "createSocket with an IPv6 address on IPv4",
      () => native().createSocket({ protocol: "tcp", family: 4, address: "::1", port: 1 }),
    ],
    [
      "createSocket listening on udp",
      () =>
        native().createSocket({
          protocol: "udp",
          family: 4,
          address: "0.0.0.0",
          port: 0,
          backlog: 1,
        }),
    ],
    [
      "createSocket with transparent maybe",
      () => native().createSocket({ protocol: "tcp", family: 4, transparent: "maybe" as "try" }),
    ],
    ["seqpacketSend with a string", () => native().seqpacketSend(0, "hi" as never, [])],
    [
      "seqpacketSend with a Uint16Array",
      () => native().seqpacketSend(0, new Uint16Array(2) as never, []),
    ],
    [
      "seqpacketSend with fds not an array",
      () => native().seqpacketSend(0, Buffer.from("x"), 3 as never),
    ],
    [
      "seqpacketSend with 254 fds",
      () => native().seqpacketSend(0, Buffer.from("x"), new Array<number>(254).fill(0)),
    ],
    [
      "seqpacketSend with a negative fd in the list",
      () => native().seqpacketSend(0, Buffer.from("x"), [-1]),
    ],
    ["seqpacketReceive with maxBytes -1", () => native().seqpacketReceive(0, -1, 0)],
    ["seqpacketReceive with maxFds 300", () => native().seqpacketReceive(0, 10, 300)],
    ["seqpacketListen with an empty path", () => native().seqpacketListen("", 1)],
    [
      "seqpacketListen with a path over 107 bytes",
      () => native().seqpacketListen("/" + "a".repeat(200), 1),
    ],
    ["seqpacketConnect with a NUL in the path", () => native().seqpacketConnect("/tmp/a\0b")],
    ["pollerUpdate with a plain object", () => native().pollerUpdate({} as never, 1)],
    ["pollerCreate without a callback", () => native().pollerCreate(0, 1 as never)],
  ];
  for (const [name, call] of addonCases) {
    it(`the addon rejects ${name} with ERR_INVALID_ARG`, () => {
      assert.throws(call, (err: unknown) => {
        assert.ok(err instanceof TypeError || err instanceof RangeError, String(err));
        assert.equal(code(err), "ERR_INVALID_ARG");
        return true;
      });
    });
  }
});

describe("socket options on ordinary sockets", () => {
  it("reports ENOTSOCK for an fd that is not a socket", () => {
    const fd = fileFd();
    try {
      assert.throws(() => getOriginalDst(fd), { code: "ENOTSOCK" });
      assert.throws(() => setMark(fd, 1337), { code: "ENOTSOCK" });
      assert.throws(() => peerCredentials(fd), { code: "ENOTSOCK" });
    } finally {
      closeSync(fd);
    }
  });

  it("reads the mark of a Node socket through socketFd (0 unless set)", async () => {
    const server = createServer((s) => s.end());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const listenerFd = socketFd(server);
      assert.equal(getMark(listenerFd), 0);
      const client = new Socket();
      assert.throws(() => socketFd(client), { code: "EBADF" });
      const { port } = server.address() as AddressInfo;
      await new Promise<void>((resolve) => client.connect(port, "127.0.0.1", resolve));
      assert.equal(getMark(socketFd(client)), 0);
      client.destroy();
    } finally {
      server.close();
    }
  });

  it("closeFd closes, and reports EBADF for an fd already closed", () => {
    const fd = fileFd();
    closeFd(fd);
    assert.throws(() => closeFd(fd), { code: "EBADF" });
  });
});
