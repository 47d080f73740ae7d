import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as dnsPacket from "dns-packet";
import {
  addressesIn,
  answerResponse,
  errorResponse,
  isResponseTo,
  isTruncated,
  parseQuery,
  RCODE,
  skipName,
  truncatedResponse,
  udpLimit,
  withId,
} from "./message.ts";
import type { Query } from "./message.ts";
import type { DnsRecord } from "./resolver.ts";

/** dns-packet also decodes `rcode` and `opcode`, which its typings omit. */
type Decoded = dnsPacket.DecodedPacket & { rcode: string; opcode: string };
const decode = (b: Buffer) => dnsPacket.decode(b) as Decoded;

function query(
  name: string,
  type: dnsPacket.RecordType = "A",
  extra: Partial<dnsPacket.Packet> = {},
): Buffer {
  return dnsPacket.encode({
    type: "query",
    id: 0x1234,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: "IN" }],
    ...extra,
  });
}

function parsed(raw: Buffer): Query {
  const p = parseQuery(raw);
  assert.equal(p.kind, "query", JSON.stringify(p));
  return (p as { query: Query }).query;
}

function rejected(raw: Buffer): { rcode: number; reply: Decoded } {
  const p = parseQuery(raw);
  assert.equal(p.kind, "reject", JSON.stringify(p));
  const r = p as { rcode: number; reply: Buffer };
  return { rcode: r.rcode, reply: decode(r.reply) };
}

const edns = (size: number): dnsPacket.Answer => ({
  name: ".",
  type: "OPT",
  udpPayloadSize: size,
  extendedRcode: 0,
  ednsVersion: 0,
  flags: 0,
  flag_do: false,
  options: [],
});

describe("parseQuery", () => {
  it("reads a query", () => {
    const q = parsed(query("Svc.NS1.svc.cluster.local", "AAAA"));
    assert.equal(q.id, 0x1234);
    assert.equal(q.name, "Svc.NS1.svc.cluster.local");
    assert.equal(q.type, "AAAA");
    assert.equal(q.class, "IN");
    assert.equal(q.edns, undefined);
    assert.equal(q.questionEnd, 12 + 27 + 4);
    assert.equal(udpLimit(q), 512);
  });

  it("reads EDNS and its UDP size (clamped to 512..4096)", () => {
    assert.equal(udpLimit(parsed(query("a.b", "A", { additionals: [edns(1232)] }))), 1232);
    assert.equal(udpLimit(parsed(query("a.b", "A", { additionals: [edns(100)] }))), 512);
    assert.equal(udpLimit(parsed(query("a.b", "A", { additionals: [edns(65000)] }))), 4096);
  });

  it("drops a packet shorter than a header", () => {
    for (let n = 0; n < 12; n++) assert.equal(parseQuery(Buffer.alloc(n)).kind, "drop");
  });

  it("drops responses", () => {
    const r = dnsPacket.encode({ type: "response", id: 1, questions: [{ name: "a", type: "A" }] });
    assert.deepEqual(parseQuery(r), { kind: "drop", reason: "a response, not a query" });
  });

  it("zero questions: FORMERR with the same id", () => {
    const raw = dnsPacket.encode({ type: "query", id: 77, questions: [] });
    const { rcode, reply } = rejected(raw);
    assert.equal(rcode, RCODE.FORMERR);
    assert.equal(reply.id, 77);
    assert.equal(reply.type, "response");
    assert.equal(reply.rcode, "FORMERR");
    assert.equal(reply.questions?.length, 0);
  });

  it("two questions: FORMERR", () => {
    const raw = dnsPacket.encode({
      type: "query",
      id: 1,
      questions: [
        { name: "a", type: "A" },
        { name: "b", type: "A" },
      ],
    });
    assert.equal(rejected(raw).rcode, RCODE.FORMERR);
  });

  it("a truncated question: FORMERR", () => {
    const raw = query("www.example.com");
    for (let n = 12; n < raw.length; n++) {
      assert.equal(rejected(raw.subarray(0, n)).rcode, RCODE.FORMERR, `cut at ${n}`);
    }
  });

  it("a header promising answers that are not there: FORMERR", () => {
    const raw = query("www.example.com");
    raw.writeUInt16BE(3, 6);
    assert.equal(rejected(raw).rcode, RCODE.FORMERR);
  });

  it("a name longer than 255 bytes: FORMERR", () => {
    const labels = Array.from({ length: 5 }, () => "x".repeat(63));
    const parts = [Buffer.alloc(12)];
    parts[0]!.writeUInt16BE(9, 0);
    parts[0]!.writeUInt16BE(1, 4);
    for (const l of labels) parts.push(Buffer.from([l.length]), Buffer.from(l));
    parts.push(Buffer.from([0, 0, 1, 0, 1]));
    assert.equal(rejected(Buffer.concat(parts)).rcode, RCODE.FORMERR);
  });

  it("compression loops and forward pointers: FORMERR", () => {
    const header = Buffer.from([0, 5, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    const self = Buffer.concat([header, Buffer.from([0xc0, 12, 0, 1, 0, 1])]);
    assert.equal(rejected(self).rcode, RCODE.FORMERR);
    const forward = Buffer.concat([header, Buffer.from([1, 97, 0xc0, 30, 0, 1, 0, 1])]);
    assert.equal(rejected(forward).rcode, RCODE.FORMERR);
    // A loop in an additional record's name (pointer to itself).
    const raw = query("a.b");
    raw.writeUInt16BE(1, 10);
    const loop = Buffer.concat([
      raw,
      Buffer.from([0xc0, raw.length, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]),
    ]);
    assert.equal(rejected(loop).rcode, RCODE.FORMERR);
  });

  it("reserved label bits: FORMERR", () => {
    const header = Buffer.from([0, 5, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert.equal(
      rejected(Buffer.concat([header, Buffer.from([0x41, 0, 0, 1, 0, 1])])).rcode,
      RCODE.FORMERR,
    );
  });

  it("other opcodes: NOTIMP", () => {
    const raw = query("a.b");
    raw.writeUInt16BE(raw.readUInt16BE(2) | (2 << 11), 2);
    const { rcode, reply } = rejected(raw);
    assert.equal(rcode, RCODE.NOTIMP);
    assert.equal(reply.opcode, "STATUS");
  });

  it("classes other than IN: NOTIMP, question echoed", () => {
    const raw = dnsPacket.encode({
      type: "query",
      id: 9,
      questions: [{ name: "version.bind", type: "TXT", class: "CH" }],
    });
    const { rcode, reply } = rejected(raw);
    assert.equal(rcode, RCODE.NOTIMP);
    assert.deepEqual(reply.questions, [{ name: "version.bind", type: "TXT", class: "CH" }]);
  });

  it("EDNS version above 0: BADVERS (extended rcode 16 in the OPT record)", () => {
    const opt = { ...edns(1232), ednsVersion: 1 } as dnsPacket.Answer;
    const p = parseQuery(query("a.b", "A", { additionals: [opt] }));
    assert.equal(p.kind, "reject");
    const r = decode((p as { reply: Buffer }).reply);
    assert.equal(r.rcode, "NOERROR");
    const o = r.additionals?.find((a): a is dnsPacket.OptAnswer => a.type === "OPT");
    assert.equal(o?.extendedRcode, 1);
    assert.equal(o?.ednsVersion, 0);
    assert.deepEqual(r.questions, [{ name: "a.b", type: "A", class: "IN" }]);
  });

  it("two OPT records: FORMERR", () => {
    assert.equal(
      rejected(query("a.b", "A", { additionals: [edns(1232), edns(1232)] })).rcode,
      RCODE.FORMERR,
    );
  });

  it("never throws on random bytes or mutated queries", () => {
    let seed = 1;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    const base = query("productpage.ns1.svc.cluster.local", "A", { additionals: [edns(1232)] });
    const counts = { query: 0, reject: 0, drop: 0 };
    for (let i = 0; i < 20000; i++) {
      let raw: Buffer;
      if (i % 2 === 0) {
        raw = Buffer.alloc(rnd(80));
        for (let j = 0; j < raw.length; j++) raw[j] = rnd(256);
        // Make most of them look like single-question queries to reach deeper code.
        if (raw.length >= 12 && i % 4 === 0) {
          raw[2] = (raw[2] as number) & 0x07;
          raw[4] = 0;
          raw[5] = 1;
        }
      } else {
        raw = Buffer.from(base);
        for (let k = 0; k < 1 + rnd(4); k++) raw[2 + rnd(raw.length - 2)] = rnd(256);
        raw = raw.subarray(0, rnd(raw.length + 1));
      }
      const p = parseQuery(raw);
      counts[p.kind]++;
      if (p.kind === "reject") {
        assert.ok(p.reply.length >= 12);
        assert.equal(p.reply.readUInt16BE(0), raw.readUInt16BE(0));
        assert.equal(p.reply.readUInt16BE(2) & 0x8000, 0x8000);
        decode(p.reply);
      }
    }
    // Every outcome was exercised.
    assert.ok(
      counts.query > 100 && counts.reject > 100 && counts.drop > 100,
      JSON.stringify(counts),
    );
  });
});

describe("answerResponse", () => {
  const records = (n: number): DnsRecord[] =>
    Array.from({ length: n }, (_, i) => ({
      name: "large.example.com",
      type: "A" as const,
      ttl: 30,
      data: `198.18.${i >> 8}.${i & 255}`,
    }));

  it("is authoritative, echoes the question, RD and the id", () => {
    const q = parsed(query("Large.example.com"));
    const r = decode(answerResponse(q, records(2)));
    assert.equal(r.id, 0x1234);
    assert.equal(r.type, "response");
    assert.equal(r.flag_aa, true);
    assert.equal(r.flag_rd, true);
    assert.equal(r.flag_ra, true);
    assert.equal(r.flag_tc, false);
    assert.equal(r.rcode, "NOERROR");
    assert.deepEqual(r.questions, [{ name: "Large.example.com", type: "A", class: "IN" }]);
    assert.deepEqual(
      (r.answers as dnsPacket.StringAnswer[] | undefined)?.map((a) => [
        a.name,
        a.type,
        a.ttl,
        a.data,
      ]),
      [
        ["large.example.com", "A", 30, "198.18.0.0"],
        ["large.example.com", "A", 30, "198.18.0.1"],
      ],
    );
  });

  it("an empty answer is NOERROR", () => {
    const r = decode(answerResponse(parsed(query("a.b", "AAAA")), []));
    assert.equal(r.rcode, "NOERROR");
    assert.equal(r.answers?.length, 0);
  });

  it("sets TC and keeps what fits in 512 bytes without EDNS", () => {
    const q = parsed(query("large.example.com"));
    const raw = answerResponse(q, records(256), udpLimit(q));
    assert.ok(raw.length <= 512, `${raw.length}`);
    const r = decode(raw);
    assert.equal(r.flag_tc, true);
    assert.ok((r.answers?.length ?? 0) > 5 && (r.answers?.length ?? 0) < 256);
    // One more record would not have fit.
    assert.ok(raw.length + 33 > 512);
  });

  it("honours a larger EDNS size and answers with OPT", () => {
    const q = parsed(query("large.example.com", "A", { additionals: [edns(4096)] }));
    const raw = answerResponse(q, records(60), udpLimit(q));
    const r = decode(raw);
    assert.equal(r.flag_tc, false);
    assert.equal(r.answers?.length, 60);
    assert.ok(raw.length > 512);
    const opt = r.additionals?.find((a) => a.type === "OPT");
    assert.equal(opt?.udpPayloadSize, 4096);
  });

  it("without a limit (TCP) keeps everything", () => {
    const r = decode(answerResponse(parsed(query("large.example.com")), records(256)));
    assert.equal(r.flag_tc, false);
    assert.equal(r.answers?.length, 256);
  });
});

describe("error responses and upstream checks", () => {
  it("SERVFAIL echoes the question", () => {
    const raw = query("x.example.com", "MX");
    const q = parsed(raw);
    const r = decode(errorResponse(raw, RCODE.SERVFAIL, q.questionEnd));
    assert.equal(r.id, 0x1234);
    assert.equal(r.rcode, "SERVFAIL");
    assert.equal(r.flag_rd, true);
    assert.deepEqual(r.questions, [{ name: "x.example.com", type: "MX", class: "IN" }]);
  });

  it("matches a response to the query sent (id, question, case-insensitive)", () => {
    const raw = query("www.Example.com");
    const q = parsed(raw);
    const sent = withId(raw, 4242);
    const resp = dnsPacket.encode({
      type: "response",
      id: 4242,
      questions: [{ name: "www.example.COM", type: "A" }],
      answers: [{ name: "www.example.com", type: "A", data: "198.18.0.1" }],
    });
    assert.equal(isResponseTo(resp, sent, q.questionEnd, 4242), true);
    assert.equal(isResponseTo(resp, sent, q.questionEnd, 4243), false);
    const other = dnsPacket.encode({
      type: "response",
      id: 4242,
      questions: [{ name: "www.example.org", type: "A" }],
    });
    assert.equal(isResponseTo(other, sent, q.questionEnd, 4242), false);
    const otherType = dnsPacket.encode({
      type: "response",
      id: 4242,
      questions: [{ name: "www.example.com", type: "AAAA" }],
    });
    assert.equal(isResponseTo(otherType, sent, q.questionEnd, 4242), false);
    const noQuestion = dnsPacket.encode({ type: "response", id: 4242, flags: 1 });
    assert.equal(isResponseTo(noQuestion, sent, q.questionEnd, 4242), true);
    assert.equal(isResponseTo(sent, sent, q.questionEnd, 4242), false, "a query is not a response");
    assert.equal(isResponseTo(Buffer.alloc(3), sent, q.questionEnd, 0), false);
  });

  it("truncatedResponse keeps header and question with TC", () => {
    const raw = query("www.example.com");
    const q = parsed(raw);
    const t = truncatedResponse(raw, q.questionEnd);
    assert.equal(isTruncated(t), true);
    const r = decode(t);
    assert.equal(r.id, 0x1234);
    assert.equal(r.type, "response");
    assert.equal(r.rcode, "NOERROR");
    assert.equal(r.answers?.length, 0);
    assert.deepEqual(r.questions, [{ name: "www.example.com", type: "A", class: "IN" }]);
  });

  it("addressesIn reads A/AAAA answers or the rcode", () => {
    const resp = dnsPacket.encode({
      type: "response",
      id: 1,
      questions: [{ name: "w.example", type: "A" }],
      answers: [
        { name: "w.example", type: "CNAME", data: "x.example" },
        { name: "x.example", type: "A", data: "198.18.0.7" },
      ],
    });
    assert.deepEqual(addressesIn(resp, "A"), { ok: true, addresses: ["198.18.0.7"] });
    assert.deepEqual(addressesIn(resp, "AAAA"), { ok: false, rcode: 0 });
    const nx = dnsPacket.encode({
      type: "response",
      id: 1,
      flags: 3,
      questions: [{ name: "w", type: "A" }],
    });
    assert.deepEqual(addressesIn(nx, "A"), { ok: false, rcode: 3 });
    assert.deepEqual(addressesIn(Buffer.from([1, 2, 3]), "A"), { ok: false, rcode: 2 });
  });

  it("skipName walks labels and stops at pointers", () => {
    const b = Buffer.from([1, 97, 2, 98, 99, 0, 0xc0, 0]);
    assert.equal(skipName(b, 0), 6);
    assert.equal(skipName(b, 6), 8);
    assert.equal(skipName(Buffer.from([5, 97]), 0), -1);
    assert.equal(skipName(Buffer.from([0xc0]), 0), -1);
  });
});
