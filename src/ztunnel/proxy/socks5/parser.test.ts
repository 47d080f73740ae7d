/**
 * The SOCKS5 handshake parser, fed whole and byte by byte: what it asks the server to write, the
 * target it hands over, and the leftover bytes.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isValidHostname, Socks5Parser } from "./parser.ts";
import type { Socks5Target } from "./parser.ts";
import { encodeReply, replyCodeFor, SOCKS5_REPLY } from "./reply.ts";

/** What the handler saw, in order. */
type Event =
  | { e: "method" }
  | { e: "request"; target: Socks5Target; rest: string }
  | { e: "reject"; reply: string; reason: string };

function run(input: Buffer, chunking: "whole" | "bytes" | number): Event[] {
  const p = new Socks5Parser();
  const events: Event[] = [];
  const handler = {
    onMethodSelected: () => events.push({ e: "method" }),
    onRequest: (target: Socks5Target, rest: Buffer) =>
      events.push({ e: "request", target, rest: rest.toString("hex") }),
    onReject: (reply: Buffer, reason: string) =>
      events.push({ e: "reject", reply: reply.toString("hex"), reason }),
  };
  const size =
    chunking === "whole" ? Math.max(1, input.length) : chunking === "bytes" ? 1 : chunking;
  for (let o = 0; o < input.length; o += size) p.push(input.subarray(o, o + size), handler);
  return events;
}

/** Runs every chunking and checks they agree, except for where `rest` is split. */
function all(input: Buffer): Event[] {
  const whole = run(input, "whole");
  for (const c of ["bytes", 2, 3, 7] as const) {
    const got = run(input, c).map((ev) => (ev.e === "request" ? { ...ev, rest: "" } : ev));
    const want = whole.map((ev) => (ev.e === "request" ? { ...ev, rest: "" } : ev));
    assert.deepEqual(got, want, `chunking ${c}`);
  }
  return whole;
}

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");
const GREETING = "05 01 00";
const port = (p: number) => p.toString(16).padStart(4, "0");
const domainReq = (name: string, p = 80) =>
  `05 01 00 03 ${name.length.toString(16).padStart(2, "0")} ${Buffer.from(name, "latin1").toString("hex")} ${port(p)}`;

const reply = (code: number) => encodeReply(code as 0).toString("hex");

describe("Socks5Parser: valid handshakes", () => {
  it("IPv4 CONNECT", () => {
    assert.deepEqual(all(hex(`${GREETING} 05 01 00 01 c6 12 00 07 1f 90`)), [
      { e: "method" },
      { e: "request", target: { kind: "ip", ip: "198.18.0.7", family: 4, port: 8080 }, rest: "" },
    ]);
  });

  it("IPv6 CONNECT", () => {
    assert.deepEqual(all(hex(`${GREETING} 05 01 00 04 20010db8000000000000000000000001 01bb`)), [
      { e: "method" },
      { e: "request", target: { kind: "ip", ip: "2001:db8::1", family: 6, port: 443 }, rest: "" },
    ]);
  });

  it("an IPv4-mapped IPv6 target is the IPv4 address", () => {
    const ev = all(hex(`${GREETING} 05 01 00 04 00000000000000000000ffffc6120007 0050`));
    assert.deepEqual(ev[1], {
      e: "request",
      target: { kind: "ip", ip: "198.18.0.7", family: 4, port: 80 },
      rest: "",
    });
  });

  it("domain CONNECT", () => {
    assert.deepEqual(all(hex(`${GREETING} ${domainReq("productpage.ns1", 9080)}`)), [
      { e: "method" },
      {
        e: "request",
        target: { kind: "domain", hostname: "productpage.ns1", port: 9080 },
        rest: "",
      },
    ]);
  });

  it("several methods offered, no-auth among them", () => {
    assert.deepEqual(all(hex(`05 03 02 01 00 05 01 00 01 7f000001 0050`))[0], { e: "method" });
  });

  it("bytes after the request are handed over as leftover", () => {
    const ev = run(hex(`${GREETING} 05 01 00 01 7f000001 0050 474554202f`), "whole");
    assert.deepEqual(ev[1], {
      e: "request",
      target: { kind: "ip", ip: "127.0.0.1", family: 4, port: 80 },
      rest: "474554202f",
    });
  });

  it("ignores input after the request", () => {
    const p = new Socks5Parser();
    let requests = 0;
    const h = {
      onMethodSelected: () => {},
      onRequest: () => requests++,
      onReject: () => assert.fail(),
    };
    p.push(hex(`${GREETING} 05 01 00 01 7f000001 0050`), h);
    p.push(hex(`${GREETING} 05 01 00 01 7f000001 0050`), h);
    assert.equal(requests, 1);
    assert.equal(p.done, true);
    assert.equal(p.consumed, 13);
  });

  it("the greeting alone asks for the method reply and waits", () => {
    assert.deepEqual(all(hex(GREETING)), [{ e: "method" }]);
  });
});

describe("Socks5Parser: hostile input", () => {
  const rejectOf = (input: Buffer) => {
    const ev = all(input);
    const last = ev[ev.length - 1];
    assert.ok(last && last.e === "reject", JSON.stringify(ev));
    return last;
  };

  it("a non-SOCKS5 version: no reply, close", () => {
    const r = rejectOf(hex("04 01 00 50 7f000001 00"));
    assert.equal(r.reply, "");
    assert.match(r.reason, /version byte 4/);
    assert.equal(rejectOf(Buffer.from("GET / HTTP/1.1\r\n")).reply, "");
  });

  it("no methods offered: 05 FF", () => {
    assert.equal(rejectOf(hex("05 00")).reply, "05ff");
  });

  it("no acceptable method (username/password only): 05 FF", () => {
    const r = rejectOf(hex("05 01 02"));
    assert.equal(r.reply, "05ff");
    assert.match(r.reason, /offered 2/);
  });

  it("BIND: command not supported (7)", () => {
    const r = rejectOf(hex(`${GREETING} 05 02 00 01 7f000001 0050`));
    assert.equal(r.reply, reply(SOCKS5_REPLY.commandNotSupported));
    assert.match(r.reason, /BIND/);
  });

  it("UDP ASSOCIATE: command not supported (7)", () => {
    const r = rejectOf(hex(`${GREETING} 05 03 00 01 00000000 0000`));
    assert.equal(r.reply, reply(7));
    assert.match(r.reason, /UDP ASSOCIATE/);
  });

  it("an unknown command: 7", () => {
    assert.equal(rejectOf(hex(`${GREETING} 05 09 00 01`)).reply, reply(7));
  });

  it("a bad version in the request: general failure (1)", () => {
    assert.equal(rejectOf(hex(`${GREETING} 04 01 00 01`)).reply, reply(1));
  });

  it("an unknown address type: 8", () => {
    assert.equal(rejectOf(hex(`${GREETING} 05 01 00 02 00`)).reply, reply(8));
  });

  it("an empty domain: host unreachable (4)", () => {
    assert.equal(rejectOf(hex(`${GREETING} 05 01 00 03 00 0050`)).reply, reply(4));
  });

  it("an oversized domain (254 and 255 bytes): 4", () => {
    for (const n of [254, 255]) {
      const name = ("a".repeat(62) + ".").repeat(5).slice(0, n - 1) + "b";
      assert.equal(name.length, n);
      assert.equal(rejectOf(hex(`${GREETING} ${domainReq(name)}`)).reply, reply(4));
    }
  });

  it("a domain with bytes a hostname cannot have: 4", () => {
    for (const name of ["a b", "evil\u0000.com", "x..y", "-lead.example", "\u00ff\u00fe"]) {
      assert.equal(
        rejectOf(hex(`${GREETING} ${domainReq(name)}`)).reply,
        reply(4),
        JSON.stringify(name),
      );
    }
  });

  it("random garbage never throws and ends in at most one outcome", () => {
    let seed = 3;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.alloc(rnd(300));
      for (let j = 0; j < b.length; j++) b[j] = rnd(256);
      if (i % 2 === 0 && b.length > 3) b.set([5, 1, 0], 0);
      const ev = run(b, 1 + rnd(20));
      assert.ok(ev.filter((e) => e.e !== "method").length <= 1, JSON.stringify(ev));
    }
  });
});

describe("isValidHostname", () => {
  it("accepts hostnames", () => {
    for (const n of ["localhost", "productpage.ns1", "a-b.c_d.example.", "x".repeat(63) + ".com"]) {
      assert.equal(isValidHostname(n), true, n);
    }
  });
  it("rejects others", () => {
    for (const n of ["", ".", "x".repeat(64) + ".com", "a.-b", "a b", "é.com"]) {
      assert.equal(isValidHostname(n), false, n);
    }
  });
});

describe("replies", () => {
  it("encodes VER REP RSV ATYP=1 0.0.0.0:0", () => {
    assert.equal(encodeReply(SOCKS5_REPLY.succeeded).toString("hex"), "05000001000000000000");
    assert.equal(
      encodeReply(SOCKS5_REPLY.connectionRefused).toString("hex"),
      "05050001000000000000",
    );
  });
  it("maps errors to reply codes", () => {
    const e = (code: string) => Object.assign(new Error(code), { code });
    assert.equal(replyCodeFor(e("ECONNREFUSED")), 5);
    assert.equal(replyCodeFor(e("ENETUNREACH")), 3);
    assert.equal(replyCodeFor(e("EHOSTUNREACH")), 4);
    assert.equal(replyCodeFor(e("ETIMEDOUT")), 4);
    assert.equal(replyCodeFor(e("EPERM")), 2);
    assert.equal(replyCodeFor(e("EPIPE")), 1);
    assert.equal(replyCodeFor(2), 2);
    assert.equal(replyCodeFor("nonsense"), 1);
  });
});
